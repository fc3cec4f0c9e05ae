//! The shared store: PostgreSQL, through sqlx, for many processes on many machines.
//!
//! Writes check versions under a row lock (`SELECT … FOR UPDATE`), so two processes
//! changing one aggregate never both win: the second gets a [`VersionConflict`] and its
//! handler runs again. Relays claim undelivered events one claim at a time (a
//! transaction-level advisory lock; the rows chosen are then locked with `FOR UPDATE SKIP
//! LOCKED`, and one locked by another transaction at that moment holds back the rest of
//! its stream), so each stream is handed out in order; the handlers then run in parallel, and the handled
//! messages recorded in their transactions make each effect happen once.
//!
//! Claims are owned: each store has an owner identity, made when it connects, and holds a
//! session-level advisory lock on a key derived from it, on a connection of its own, for
//! as long as it lives. A claim records its owner, and is respected while its lease runs
//! and its owner still holds that lock; when the owner's process dies, its connection
//! closes, the server releases the lock, and the claim is free at once.
//!
//! A commit is one statement: the commit function (`protean_commit_batch`) takes the
//! whole batch as arrays, so one round trip and one transaction. With group commit (on by
//! default, [`PostgresOptions::group_commit`]), [`commit`](Records::commit) queues its
//! batch; a writer (a task of its own, up to [`PostgresOptions::groups_in_flight`] of
//! them) takes every batch waiting as one group and commits it with
//! `protean_commit_group`, which calls the commit function once per batch, each in a
//! subtransaction of its own (a `BEGIN … EXCEPTION` block): so the group is one round
//! trip and one transaction (one WAL flush), a batch that conflicts, was already handled
//! or fails otherwise writes nothing and gets the error it would get alone, and the others
//! commit. Every batch is answered only after the transaction has committed. A batch that
//! loses a deadlock inside its group (batches of one group hold their locks until the
//! group commits) is committed again on its own afterwards. A lone commit goes through
//! the commit function directly, as without grouping; a caller whose future is dropped
//! changes nothing for the others of its group.
//!
//! Delivery keeps its state here too: a failed delivery of an event to a handler is a
//! row of `protean_failures` (retrying, dead, or held behind a dead letter of its
//! stream), and a command's handled record keeps its reply. Once a commit that stored an
//! event not yet delivered is durable, the store notifies channel `protean_outbox`,
//! outside the commit's transaction (a transaction that notifies holds a lock for the
//! whole cluster through its WAL flush, which would make such commits take turns): from
//! a connection of its own with `synchronous_commit = off`, one notification at a time,
//! requests meanwhile coalesced into one more. A store's
//! [`outbox_signal`](Outbox::outbox_signal) listens on the channel (one connection per
//! store, made on first use), so the delivery workers of every process wake without
//! polling. A notification that fails is logged, and never fails the commit; a process
//! that dies between its commit and the notification leaves the wake-up to the other
//! processes' poll.
//!
//! Projections keep their rows in `protean_projection_rows` (JSONB, by projection, copy
//! and key), and their state in `protean_projections`. The commit function applies a
//! batch's row changes in the commit's transaction, by the rule every store follows (see
//! [`Batch::rows`](super::Batch::rows)): under a lock of the projection's state row, so the
//! commits that change one projection's rows take turns from there to their end. [`register_projection`](Projections::register_projection) makes an
//! expression index per declared field, partial on the projection
//! (`(generation, (json->'field')) WHERE projection = '…'`, named
//! `"protean_rows.Projection.field"`), so names must be ASCII letters, digits and `_`;
//! [`explain_query`](PostgresStore::explain_query) shows what a query reads. A rebuild
//! finishes under `LOCK TABLE protean_events IN EXCLUSIVE MODE`, so no commit is in
//! flight while it checks for events past where it got. The log is read by position
//! ([`log_after`](Records::log_after)); positions come from a sequence, so commits may make
//! them visible out of order, and a page with a position missing waits for the writers in
//! flight before it is returned (so a reader never passes over an event that commits
//! later). Scheduled commands are rows of `protean_scheduled`, claimed with
//! `FOR UPDATE SKIP LOCKED`; a commit that schedules one notifies `protean_outbox` as
//! one storing an undelivered event does.
//!
//! The schema is in `postgres/schema/`: one file per migration step (`v1.sql`, …), and
//! the commit function (`commit_batch.sql`) and group commit function
//! (`commit_group.sql`), created again by every migration.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use sqlx::postgres::{
    PgConnectOptions, PgConnection, PgDatabaseError, PgListener, PgPool, PgPoolOptions, PgRow, PgTypeInfo,
    PgValueFormat, PgValueRef,
};
use sqlx::{Connection, Postgres, Row};
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;

mod group;
mod notify;
mod projections;

use group::{Arrays, GroupQueue, Refusal};
use notify::Notifier;

use super::ports::{Deliveries, Outbox, Projections, Records, Schedule};
use super::sql::{stored_count, to_i64};
use super::{Batch, BoxFuture, Commit, Committed, Record, SchemaVersion, Snapshot, StoreError, VersionConflict};
use super::{BuildState, Logged, ProjectionSpec, ProjectionState, ReplayEvents, RowQuery, Scheduled, StoredEvent};
use super::{FailedDelivery, FailureQuery, FailureStatus, FailureUpdate, HandlerState, OutboxStatus};
use crate::store::envelope::{Envelope, StreamId};

/// The schema version this code works with: [`PostgresStore::migrate`] brings older
/// databases up to it, and a store opened without migrating
/// ([`PostgresStore::connect_without_migrating`]) requires it.
pub const SCHEMA_VERSION: SchemaVersion = SchemaVersion(8);

/// The migration steps: step `n` (from `schema/vn.sql`) brings a database at version
/// `n - 1` to version `n`. A file may hold several statements; it runs as one simple
/// query, in the migration's transaction.
const MIGRATIONS: [&str; SCHEMA_VERSION.0 as usize] = [
    include_str!("postgres/schema/v1.sql"),
    include_str!("postgres/schema/v2.sql"),
    include_str!("postgres/schema/v3.sql"),
    include_str!("postgres/schema/v4.sql"),
    include_str!("postgres/schema/v5.sql"),
    include_str!("postgres/schema/v6.sql"),
    include_str!("postgres/schema/v7.sql"),
    include_str!("postgres/schema/v8.sql"),
];

/// A unit of work's whole batch in one statement (see the file): created, or replaced,
/// by every migration after the versioned steps.
const COMMIT_FUNCTION: &str = include_str!("postgres/schema/commit_batch.sql");

/// Several units of work's batches in one statement, each in a subtransaction of its own
/// (see the file): created, or replaced, by every migration after the commit function,
/// which it calls.
const GROUP_FUNCTION: &str = include_str!("postgres/schema/commit_group.sql");

/// Serializes migrations and claims across processes (an arbitrary, fixed key).
const MIGRATION_LOCK: i64 = 0x7072_6f74_6561_6e01;
const CLAIM_LOCK: i64 = 0x7072_6f74_6561_6e02;

/// The pool size of [`PostgresStore::connect`] and of [`PostgresOptions`] by default.
const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// The advisory-lock keys every live store holds (see [`PostgresStore::owner`]), as
/// `pg_advisory_lock(bigint)` takes them: `pg_locks` splits a key into its high and low
/// halves.
const LIVE_OWNERS: &str = "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
    WHERE locktype = 'advisory' AND objsubid = 1 AND granted
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// The advisory-lock key of an owner identity: its first eight bytes.
fn owner_key(owner: Uuid) -> i64 {
    let bytes = owner.as_bytes();
    i64::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]])
}

