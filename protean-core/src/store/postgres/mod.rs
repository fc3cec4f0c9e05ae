//! The shared store: PostgreSQL, through sqlx, for many processes on many machines.
//! [`PostgresStore`] implements each port in the file of its name (`records.rs`,
//! `outbox.rs`, `deliveries.rs`, `projections.rs`, `schedule.rs`); the rest is what
//! PostgreSQL needs of its own: the commit function and group commit, the outbox's
//! `LISTEN`/`NOTIFY`, the owner's advisory lock, row decoding, and the schema. How it
//! works and what it guarantees: docs/storage.md.

mod arrays;
mod commit;
mod deliveries;
mod group;
mod notify;
mod outbox;
mod owner;
mod projections;
mod query;
mod records;
mod rows;
mod schedule;
pub(crate) mod schema;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgDatabaseError, PgPool, PgPoolOptions};
use sqlx::Connection;
use uuid::Uuid;

use group::GroupQueue;
use notify::{Notifier, OutboxListener};
use schema::{schema_error, stored_version};

pub use schema::SCHEMA_VERSION;

#[cfg(doc)]
use super::{Outbox, Records};
use super::{SchemaVersion, StoreError};

/// The pool size of [`PostgresStore::connect`] and of [`PostgresOptions`] by default.
const DEFAULT_MAX_CONNECTIONS: u32 = 16;

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
        let owner = owner::take_owner(&mut liveness).await?;
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
        Ok(store)
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
    ///     protean_projection_rows, protean_scheduled, protean_workers TO app;
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
        schema::migrate(&self.pool).await
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
        let Some(connection) = liveness else { return Ok(()) };
        owner::release_owner(connection).await
    }

    /// The pool, for tests and tools that look at the tables.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// A row change, build or query of a projection the store does not keep.
fn not_registered(name: &str) -> StoreError {
    StoreError::Unsupported(format!("postgres: projection `{name}` is not registered: register it first"))
}

/// A lease as whole microseconds, at most [`MAX_LEASE`](crate::store::MAX_LEASE).
fn lease_micros(lease: Duration) -> i64 {
    i64::try_from(lease.min(crate::store::MAX_LEASE).as_micros()).unwrap_or(i64::MAX)
}

/// The type names to read, each once (a type named twice would read its events twice).
fn distinct(types: &[String]) -> Vec<&str> {
    let mut types: Vec<&str> = types.iter().map(String::as_str).collect();
    types.sort_unstable();
    types.dedup();
    types
}