/// The columns an [`Envelope`] is read from.
const EVENT_COLUMNS: &str =
    "id, aggregate, stream_id, sequence, type_name, version, payload, recorded_at, correlation_id, causation_id";

/// The failed deliveries a [`FailureQuery`] lists, with their events ([`EVENT_COLUMNS`]
/// of `e`), in log order: `$1` the handler, `$2` and `$3` the stream, `$4` the status
/// (each `NULL` for any), `$5` the limit. The event is found by its key.
static FAILURES: LazyLock<String> = LazyLock::new(|| {
    failures_select(
        "WHERE ($1::text IS NULL OR f.handler = $1)
             AND ($2::text IS NULL OR (f.aggregate = $2 AND f.stream_id = $3))
             AND ($4::text IS NULL OR f.status = $4)
         ORDER BY e.position, f.handler LIMIT $5",
    )
});

/// One failed delivery, by its key: the handler (`$1`) and the event id (`$2`).
static FAILURE: LazyLock<String> = LazyLock::new(|| failures_select("WHERE f.handler = $1 AND f.event_id = $2"));

/// The select of failed deliveries with their whole events (`e`, the events; `f`, the
/// failures), `rest` (a filter, an order, a limit) added.
fn failures_select(rest: &str) -> String {
    let event_columns: Vec<String> = EVENT_COLUMNS.split(", ").map(|column| format!("e.{column}")).collect();
    format!(
        "SELECT {}, f.handler, f.status, f.attempts, f.first_error, f.last_error, f.first_failed_at, f.last_failed_at
         FROM protean_failures f JOIN protean_events e
             ON e.aggregate = f.aggregate AND e.stream_id = f.stream_id AND e.sequence = f.sequence AND e.id = f.event_id
         {rest}",
        event_columns.join(", ")
    )
}

/// Holds an event behind a dead letter of its stream in one statement (see
/// [`Deliveries::hold_behind_dead_letter`]): `$1` the handler, `$2` the event id, `$3`, `$4`,
/// `$5` its stream and sequence, `$6` the reason, `$7` the time.
///
/// `ahead` finds a dead or held failure of an earlier event of the stream and locks it
/// (`FOR SHARE`) until this statement's transaction commits, so a replay or a discard
/// removing it waits for the held record, and a listing made after that removal sees it.
/// A removal committed first is not found: a row deleted while `ahead` waited for its
/// lock is skipped, and the next one, if any, locked instead. Then, in the same
/// statement, either the held record is written (a dead letter or a retried failure of
/// the event itself is left as it is) or, nothing being ahead, a held record of the
/// event itself is forgotten.
const HOLD: &str = "
WITH ahead AS (
    SELECT 1 FROM protean_failures
    WHERE handler = $1 AND aggregate = $3 AND stream_id = $4 AND sequence < $5 AND status <> 'retrying'
    LIMIT 1 FOR SHARE),
held AS (
    INSERT INTO protean_failures (handler, event_id, aggregate, stream_id, sequence, position, status, attempts,
        first_error, last_error, first_failed_at, last_failed_at)
    SELECT $1, $2, $3, $4, $5,
        (SELECT position FROM protean_events WHERE aggregate = $3 AND stream_id = $4 AND sequence = $5 AND id = $2),
        'held', 0, $6, $6, $7, $7
    WHERE EXISTS (SELECT 1 FROM ahead)
    ON CONFLICT (handler, event_id) DO UPDATE SET last_error = excluded.last_error,
        last_failed_at = excluded.last_failed_at
        WHERE protean_failures.status = 'held'),
freed AS (
    DELETE FROM protean_failures
    WHERE handler = $1 AND event_id = $2 AND status = 'held' AND NOT EXISTS (SELECT 1 FROM ahead))
SELECT EXISTS (SELECT 1 FROM ahead)";

/// The channel the store notifies after a commit that stored an event not delivered yet
/// (see `postgres/notify.rs`).
const OUTBOX_CHANNEL: &str = "protean_outbox";

/// How long the outbox listener waits to listen again after an error, the first time;
/// the wait doubles with every error in a row, up to [`MAX_RELISTEN_DELAY`].
const RELISTEN_DELAY: Duration = Duration::from_millis(250);

/// The longest wait of the outbox listener between two attempts to listen.
const MAX_RELISTEN_DELAY: Duration = Duration::from_secs(5);

/// A [`Store`](super::Store) in PostgreSQL, shared by every process that connects to it.
///
/// Each store has an owner identity and, besides its pool, one connection of its own
/// that holds a session-level advisory lock on the owner's key for the store's lifetime
/// (until the last clone is dropped). Claims of undelivered events record their owner;
/// a claim is respected while its lease runs and its owner holds that lock, so a live
/// process's claims are kept, and a dead process's (its connection closed, the server
/// released its lock) are taken over at once. Should that connection break while the
/// process lives, its claims are free to others: events in flight may then be delivered
/// twice, the handled records keeping each handler's effect single.
///
/// Its [`outbox_signal`](Outbox::outbox_signal) listens on channel `protean_outbox`, on a
/// connection of its own opened on first use (one per store, shared by its clones, closed
/// with the last of them): it fires after commits, from any process, that store an
/// event not yet delivered (one notification may stand for several commits), and also
/// whenever it starts listening (on first use, and
/// after the connection was lost and made again), as commits meanwhile went unheard. A
/// waiting worker is woken, and one permit is kept for the next to wait.
///
/// [`connect`](Self::connect) creates or upgrades the schema, which takes a role that may
/// create tables and functions. A production role that may only read and write the
/// tables connects with [`connect_without_migrating`](Self::connect_without_migrating),
/// and the schema is migrated beforehand, by a deployment step with an owner's role
/// ([`migrate`](Self::migrate)).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    owner: Uuid,
    /// The connection holding the owner's advisory lock; never used after connecting,
    /// only kept open (until [`close`](Self::close) takes it to close it).
    liveness: Arc<Mutex<Option<PgConnection>>>,
    /// The listener behind [`Outbox::outbox_signal`], shared by the clones; it stops when
    /// the last of them goes.
    outbox: Arc<OutboxListener>,
    /// What notifies the outbox's channel after a commit that wrote undelivered events
    /// (shared by the clones).
    notifier: Arc<Notifier>,
    /// A log position at or below which every event is known to be committed (or rolled
    /// back): [`Records::log_after`] need not check pages below it (shared by the clones).
    settled: Arc<std::sync::atomic::AtomicU64>,
    /// The batches waiting for group commit (shared by the clones); `None` when grouping
    /// is off, and each commit is a statement of its own.
    groups: Option<Arc<GroupQueue>>,
}

/// How to connect a [`PostgresStore`]: the pool's size, how long connecting may take,
/// and whether connecting migrates the schema or only checks it.
///
/// ```no_run
/// # extern crate protean_core as protean;
/// # async fn demo() -> Result<(), protean::store::StoreError> {
/// use protean::store::PostgresOptions;
/// // A least-privilege role: no DDL; a database not at this build's schema version is
/// // refused with `StoreError::Schema`.
/// let store = PostgresOptions::new()
///     .max_connections(8)
///     .migrate(false)
///     .connect("postgres://app@db.internal/orders")
///     .await?;
/// # let _ = store; Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    max_connections: u32,
    migrate: bool,
    group_commit: bool,
    groups_in_flight: usize,
    connect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            migrate: true,
            group_commit: true,
            groups_in_flight: group::DEFAULT_GROUPS_IN_FLIGHT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl PostgresOptions {
    /// The defaults: a pool of up to 16 connections, a connect timeout of 10 s, the
    /// schema migrated on connecting, and group commit on, with up to 2 groups in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long [`connect`](Self::connect) waits for the server to answer its first
    /// connection (TCP, TLS and authentication together) before it fails; 10 s by
    /// default. A server that refuses the connection (nothing listens on the port) or a
    /// host that cannot be resolved fails at once, whatever this says, with the cause
    /// in the error's message. Later connections of the pool wait for up to sqlx's
    /// acquire timeout (30 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The most connections the pool opens (besides the store's own: its liveness
    /// connection and, once used, its outbox listener's and its outbox notifier's).
    pub fn max_connections(mut self, max_connections: u32) -> Self {
        self.max_connections = max_connections;
        self
    }

    /// Whether connecting brings the schema up to date (`true`, the default: this takes a
    /// role that may create tables and functions) or only checks that the database is at
    /// [`SCHEMA_VERSION`](crate::store::POSTGRES_SCHEMA_VERSION) and issues no DDL
    /// (`false`, for a role that may only read and write the tables).
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Whether commits are grouped (`true`, the default): each
    /// [`commit`](Records::commit) queues its batch, and a writer commits every batch
    /// waiting as one group, in one statement and one transaction, each batch in a
    /// subtransaction of its own (so it fails alone, as it would alone), answering each
    /// once the transaction has committed. Under concurrent commits this saves round trips
    /// and transaction commits (WAL flushes); a lone commit is still one statement. With
    /// `false`, every commit is a statement and a transaction of its own. [`commit_group`](Records::commit_group) commits its batches as one group
    /// either way.
    pub fn group_commit(mut self, group_commit: bool) -> Self {
        self.group_commit = group_commit;
        self
    }

    /// How many groups may commit at once (at least 1; 2 by default): while they do, the
    /// next group forms from the commits that arrive. Each takes a connection of the pool
    /// while it commits.
    pub fn groups_in_flight(mut self, groups: usize) -> Self {
        self.groups_in_flight = groups.max(1);
        self
    }

    /// Connects to `url` (`postgres://user:password@host:port/database`, with sqlx's
    /// parameters: `?sslmode=require`, …).
    ///
    /// The store's first connection is opened directly, not through the pool: a server
    /// that is down fails at once, or after the [connect
    /// timeout](Self::connect_timeout), with an error that names the cause ("Connection
    /// refused", …). A URL that asks for TLS (`sslmode=require`, `verify-ca`,
    /// `verify-full`, or the same from `PGSSLMODE`) needs protean's `postgres-tls`
    /// feature (rustls); without it, connecting fails with [`StoreError::Unsupported`]
    /// naming the feature. With it, `sslmode=prefer` (sqlx's default) uses TLS when the
    /// server offers it.
    ///
    /// Without migrating, a database at another schema version is refused with
    /// [`StoreError::Schema`] (`found` 0 when it has no protean schema at all).
    pub async fn connect(&self, url: &str) -> Result<PostgresStore, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(backend)?;
        tls_available(&options)?;
        let connecting = PgConnection::connect_with(&options);
        let mut liveness = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(connected) => connected.map_err(backend)?,
            Err(_) => return Err(StoreError::backend("postgres", NoAnswer::new(&options, self.connect_timeout))),
        };
        // The server answered: the pool opens its connections as they are needed.
        let pool = PgPoolOptions::new().max_connections(self.max_connections).connect_lazy_with(options);
        if !self.migrate {
            let mut connection = pool.acquire().await.map_err(backend)?;
            let found = stored_version(&mut connection).await?;
            if found != SCHEMA_VERSION {
                return Err(schema_error(found));
            }
        }
        // A random key is free unless another live store drew it: then draw again.
        let mut owner = Uuid::new_v4();
        for _ in 0..8 {
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(owner_key(owner))
                .fetch_one(&mut liveness)
                .await
                .map_err(backend)?;
            if locked {
                let notifier = Arc::new(Notifier::new(pool.connect_options().as_ref().clone()));
                let store = PostgresStore {
                    pool,
                    owner,
                    liveness: Arc::new(Mutex::new(Some(liveness))),
                    outbox: Arc::default(),
                    notifier,
                    settled: Arc::default(),
                    groups: self.group_commit.then(|| Arc::new(GroupQueue::new(self.groups_in_flight))),
                };
                if self.migrate {
                    store.migrate().await?;
                }
                return Ok(store);
            }
            owner = Uuid::new_v4();
        }
        Err(StoreError::Unsupported("postgres: no free advisory-lock key for this store's owner identity".into()))
    }
}

/// The DETAIL of an error the server raised, if it has one.
fn error_detail(error: &dyn sqlx::error::DatabaseError) -> Option<String> {
    error.try_downcast_ref::<PgDatabaseError>().and_then(|e| e.detail()).map(str::to_owned)
}

/// The connect timeout of [`PostgresOptions`] by default: long enough for a server
/// across the world, short enough that a host that never answers is found out soon.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A server that did not answer within the connect timeout.
#[derive(Debug, thiserror::Error)]
#[error("{host}:{port} did not answer within {timeout:?} (PostgresOptions::connect_timeout)")]
struct NoAnswer {
    host: String,
    port: u16,
    timeout: Duration,
}

impl NoAnswer {
    fn new(options: &PgConnectOptions, timeout: Duration) -> Self {
        NoAnswer { host: options.get_host().to_owned(), port: options.get_port(), timeout }
    }
}

/// Whether this build can make the connection `options` asks for: TLS takes the
/// `postgres-tls` feature.
fn tls_available(options: &PgConnectOptions) -> Result<(), StoreError> {
    use sqlx::postgres::PgSslMode;
    let mode = match options.get_ssl_mode() {
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
        PgSslMode::Disable | PgSslMode::Allow | PgSslMode::Prefer => return Ok(()),
    };
    if cfg!(feature = "postgres-tls") {
        return Ok(());
    }
    Err(StoreError::Unsupported(format!(
        "postgres: the connection asks for TLS (sslmode={mode}, from the URL or PGSSLMODE), and this build of protean \
         has none: enable protean's `postgres-tls` feature"
    )))
}

/// A driver's error; a call on a closed store's pool is [`StoreError::Closed`].
fn backend(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolClosed => StoreError::Closed { backend: "postgres" },
        e => StoreError::backend("postgres", e),
    }
}

/// The database is at `found`, not at [`SCHEMA_VERSION`].
fn schema_error(found: SchemaVersion) -> StoreError {
    StoreError::Schema { backend: "postgres", found, supported: SCHEMA_VERSION }
}

/// The schema version a database is at: 0 when it has no protean schema.
async fn stored_version(connection: &mut PgConnection) -> Result<SchemaVersion, StoreError> {
    // `to_regclass` finds the table as the queries do (on the search path), or is NULL.
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('protean_schema') IS NOT NULL")
        .fetch_one(&mut *connection)
        .await
        .map_err(backend)?;
    if !exists {
        return Ok(SchemaVersion(0));
    }
    let version: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM protean_schema")
        .fetch_one(&mut *connection)
        .await
        .map_err(backend)?;
    let version = version.unwrap_or(0);
    u32::try_from(version).map(SchemaVersion).map_err(|_| {
        StoreError::Unsupported(format!("postgres: protean_schema holds version {version}, not a version"))
    })
}

/// A `timestamptz` as read back: the time, or (`Err`) the microseconds since the Unix
/// epoch of one outside the years `time` represents (-9999..=9999), `'infinity'`
/// among them. sqlx's own decoding of [`OffsetDateTime`] panics on those.
struct StoredTime(Result<OffsetDateTime, i128>);

/// PostgreSQL's epoch, 2000-01-01T00:00:00Z, in microseconds since the Unix epoch.
const POSTGRES_EPOCH_MICROS: i128 = 946_684_800_000_000;

impl sqlx::Type<Postgres> for StoredTime {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as sqlx::Type<Postgres>>::type_info()
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for StoredTime {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        match value.format() {
            // Text is parsed, not added up: no panic there.
            PgValueFormat::Text => Ok(StoredTime(Ok(<OffsetDateTime as sqlx::Decode<Postgres>>::decode(value)?))),
            PgValueFormat::Binary => {
                let micros = i128::from(<i64 as sqlx::Decode<Postgres>>::decode(value)?) + POSTGRES_EPOCH_MICROS;
                Ok(StoredTime(OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).map_err(|_| micros)))
            }
        }
    }
}

/// A count the function's `integer` parameters take (an event version, a commit's number
/// of events); a larger one is refused rather than cut.
fn to_i32(n: impl TryInto<i32> + Copy + std::fmt::Display, stream: &StreamId, what: &str) -> Result<i32, StoreError> {
    n.try_into().map_err(|_| {
        StoreError::Unsupported(format!("postgres: {what} {n} of {stream} does not fit an integer column"))
    })
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) with a pool of
    /// up to 16 connections, and brings the schema up to date (which takes a role that
    /// may create tables and functions).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        PostgresOptions::new().connect(url).await
    }

    /// [`connect`](Self::connect) with the pool size chosen.
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        PostgresOptions::new().max_connections(max_connections).connect(url).await
    }

    /// Connects to `url` without touching the schema, for a least-privilege role that
    /// may only read and write the tables (and execute the commit function): the database
    /// must be at [`SCHEMA_VERSION`](crate::store::POSTGRES_SCHEMA_VERSION), or connecting
    /// fails with [`StoreError::Schema`] (`found` 0 when it has no protean schema at all).
    /// Migrate it beforehand with [`migrate`](Self::migrate), as a role that owns the
    /// schema. [`PostgresOptions`] chooses the pool size too.
    ///
    /// What such a role needs, in the store's schema (`public` unless the search path
    /// says otherwise):
    ///
    /// ```sql
    /// GRANT USAGE ON SCHEMA public TO app;
    /// GRANT SELECT ON protean_schema TO app;
    /// GRANT SELECT, INSERT, UPDATE ON protean_aggregates, protean_events, protean_handled,
    ///     protean_snapshots, protean_read_models TO app;
    /// GRANT SELECT, INSERT, UPDATE, DELETE ON protean_failures, protean_projections,
    ///     protean_projection_rows, protean_scheduled TO app;
    /// GRANT USAGE ON SEQUENCE protean_events_position_seq TO app;
    /// GRANT EXECUTE ON FUNCTION protean_commit_batch, protean_commit_group TO app; -- PUBLIC has it unless revoked
    /// ```
    ///
    /// Such a role cannot create the index of a projection's declared field: registering
    /// a projection then goes on without it (and logs a warning), and its queries read
    /// without the index. Register the projections once as the owner (a deployment step
    /// that builds the domain with an owner's store does) to have them.
    pub async fn connect_without_migrating(url: &str) -> Result<Self, StoreError> {
        PostgresOptions::new().migrate(false).connect(url).await
    }

    /// Options to connect with: the pool size, and whether to migrate.
    pub fn options() -> PostgresOptions {
        PostgresOptions::new()
    }

    /// Creates the schema, or upgrades it to
    /// [`SCHEMA_VERSION`](crate::store::POSTGRES_SCHEMA_VERSION), in one transaction;
    /// safe to call any number of times, from any number of processes at once. Takes a
    /// role that may create and alter the tables and the commit function. A database of a
    /// newer schema (written by a later protean) is refused with [`StoreError::Schema`].
    ///
    /// The step to version 4 (times as `timestamptz`) rewrites the events table, holding
    /// an exclusive lock on it meanwhile; the step to version 5 indexes its undelivered
    /// events (reading the table, and blocking writes to it meanwhile); the step to
    /// version 6 indexes all its events by position and by type (likewise); the step to
    /// version 7 adds the group commit function only.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let found = stored_version(&mut tx).await?;
        if found > SCHEMA_VERSION {
            return Err(schema_error(found));
        }
        for (version, step) in (1..).zip(MIGRATIONS) {
            if version > found.0 {
                sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(step)).await.map_err(backend)?;
                tracing::info!(version, "postgres: migrated the schema");
            }
        }
        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(COMMIT_FUNCTION)).await.map_err(backend)?;
        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(GROUP_FUNCTION)).await.map_err(backend)?;
        if found != SCHEMA_VERSION {
            sqlx::query("DELETE FROM protean_schema").execute(&mut *tx).await.map_err(backend)?;
            sqlx::query("INSERT INTO protean_schema (version) VALUES ($1)")
                .bind(i32::try_from(SCHEMA_VERSION.0).unwrap_or(i32::MAX))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    /// The schema version the database is at (0 when it has none).
    pub async fn schema_version(&self) -> Result<SchemaVersion, StoreError> {
        let mut connection = self.pool.acquire().await.map_err(backend)?;
        stored_version(&mut connection).await
    }

    /// This store's owner identity: what its claims of undelivered events record, and
    /// whose advisory lock shows it is alive. Made when the store connects (its clones
    /// share it).
    pub fn owner(&self) -> Uuid {
        self.owner
    }

    /// Closes the store, for every clone: the work that holds a connection is finished
    /// and its connection closed, the outbox listener stops, and the connection holding
    /// the owner's advisory lock is closed (so its claims are free at once). From then on
    /// every call fails with [`StoreError::Closed`], work that was waiting for a
    /// connection of the pool included (a commit waiting in a group's queue is not
    /// written). Calling it again does nothing more. The same as [`Records::close`].
    pub async fn close(&self) -> Result<(), StoreError> {
        self.pool.close().await;
        self.outbox.stop();
        self.notifier.close().await;
        let liveness = self.liveness.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(mut connection) = liveness else { return Ok(()) };
        // Released by a statement, so that the claims are free when `close` returns: a
        // closed connection's backend ends (and drops its locks) only some time later.
        let unlocked = sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut connection).await;
        connection.close().await.map_err(backend)?;
        unlocked.map(drop).map_err(backend)
    }

    /// The pool, for tests and tools that look at the tables.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Commits one batch alone: the commit function, in one statement.
    async fn commit_now(&self, batch: Batch) -> Result<Vec<Committed>, StoreError> {
        let wakes = wakes_workers(&batch);
        let mut arrays = Arrays::default();
        arrays.push(&batch)?;
        // A batch that loses a deadlock or a serialization check to another transaction (a
        // group of another process holding what it needs while waiting for what it holds)
        // wrote nothing: it is committed again, after a short random pause.
        let mut lost = 0;
        let outcome: Result<Vec<i64>, sqlx::Error> = loop {
            let outcome =
                match arrays.arguments(false) {
                    Ok(arguments) => sqlx::query_scalar_with(
                        "SELECT protean_commit_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                         $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34,
                         $35, $36, $37, $38, $39, $40, $41, $42, $43)",
                        arguments,
                    )
                    .fetch_one(&self.pool)
                    .await,
                    Err(error) => Err(error),
                };
            match &outcome {
                Err(sqlx::Error::Database(e)) if lost < group::LOST_RETRIES && group::lost(&**e) => {
                    lost += 1;
                    tracing::debug!(attempt = lost, error = %e, "postgres: a commit lost to another transaction, committing again");
                    tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(1..=5 * u64::from(lost)))).await;
                }
                _ => break outcome,
            }
        };
        match outcome {
            Ok(returned) => {
                if wakes {
                    self.notifier.request();
                }
                group::committed(batch.commits, &returned)
            }
            Err(sqlx::Error::Database(e)) => {
                let (code, detail) = (e.code().map(Cow::into_owned), error_detail(&*e));
                let refusal = Refusal { code, detail, error: backend(sqlx::Error::Database(e)) };
                Err(self.refused(&batch, refusal).await)
            }
            Err(e) => Err(backend(e)),
        }
    }

    /// The error of a batch the commit function refused: protean's SQLSTATEs made the
    /// store's errors, any other the error as it came.
    async fn refused(&self, batch: &Batch, refusal: Refusal) -> StoreError {
        let Refusal { code, detail, error } = refusal;
        match code.as_deref() {
            // The function raises it only for a handled message.
            Some("PT208") => match &batch.handled {
                Some(h) => {
                    StoreError::AlreadyHandled { handler: h.handler.clone().into_owned(), message_id: h.message_id }
                }
                None => error,
            },
            Some("PT409") => self.conflict(&batch.commits, detail.as_deref(), error).await,
            Some("PT410") => projections::row_conflict(&batch.rows, detail.as_deref(), error),
            Some("PT411") => projections::read_conflict(self, &batch.reads, detail.as_deref(), error).await,
            Some("PT404") => projections::not_registered(detail.as_deref().unwrap_or_default()),
            _ => error,
        }
    }

    /// The [`VersionConflict`] of a batch the commit function refused (`error`): the
    /// function stops at the first aggregate whose version moved, and says (in its
    /// `detail`) the version it found there.
    async fn conflict(&self, commits: &[Commit], detail: Option<&str>, error: StoreError) -> StoreError {
        let reported = match detail.map(str::parse::<u64>) {
            Some(Ok(version)) => Some(version),
            Some(Err(parse)) => {
                tracing::warn!(detail, error = %parse, "postgres: a version conflict's detail is not the version found");
                None
            }
            None => {
                tracing::warn!("postgres: a version conflict came without the version found");
                None
            }
        };
        let found = match self.first_conflict(commits).await {
            Ok(found) => found.map(|(commit, now)| (commit, Some(now))),
            Err(e) => {
                tracing::warn!(error = ?e, "postgres: could not load the aggregates of a refused batch");
                None
            }
        };
        // Not found again (or not loaded): the first commit stands for the batch.
        let Some((commit, now)) = found.or_else(|| commits.first().map(|commit| (commit, None))) else {
            return error;
        };
        let actual = reported.or(now).unwrap_or_else(|| {
            tracing::warn!(stream = %commit.stream, "postgres: a version conflict whose version found is unknown; reporting 0");
            0
        });
        VersionConflict { stream: commit.stream.clone(), expected: commit.expected_version, actual }.into()
    }

    /// Which aggregate of a refused batch is no longer at its expected version, and the
    /// version it is at now.
    async fn first_conflict<'c>(&self, commits: &'c [Commit]) -> Result<Option<(&'c Commit, u64)>, StoreError> {
        for commit in commits {
            let now = self.load(&commit.stream).await?.map_or(0, |record| record.version);
            if now != commit.expected_version {
                return Ok(Some((commit, now)));
            }
        }
        Ok(None)
    }

    /// The [`StoreError::Corrupt`] of a failed delivery of `handler` whose stored status
    /// is `status`, an unknown one: naming its event, as [`FailureStatus::parse`] does.
    async fn unknown_status(&self, handler: &str, status: &str) -> StoreError {
        let reason = format!("a failed delivery has the unknown status `{status}`");
        let found = sqlx::query(
            "SELECT aggregate, stream_id, sequence FROM protean_failures WHERE handler = $1 AND status = $2 LIMIT 1",
        )
        .bind(handler)
        .bind(status)
        .fetch_optional(&self.pool)
        .await;
        let named = |row: &PgRow| -> Result<(StreamId, i64), sqlx::Error> {
            let stream = StreamId::new(row.try_get::<String, _>("aggregate")?, row.try_get::<String, _>("stream_id")?);
            Ok((stream, row.try_get("sequence")?))
        };
        match found.and_then(|row| row.as_ref().map(named).transpose()) {
            Ok(Some((stream, sequence))) => StoreError::corrupt(&stream, u64::try_from(sequence).unwrap_or(0), reason),
            Ok(None) => StoreError::corrupt(&StreamId::new("protean_failures", handler.to_owned()), 0, reason),
            Err(e) => backend(e),
        }
    }

    /// The [`StoreError::Corrupt`] of the oldest undelivered event, whose stored time
    /// (`micros` after the Unix epoch) is out of range: naming it, as [`stored_time`] does.
    async fn oldest_out_of_range(&self, micros: i128) -> StoreError {
        let reason = format!("the stored time {micros} µs after the Unix epoch is out of range");
        let found = sqlx::query(
            "SELECT aggregate, stream_id, sequence FROM protean_events WHERE NOT delivered
             ORDER BY recorded_at, position LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await;
        let named = |row: &PgRow| -> Result<(StreamId, i64), sqlx::Error> {
            let stream = StreamId::new(row.try_get::<String, _>("aggregate")?, row.try_get::<String, _>("stream_id")?);
            Ok((stream, row.try_get("sequence")?))
        };
        match found.and_then(|row| row.as_ref().map(named).transpose()) {
            Ok(Some((stream, sequence))) => StoreError::corrupt(&stream, u64::try_from(sequence).unwrap_or(0), reason),
            // Delivered meanwhile: named by the table.
            Ok(None) => StoreError::corrupt(&StreamId::new("protean_events", "undelivered"), 0, reason),
            Err(e) => backend(e),
        }
    }

    async fn claim_now(&self, limit: usize, lease: Duration) -> Result<Vec<Envelope>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let until = now + lease.min(super::MAX_LEASE);
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // One claim at a time: a claim in flight must not let another relay see a
        // stream's later event before its earlier one is marked claimed.
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(CLAIM_LOCK).execute(&mut *tx).await.map_err(backend)?;
        // The owners alive now: a claim of anyone else is free, whatever its lease says.
        let live: Vec<i64> = sqlx::query_scalar(LIVE_OWNERS).fetch_all(&mut *tx).await.map_err(backend)?;
        let live: foldhash::HashSet<i64> = live.into_iter().collect();
        // A claim from before owners were recorded (no owner) keeps its lease.
        let owner_alive = |owner: Option<Uuid>| owner.is_none_or(|owner| live.contains(&owner_key(owner)));
        let mut claimed = Vec::new();
        let mut order = super::ClaimOrder::new();
        // Pages of undelivered events in order, until enough are claimable or none are left
        // (a long blocked stream must not hide the streams after it).
        let page = i64::try_from(limit.saturating_mul(4).max(64)).unwrap_or(i64::MAX);
        let mut after = i64::MIN;
        'pages: loop {
            // The lease is compared on the server, so a lease of any time (`'infinity'`
            // too) reads. Read, not locked: a row another transaction holds locked for a
            // moment (a renewal, a marking) must still block its stream.
            let rows = sqlx::query(&format!(
                "SELECT {EVENT_COLUMNS}, coalesce(claimed_until > $3, FALSE) AS lease_runs, position, claimed_by
                 FROM protean_events
                 WHERE NOT delivered AND position > $1 ORDER BY position LIMIT $2"
            ))
            .bind(after)
            .bind(page)
            .bind(now)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
            for row in &rows {
                if claimed.len() == limit {
                    break 'pages;
                }
                let stream: (String, String) =
                    (row.try_get("aggregate").map_err(backend)?, row.try_get("stream_id").map_err(backend)?);
                let lease_runs: bool = row.try_get("lease_runs").map_err(backend)?;
                let claimed_by: Option<Uuid> = row.try_get("claimed_by").map_err(backend)?;
                if order.take(stream, lease_runs && owner_alive(claimed_by)) {
                    claimed.push(envelope(row)?);
                }
            }
            match rows.last() {
                Some(last) if i64::try_from(rows.len()).unwrap_or(0) == page => {
                    after = last.try_get("position").map_err(backend)?;
                }
                _ => break,
            }
        }
        // Then the events chosen are locked, passing over those locked right now, and
        // checked again: one locked, delivered or claimed meanwhile blocks the rest of its
        // stream (they come in stream order).
        let ids: Vec<Uuid> = claimed.iter().map(|e| e.id).collect();
        let locked = sqlx::query(
            "SELECT id, coalesce(claimed_until > $2, FALSE) AS lease_runs, claimed_by FROM protean_events
             WHERE id = ANY($1) AND NOT delivered FOR UPDATE SKIP LOCKED",
        )
        .bind(&ids)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let mut free = foldhash::HashSet::default();
        for row in &locked {
            let lease_runs: bool = row.try_get("lease_runs").map_err(backend)?;
            if !(lease_runs && owner_alive(row.try_get("claimed_by").map_err(backend)?)) {
                free.insert(row.try_get::<Uuid, _>("id").map_err(backend)?);
            }
        }
        let mut blocked: foldhash::HashSet<StreamId> = foldhash::HashSet::default();
        claimed.retain(|event| {
            let take = !blocked.contains(&event.stream) && free.contains(&event.id);
            if !take {
                blocked.insert(event.stream.clone());
            }
            take
        });
        let ids: Vec<Uuid> = claimed.iter().map(|e| e.id).collect();
        sqlx::query(
            "UPDATE protean_events SET claimed_until = $1, claimed_by = $2 WHERE id = ANY($3) AND NOT delivered",
        )
        .bind(until)
        .bind(self.owner)
        .bind(&ids)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(claimed)
    }
}

/// Whether committing `batch` calls for the workers of every process to wake: it stores
/// an event not delivered yet, or schedules a command. (Cancelling only, or storing
/// events delivered with the commit, does not.)
fn wakes_workers(batch: &Batch) -> bool {
    !batch.schedule.is_empty()
        || batch.commits.iter().flat_map(|c| &c.events).any(|event| !batch.delivered.contains(&event.id))
}

/// The time in `column` of `row`; one `time` cannot represent is corrupt data of the
/// event at `position` of `stream`.
fn stored_time(row: &PgRow, column: &str, stream: &StreamId, position: u64) -> Result<OffsetDateTime, StoreError> {
    let StoredTime(time) = row.try_get(column).map_err(backend)?;
    time.map_err(|micros| {
        StoreError::corrupt(
            stream,
            position,
            format!("the stored time {micros} µs after the Unix epoch is out of range"),
        )
    })
}

/// A failed delivery from a row of [`FAILURES`]; bad stored values are typed errors.
fn failed_delivery(row: &PgRow) -> Result<FailedDelivery, StoreError> {
    let event = envelope(row)?;
    let status: String = row.try_get("status").map_err(backend)?;
    let status = FailureStatus::parse(&status, &event)?;
    let attempts: i32 = row.try_get("attempts").map_err(backend)?;
    let attempts = stored_attempts(attempts, &event)?;
    let first_failed_at = stored_time(row, "first_failed_at", &event.stream, event.sequence)?;
    let last_failed_at = stored_time(row, "last_failed_at", &event.stream, event.sequence)?;
    Ok(FailedDelivery {
        handler: row.try_get("handler").map_err(backend)?,
        status,
        attempts,
        first_error: row.try_get("first_error").map_err(backend)?,
        last_error: row.try_get("last_error").map_err(backend)?,
        first_failed_at,
        last_failed_at,
        event,
    })
}

/// A failed delivery's stored count of attempts, which must not be negative.
fn stored_attempts(attempts: i32, event: &Envelope) -> Result<u32, StoreError> {
    u32::try_from(attempts).map_err(|_| {
        StoreError::corrupt(&event.stream, event.sequence, format!("a failed delivery counts {attempts} attempts"))
    })
}

/// Wakes the delivery workers waiting on an outbox signal now, and the next one to wait
/// (a permit, for a worker between two waits).
fn wake(notify: &Notify) {
    notify.notify_waiters();
    notify.notify_one();
}

/// The outbox signal of a store and the task that listens for it, started on first use
/// and stopped when this is dropped (with the last clone of the store).
#[derive(Debug, Default)]
struct OutboxListener {
    started: Mutex<Option<(Arc<Notify>, tokio::task::JoinHandle<()>)>>,
    /// Set when the store is closed: no listener is started again.
    stopped: std::sync::atomic::AtomicBool,
}

impl OutboxListener {
    /// The signal, its listener started on the current tokio runtime if it is not
    /// running (not yet, or no longer: the runtime it ran on shut down); `None` outside a
    /// runtime when it is not running (nothing to run the listener on).
    fn signal(&self, options: &PgConnectOptions) -> Option<Arc<Notify>> {
        let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        if self.stopped.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let notify = match &*started {
            Some((notify, task)) if !task.is_finished() => return Some(Arc::clone(notify)),
            Some((notify, _)) => Arc::clone(notify),
            None => Arc::new(Notify::new()),
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("postgres: no tokio runtime to listen for outbox notifications on");
            return None;
        };
        let task = runtime.spawn(listen(options.clone(), Arc::clone(&notify)));
        *started = Some((Arc::clone(&notify), task));
        Some(notify)
    }
}

impl OutboxListener {
    /// Stops the listener, for good: [`signal`](Self::signal) answers `None` from then on.
    fn stop(&self) {
        let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, task)) = started.take() {
            task.abort();
        }
        self.stopped.store(true, std::sync::atomic::Ordering::Release);
    }
}

impl Drop for OutboxListener {
    fn drop(&mut self) {
        let started = self.started.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, task)) = started.take() {
            task.abort();
        }
    }
}

/// Listens on [`OUTBOX_CHANNEL`] with a connection of its own, waking `notify` on every
/// notification, until aborted; after an error it waits a little and listens again.
async fn listen(options: PgConnectOptions, notify: Arc<Notify>) {
    let mut delay = RELISTEN_DELAY;
    loop {
        let Err(error) = listen_until_error(&options, &notify, &mut delay).await;
        tracing::warn!(%error, retry_in = ?delay, "postgres: listening for outbox notifications failed");
        tokio::time::sleep(delay).await;
        delay = delay.saturating_mul(2).min(MAX_RELISTEN_DELAY);
    }
}

/// Connects, listens, and wakes `notify` on each notification until an error; resets
/// `delay` once listening. Wakes it also whenever it starts listening (on connecting, and
/// after sqlx made a lost connection again), as a commit meanwhile went unheard.
async fn listen_until_error(
    options: &PgConnectOptions,
    notify: &Notify,
    delay: &mut Duration,
) -> Result<Infallible, sqlx::Error> {
    // A pool of one, as `PgListener::connect` makes: the listener takes its connections
    // from it, again after losing one.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with(options.clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(OUTBOX_CHANNEL).await?;
    *delay = RELISTEN_DELAY;
    wake(notify);
    loop {
        // `None`: the connection was lost, and is listening again.
        let _ = listener.try_recv().await?;
        wake(notify);
    }
}

/// An envelope from a row selected with [`EVENT_COLUMNS`]; bad stored values are typed errors.
fn envelope(row: &PgRow) -> Result<Envelope, StoreError> {
    let aggregate: String = row.try_get("aggregate").map_err(backend)?;
    let stream_id: String = row.try_get("stream_id").map_err(backend)?;
    let stream = StreamId::new(aggregate, stream_id);
    let sequence: i64 = row.try_get("sequence").map_err(backend)?;
    let position = stored_count(sequence, &stream, "event sequence")?;
    let version: i32 = row.try_get("version").map_err(backend)?;
    let version = u32::try_from(version)
        .map_err(|_| StoreError::corrupt(&stream, position, format!("event version {version} is out of range")))?;
    let recorded_at = stored_time(row, "recorded_at", &stream, position)?;
    let payload: String = row.try_get("payload").map_err(backend)?;
    let type_name: String = row.try_get("type_name").map_err(backend)?;
    Ok(Envelope::stored_event(
        row.try_get("id").map_err(backend)?,
        Cow::Owned(type_name),
        version,
        stream,
        position,
        recorded_at,
        row.try_get("correlation_id").map_err(backend)?,
        row.try_get("causation_id").map_err(backend)?,
        payload.into(),
    ))
}

impl Records for PostgresStore {
    fn migrate(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(PostgresStore::migrate(self))
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(PostgresStore::close(self))
    }

    fn load<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT version, state FROM protean_aggregates WHERE aggregate = $1 AND id = $2 AND state IS NOT NULL",
            )
            .bind(&*stream.aggregate)
            .bind(&*stream.id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
            let Some(row) = row else { return Ok(None) };
            let version: i64 = row.try_get("version").map_err(backend)?;
            let state: String = row.try_get("state").map_err(backend)?;
            Ok(Some(Record { version: stored_count(version, stream, "version")?, state: state.into() }))
        })
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, Result<Vec<Committed>, StoreError>> {
        Box::pin(async move {
            match &self.groups {
                Some(queue) => self.commit_queued(queue, batch).await,
                None => self.commit_now(batch).await,
            }
        })
    }

    fn commit_group(&self, batches: Vec<Batch>) -> BoxFuture<'_, Vec<Result<Vec<Committed>, StoreError>>> {
        Box::pin(self.commit_group_now(batches))
    }

    fn stream<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM protean_events WHERE aggregate = $1 AND stream_id = $2 ORDER BY sequence"
            );
            let rows = sqlx::query(&sql)
                .bind(&*stream.aggregate)
                .bind(&*stream.id)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
            rows.iter().map(envelope).collect()
        })
    }

    fn stream_range<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM protean_events WHERE aggregate = $1 AND stream_id = $2
                 AND sequence > $3 AND sequence <= $4 ORDER BY sequence"
            );
            let rows = sqlx::query(&sql)
                .bind(&*stream.aggregate)
                .bind(&*stream.id)
                .bind(to_i64(after))
                .bind(up_to.map_or(i64::MAX, to_i64))
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
            rows.iter().map(envelope).collect()
        })
    }

    fn replay_events<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<ReplayEvents, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT sequence, type_name, version, payload FROM protean_events
                 WHERE aggregate = $1 AND stream_id = $2 AND sequence > $3 AND sequence <= $4 ORDER BY sequence",
            )
            .bind(&*stream.aggregate)
            .bind(&*stream.id)
            .bind(to_i64(after))
            .bind(up_to.map_or(i64::MAX, to_i64))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
            let mut events = ReplayEvents::with_capacity(rows.len());
            for row in &rows {
                let sequence: i64 = row.try_get(0).map_err(backend)?;
                let sequence = stored_count(sequence, stream, "event sequence")?;
                let version: i32 = row.try_get(2).map_err(backend)?;
                let version = u32::try_from(version).map_err(|_| {
                    StoreError::corrupt(stream, sequence, format!("event version {version} is out of range"))
                })?;
                let type_name: &str = row.try_get(1).map_err(backend)?;
                let payload: &str = row.try_get(3).map_err(backend)?;
                events.push(StoredEvent { sequence, type_name, version, payload });
            }
            Ok(events)
        })
    }

    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
        at_most: Option<u64>,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT sequence, state FROM protean_snapshots WHERE aggregate = $1 AND id = $2 AND sequence <= $3
                 ORDER BY sequence DESC LIMIT 1",
            )
            .bind(&*stream.aggregate)
            .bind(&*stream.id)
            .bind(at_most.map_or(i64::MAX, to_i64))
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
            let Some(row) = row else { return Ok(None) };
            let sequence: i64 = row.try_get("sequence").map_err(backend)?;
            let state: String = row.try_get("state").map_err(backend)?;
            Ok(Some(Snapshot { sequence: stored_count(sequence, stream, "snapshot sequence")?, state: state.into() }))
        })
    }

    fn events(&self, from: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Box::pin(async move {
            let sql = format!("SELECT {EVENT_COLUMNS} FROM protean_events ORDER BY position LIMIT $1 OFFSET $2");
            let rows = sqlx::query(&sql).bind(limit).bind(to_i64(from)).fetch_all(&self.pool).await.map_err(backend)?;
            rows.iter().map(envelope).collect()
        })
    }

    fn log_after<'a>(
        &'a self,
        after: u64,
        limit: usize,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Logged>, StoreError>> {
        Box::pin(self.log_after_now(after, limit, types))
    }

    fn log_count<'a>(&'a self, after: u64, types: &'a [String]) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(self.log_count_now(after, types))
    }
}

impl Outbox for PostgresStore {
    fn claim_undelivered(&self, limit: usize, lease: Duration) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        Box::pin(self.claim_now(limit, lease))
    }

    fn renew_claims(&self, event_ids: Vec<Uuid>, lease: Duration) -> BoxFuture<'_, Result<(), StoreError>> {
        let until = OffsetDateTime::now_utc() + lease.min(super::MAX_LEASE);
        Box::pin(async move {
            sqlx::query(
                "UPDATE protean_events SET claimed_until = $1
                 WHERE id = ANY($2) AND NOT delivered AND claimed_by = $3",
            )
            .bind(until)
            .bind(&event_ids)
            .bind(self.owner)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
        })
    }

    fn release_claims(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE protean_events SET claimed_until = NULL, claimed_by = NULL
                 WHERE id = ANY($1) AND NOT delivered AND claimed_by = $2",
            )
            .bind(&event_ids)
            .bind(self.owner)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
        })
    }

    fn mark_delivered(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query("UPDATE protean_events SET delivered = TRUE WHERE id = ANY($1) AND NOT delivered")
                .bind(&event_ids)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(backend)
        })
    }

    fn outbox_status(&self) -> BoxFuture<'_, Result<OutboxStatus, StoreError>> {
        Box::pin(async move {
            // Both in one statement, from the index of the undelivered events, which
            // carries their times. The oldest is the earliest recorded, which need not
            // be the first in the log (an event's time is taken before its commit).
            let row = sqlx::query(
                "SELECT count(*) AS undelivered, min(recorded_at) AS recorded_at FROM protean_events
                 WHERE NOT delivered",
            )
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
            let undelivered: i64 = row.try_get("undelivered").map_err(backend)?;
            let oldest_undelivered = match row.try_get::<Option<StoredTime>, _>("recorded_at").map_err(backend)? {
                None => None,
                Some(StoredTime(Ok(time))) => Some(time),
                Some(StoredTime(Err(micros))) => return Err(self.oldest_out_of_range(micros).await),
            };
            let counts =
                sqlx::query("SELECT handler, status, count(*) AS n FROM protean_failures GROUP BY handler, status")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend)?;
            let mut failures = Vec::with_capacity(counts.len());
            for row in &counts {
                let handler: String = row.try_get("handler").map_err(backend)?;
                let status: String = row.try_get("status").map_err(backend)?;
                let n: i64 = row.try_get("n").map_err(backend)?;
                let parsed = match status.as_str() {
                    "retrying" => FailureStatus::Retrying,
                    "dead" => FailureStatus::Dead,
                    "held" => FailureStatus::Held,
                    _ => return Err(self.unknown_status(&handler, &status).await),
                };
                failures.push((handler, parsed, u64::try_from(n).unwrap_or(0)));
            }
            Ok(OutboxStatus {
                undelivered: u64::try_from(undelivered).unwrap_or(0),
                oldest_undelivered,
                failures: OutboxStatus::count_failures(failures.iter().map(|(h, s, n)| (h.as_str(), *s, *n))),
            })
        })
    }

    fn outbox_signal(&self) -> Option<Arc<Notify>> {
        self.outbox.signal(&self.pool.connect_options())
    }
}

impl Deliveries for PostgresStore {
    fn is_handled<'a>(&'a self, handler: &'a str, message_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM protean_handled WHERE handler = $1 AND message_id = $2)",
            )
            .bind(handler)
            .bind(message_id)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
        })
    }

    fn handled_outcome<'a>(
        &'a self,
        handler: &'a str,
        message_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<Option<String>>, StoreError>> {
        Box::pin(async move {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT outcome FROM protean_handled WHERE handler = $1 AND message_id = $2",
            )
            .bind(handler)
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
        })
    }

    fn handler_state<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<HandlerState, StoreError>> {
        Box::pin(async move {
            // The held check is the partial index's predicate, so it reads the index.
            let row = sqlx::query(
                "SELECT EXISTS (SELECT 1 FROM protean_handled WHERE handler = $1 AND message_id = $2) AS handled,
                    EXISTS (SELECT 1 FROM protean_failures
                        WHERE handler = $1 AND aggregate = $3 AND stream_id = $4 AND status <> 'retrying') AS held,
                    coalesce((SELECT attempts FROM protean_failures WHERE handler = $1 AND event_id = $2), 0)
                        AS attempts",
            )
            .bind(handler)
            .bind(event.id)
            .bind(&*event.stream.aggregate)
            .bind(&*event.stream.id)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
            let attempts: i32 = row.try_get("attempts").map_err(backend)?;
            Ok(HandlerState {
                handled: row.try_get("handled").map_err(backend)?,
                held: row.try_get("held").map_err(backend)?,
                attempts: stored_attempts(attempts, event)?,
            })
        })
    }

    fn record_failure(&self, update: FailureUpdate) -> BoxFuture<'_, Result<u32, StoreError>> {
        Box::pin(async move {
            let counted = i32::from(update.status != FailureStatus::Held);
            let event = &update.event;
            // The event's position, found by its key (its id checked too); none for an
            // event not in the log.
            let attempts: i32 = sqlx::query_scalar(
                "INSERT INTO protean_failures (handler, event_id, aggregate, stream_id, sequence, position, status,
                     attempts, first_error, last_error, first_failed_at, last_failed_at)
                 VALUES ($1, $2, $3, $4, $5,
                     (SELECT position FROM protean_events
                         WHERE aggregate = $3 AND stream_id = $4 AND sequence = $5 AND id = $2),
                     $6, $7, $8, $8, $9, $9)
                 ON CONFLICT (handler, event_id) DO UPDATE SET status = excluded.status,
                     attempts = protean_failures.attempts + excluded.attempts, last_error = excluded.last_error,
                     last_failed_at = excluded.last_failed_at,
                     position = coalesce(protean_failures.position, excluded.position)
                 RETURNING attempts",
            )
            .bind(&*update.handler)
            .bind(event.id)
            .bind(&*event.stream.aggregate)
            .bind(&*event.stream.id)
            .bind(to_i64(event.sequence))
            .bind(update.status.as_str())
            .bind(counted)
            .bind(&update.error)
            .bind(update.at)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
            stored_attempts(attempts, event)
        })
    }

    /// One statement, which locks the failure ahead it found (see `HOLD`).
    fn hold_behind_dead_letter<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
        reason: &'a str,
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            sqlx::query_scalar::<_, bool>(HOLD)
                .bind(handler)
                .bind(event.id)
                .bind(&*event.stream.aggregate)
                .bind(&*event.stream.id)
                .bind(to_i64(event.sequence))
                .bind(reason)
                .bind(at)
                .fetch_one(&self.pool)
                .await
                .map_err(backend)
        })
    }

    fn failed_delivery<'a>(
        &'a self,
        handler: &'a str,
        event_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<FailedDelivery>, StoreError>> {
        Box::pin(async move {
            let row =
                sqlx::query(&FAILURE).bind(handler).bind(event_id).fetch_optional(&self.pool).await.map_err(backend)?;
            row.as_ref().map(failed_delivery).transpose()
        })
    }

    fn failed_deliveries(&self, query: FailureQuery) -> BoxFuture<'_, Result<Vec<FailedDelivery>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(&FAILURES)
                .bind(query.handler.as_deref())
                .bind(query.stream.as_ref().map(|s| &*s.aggregate))
                .bind(query.stream.as_ref().map(|s| &*s.id))
                .bind(query.status.map(FailureStatus::as_str))
                .bind(i64::try_from(query.limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
            rows.iter().map(failed_delivery).collect()
        })
    }

    fn remove_failure<'a>(&'a self, handler: &'a str, event_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM protean_failures WHERE handler = $1 AND event_id = $2")
                .bind(handler)
                .bind(event_id)
                .execute(&self.pool)
                .await
                .map(|done| done.rows_affected() > 0)
                .map_err(backend)
        })
    }
}

impl Projections for PostgresStore {
    fn register_projection(&self, spec: ProjectionSpec) -> BoxFuture<'_, Result<ProjectionState, StoreError>> {
        Box::pin(self.register_now(spec))
    }

    fn projection_state<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<ProjectionState>, StoreError>> {
        Box::pin(self.state_now(name))
    }

    fn projection_row<'a>(
        &'a self,
        name: &'a str,
        generation: Option<u64>,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<super::Row>, StoreError>> {
        Box::pin(self.row_now(name, generation, key))
    }

    fn query_projection(&self, query: RowQuery) -> BoxFuture<'_, Result<Vec<super::Row>, StoreError>> {
        Box::pin(self.query_now(query))
    }

    fn begin_build<'a>(
        &'a self,
        name: &'a str,
        version: u32,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<BuildState>, StoreError>> {
        Box::pin(self.begin_build_now(name, version, lease))
    }

    fn write_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        rows: Vec<(String, Option<Arc<str>>)>,
        position: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.write_build_now(name, generation, rows, position))
    }

    fn finish_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        position: u64,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.finish_build_now(name, generation, position, types))
    }

    fn read_model<'a>(&'a self, name: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(async move {
            sqlx::query_scalar::<_, String>("SELECT json FROM protean_read_models WHERE name = $1 AND key = $2")
                .bind(name)
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)
        })
    }

    fn put_read_model<'a>(
        &'a self,
        name: &'a str,
        key: &'a str,
        json: String,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO protean_read_models (name, key, json) VALUES ($1, $2, $3)
                 ON CONFLICT (name, key) DO UPDATE SET json = excluded.json",
            )
            .bind(name)
            .bind(key)
            .bind(json)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
        })
    }
}

impl Schedule for PostgresStore {
    fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Scheduled>, StoreError>> {
        Box::pin(self.claim_due_now(now, limit, lease))
    }

    fn complete_scheduled(&self, id: Uuid) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.complete_scheduled_now(id))
    }

    fn release_scheduled(&self, ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.release_scheduled_now(ids))
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<OffsetDateTime>, StoreError>> {
        Box::pin(self.next_due_now())
    }

    fn scheduled_of<'a>(
        &'a self,
        owner: &'a str,
        owner_key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Scheduled>, StoreError>> {
        Box::pin(self.scheduled_of_now(owner, owner_key))
    }
}
