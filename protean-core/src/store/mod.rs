//! Where aggregates and their events are kept: the [`Store`] trait every backend
//! implements, and [`MemoryStore`], the in-memory one.
//!
//! A store keeps one record per aggregate (its whole cluster as JSON, with a version)
//! and the events each commit raised. A unit of work's [`Batch`] is atomic: every record
//! is written only when its version is still the one the unit of work loaded, the
//! events are appended in the same step (the transactional outbox: an event is stored
//! if and only if the change that raised it is), and the message the unit handled is
//! recorded with it (so a redelivered event is not handled twice); or nothing is
//! written at all.
//!
//! Events start undelivered. The engine delivers them after the commit and marks them
//! delivered once every handler has succeeded; what a process did not deliver (it
//! stopped, a handler failed) is claimed again by
//! [`Domain::deliver_pending`](crate::runtime::Domain::deliver_pending).

pub(crate) mod envelope;
mod memory;
mod outbox;
#[cfg(feature = "postgres")]
mod postgres;
mod projection;
mod replay;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use uuid::Uuid;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{PostgresOptions, PostgresStore, SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::{Durability, SqliteOptions, SqliteStore, SCHEMA_VERSION as SQLITE_SCHEMA_VERSION};

pub use crate::model::error::{DriverError, SchemaVersion, StoreError, VersionConflict};
pub use envelope::{Cause, Envelope, StreamId};
pub use outbox::{
    FailedDelivery, FailureCounts, FailureQuery, FailureStatus, FailureUpdate, HandlerState, OutboxStatus,
};
pub use projection::{
    BuildState, Cancel, FilterOp, Logged, ProjectionSpec, ProjectionState, Row, RowChange, RowFilter, RowOrder,
    RowQuery, RowRead, RowVersion, Scheduled,
};
pub use replay::{ReplayEvents, ReplayIter, StoredEvent};
/// The time type of [`Envelope::recorded_at`], from the `time` crate.
pub use time::OffsetDateTime;

/// Opens the store a URL names:
///
/// * `memory:` — a new [`MemoryStore`];
/// * `sqlite:PATH` or `sqlite://PATH` (or a bare path) — a [`SqliteStore`] file, created
///   when missing (`sqlite::memory:` for a private in-memory database);
/// * `postgres://…` or `postgresql://…` — a [`PostgresStore`].
///
/// The schema is created or upgraded on the way.
///
/// ```
/// # extern crate protean_core as protean;
/// # async fn demo() -> Result<(), protean::store::StoreError> {
/// let store = protean::store::connect("memory:").await?;
/// # let _ = store; Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url == "memory:" {
        return Ok(std::sync::Arc::new(MemoryStore::new()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return Ok(std::sync::Arc::new(PostgresStore::connect(url).await?));
        #[cfg(not(feature = "postgres"))]
        return Err(StoreError::Unsupported(
            "this build has no PostgreSQL store: enable the `postgres` feature".into(),
        ));
    }
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    #[cfg(feature = "sqlite")]
    {
        if path == ":memory:" {
            return Ok(std::sync::Arc::new(SqliteStore::in_memory()?));
        }
        Ok(std::sync::Arc::new(SqliteStore::open(path)?))
    }
    #[cfg(not(feature = "sqlite"))]
    {
        let _ = path;
        Err(StoreError::Unsupported("this build has no SQLite store: enable the `sqlite` feature".into()))
    }
}

/// The longest lease a claim takes (longer ones are cut to it): a year.
pub const MAX_LEASE: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The rule every store's claim follows, event by event in log order over the
/// undelivered events: an event whose lease is still held is not taken, and blocks the
/// later events of its stream; so does any event of an already blocked stream. So each
/// stream is handed out in order, whoever holds its earlier events.
#[derive(Debug)]
pub(crate) struct ClaimOrder<K> {
    blocked: foldhash::HashSet<K>,
}

impl<K: std::hash::Hash + Eq> ClaimOrder<K> {
    pub(crate) fn new() -> Self {
        ClaimOrder { blocked: foldhash::HashSet::default() }
    }

    /// Whether to claim the next undelivered event, of stream `stream`, whose lease is
    /// still held by someone (`leased`).
    pub(crate) fn take(&mut self, stream: K, leased: bool) -> bool {
        if self.blocked.contains(&stream) {
            return false;
        }
        if leased {
            self.blocked.insert(stream);
            return false;
        }
        true
    }
}

/// What a store that does not keep something answers.
fn unsupported<'a, T: Send + 'a>(what: &str) -> BoxFuture<'a, Result<T, StoreError>> {
    let error = StoreError::Unsupported(format!("this store does not keep {what}"));
    Box::pin(std::future::ready(Err(error)))
}

/// A boxed, sendable future: what the object-safe async traits here return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An aggregate's stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The version of the last commit that wrote it: the stored version plus each
    /// commit's [`Commit::advance`] (1 after the first commit of a state-stored aggregate).
    pub version: u64,
    /// The aggregate, root, entities and value objects together, as JSON (shared, so
    /// handing out a copy does not copy the text).
    pub state: std::sync::Arc<str>,
}

/// What a unit of work writes for one aggregate: its state and the events it raised.
#[derive(Debug, Clone)]
pub struct Commit {
    /// The aggregate's stream: its type and identity.
    pub stream: StreamId,
    /// The version the unit of work loaded (0 for an aggregate it added).
    pub expected_version: u64,
    /// How far the aggregate's version moves with this commit: 1 for a state-stored
    /// aggregate (one per commit), the number of events for an event-sourced one (so
    /// its version is the sequence of its last event). The store writes the stored
    /// version plus `advance`.
    pub advance: u64,
    /// The new state as JSON, or `None` to remove the aggregate.
    pub state: Option<std::sync::Arc<str>>,
    /// The events raised, in order; the store assigns their sequence numbers.
    pub events: Vec<Envelope>,
    /// A snapshot of an event-sourced aggregate as of this commit's last event, kept
    /// so that loading replays only the events after it.
    pub snapshot: Option<std::sync::Arc<str>>,
}

/// A snapshot of an event-sourced aggregate: its state as of one event of its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The sequence of the last event it reflects.
    pub sequence: u64,
    /// The aggregate as JSON.
    pub state: std::sync::Arc<str>,
}

/// Everything one unit of work writes, in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The aggregates written, with their events.
    pub commits: Vec<Commit>,
    /// The message the unit of work handled, recorded in the same transaction; `None`
    /// for a command or application code.
    pub handled: Option<Handled>,
    /// Events to mark delivered in the same transaction: the one handled here when its
    /// handler is its only one, and new events that no handler takes.
    pub delivered: Vec<Uuid>,
    /// Changes to projection rows, applied by the rule described on [`RowChange`]'s module
    /// (skipped while a rebuild runs or when a rebuild already covered their event;
    /// otherwise checked against each row's version).
    pub rows: Vec<RowChange>,
    /// The stored event the row changes come from (an async projector's), whose log
    /// position decides whether a rebuild already covered them; `None` when they come
    /// from this batch's own events (inline projectors).
    pub rows_from: Option<Uuid>,
    /// Commands a process manager sends or schedules, kept until a worker fires them.
    pub schedule: Vec<Scheduled>,
    /// Pending deadlines to drop.
    pub cancel: Vec<Cancel>,
    /// What the unit of work read from projections and decided on: checked inside the
    /// commit's transaction, before any row change is applied; a read that no longer
    /// holds refuses the whole batch with [`StoreError::Conflict`] (see [`RowRead`]).
    /// Empty for a unit that read nothing it decides on, which costs nothing.
    pub reads: Vec<RowRead>,
}

/// A message a handler has handled: recorded once, so that handling it again is refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handled {
    /// The handler (`"InventoryReactions::reserve"`), or for a command the command's
    /// type name (`"Order.PlaceOrder"`).
    pub handler: std::borrow::Cow<'static, str>,
    /// The event's id, or the command's.
    pub message_id: Uuid,
    /// What handling it produced, kept to be handed back when the same message comes
    /// again (a command's reply, as JSON); `None` for an event.
    pub outcome: Option<std::sync::Arc<str>>,
}

impl Handled {
    /// An event handled by `handler`.
    pub fn event(handler: impl Into<std::borrow::Cow<'static, str>>, message_id: Uuid) -> Self {
        Handled { handler: handler.into(), message_id, outcome: None }
    }
}

/// What a successful [`Commit`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// The aggregate written.
    pub stream: StreamId,
    /// Its new version.
    pub version: u64,
    /// The events appended, with their sequence numbers.
    pub events: Vec<Envelope>,
}

/// A place to keep aggregates, their events and read models.
///
/// Implementations must make [`commit`](Store::commit) atomic and check the expected
/// version, and must hand out copies: what one unit of work loads is never changed by
/// another until it loads again.
pub trait Store: Send + Sync + 'static {
    /// Creates or upgrades the store's schema; safe to call any number of times.
    fn migrate(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// The record of one aggregate, if it exists.
    fn load<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Option<Record>, StoreError>>;

    /// Writes the aggregates of one unit of work, appends their events (undelivered) and
    /// records the handled message, in one transaction. If any aggregate's version is no
    /// longer its `expected_version`, or a projection row or query the unit read
    /// ([`Batch::reads`]) is no longer as it was read, writes nothing and returns
    /// [`StoreError::Conflict`];
    /// if the message was already handled by that handler, writes nothing and returns
    /// [`StoreError::AlreadyHandled`].
    fn commit(&self, batch: Batch) -> BoxFuture<'_, Result<Vec<Committed>, StoreError>>;

    /// Commits several units of work's batches as one group, and answers each with its
    /// own outcome, in the order given: each batch keeps its own version checks and its
    /// own handled record, so a batch that conflicts (or was already handled) fails alone
    /// and writes nothing, while the others commit. An answer is given only once the
    /// whole group is as durable as one [`commit`](Store::commit) would be.
    ///
    /// The SQL stores commit a group in one transaction (group commit): their `commit`
    /// queues each batch for one writer, which takes every batch waiting as one group.
    /// The default commits the batches one after another.
    fn commit_group(&self, batches: Vec<Batch>) -> BoxFuture<'_, Vec<Result<Vec<Committed>, StoreError>>> {
        Box::pin(async move {
            let mut outcomes = Vec::with_capacity(batches.len());
            for batch in batches {
                outcomes.push(self.commit(batch).await);
            }
            outcomes
        })
    }

    /// Claims up to `limit` undelivered events for `lease`, oldest first. An event is
    /// claimable when it is not claimed by someone else and no earlier event of its
    /// stream is still undelivered, so each stream is delivered in order even with
    /// several relays. A claim belongs to the store that made it: a store whose owner is
    /// gone (a crashed process) holds nothing, whatever the lease says, so that a
    /// restarted process gets its events at once (see each store for how it knows).
    fn claim_undelivered(&self, limit: usize, lease: Duration) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>>;

    /// Extends the lease of this store's claims on `event_ids` (those not delivered yet)
    /// to `lease` from now: what a delivery worker does while it works a stream.
    fn renew_claims(&self, event_ids: Vec<Uuid>, lease: Duration) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Frees this store's claims on `event_ids`, so any worker may claim them at once:
    /// what a worker does with what it claimed and did not deliver, when it stops.
    fn release_claims(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Marks events delivered to every handler.
    fn mark_delivered(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Whether `handler` has handled `message_id`.
    fn is_handled<'a>(&'a self, handler: &'a str, message_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// What `handler` recorded when it handled `message_id`: `None` when it has not,
    /// `Some(outcome)` when it has (see [`Handled::outcome`]).
    fn handled_outcome<'a>(
        &'a self,
        handler: &'a str,
        message_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<Option<String>>, StoreError>>;

    /// Where `handler` stands with `event`, in one read: handled, held behind a dead
    /// letter of its stream, attempts so far (see [`HandlerState`]).
    fn handler_state<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<HandlerState, StoreError>>;

    /// Records a failed attempt, or an event held behind a dead letter: the first one
    /// for a (handler, event) pair inserts it (first and last error and time), later
    /// ones update the status, the last error and time, and count one more attempt
    /// (not for [`FailureStatus::Held`]). Returns the attempts counted. It writes what it
    /// is given: a delivery worker holds an event with
    /// [`hold_behind_dead_letter`](Store::hold_behind_dead_letter), which checks that a
    /// dead letter is still ahead in the same step.
    fn record_failure(&self, update: FailureUpdate) -> BoxFuture<'_, Result<u32, StoreError>>;

    /// Holds `event` for `handler` behind a dead letter of its stream, if one is still
    /// there: what a delivery worker does with an event of a stream its handler holds.
    /// The decision and the write are one atomic step.
    ///
    /// When a failure of `handler` that is [dead](FailureStatus::Dead) or
    /// [held](FailureStatus::Held) is stored for an earlier event of the same stream
    /// (a lower sequence), records `event` as held (`reason` as its error, at `at`; an
    /// existing held record keeps its first error and time) and returns `true`.
    /// Otherwise it holds nothing, forgets a held record of `event` itself (one whose
    /// dead letter is gone), and returns `false`: the caller delivers the event. A dead
    /// letter or a retried failure of `event` itself is left as it is.
    ///
    /// Atomic against [`remove_failure`](Store::remove_failure) of the failures ahead:
    /// either the held record is written first, and a
    /// [`failed_deliveries`](Store::failed_deliveries) listing made after that removal
    /// finds it, or the removal comes first and `event` is not held. So a replay or a
    /// discard that releases the stream until a listing finds nothing held cannot miss an
    /// event held at the same moment, and no event is held once nothing is ahead of it.
    /// Stores decide it inside one transaction or lock (PostgreSQL locks the failure
    /// ahead that it found, so that removing it waits for the held record's commit).
    fn hold_behind_dead_letter<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
        reason: &'a str,
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// The failed delivery of `event_id` to `handler`, whatever its status, with its
    /// whole event; `None` when there is none. A lookup by key, not a scan.
    fn failed_delivery<'a>(
        &'a self,
        handler: &'a str,
        event_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<FailedDelivery>, StoreError>>;

    /// The failed deliveries matching `query`, in the order their events were stored.
    fn failed_deliveries(&self, query: FailureQuery) -> BoxFuture<'_, Result<Vec<FailedDelivery>, StoreError>>;

    /// Forgets the failed delivery of `event_id` to `handler` (it was delivered after
    /// all, or discarded); whether there was one.
    fn remove_failure<'a>(&'a self, handler: &'a str, event_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// How many events are undelivered, since when, and the failed deliveries per
    /// handler: cheap enough for a health endpoint.
    fn outbox_status(&self) -> BoxFuture<'_, Result<OutboxStatus, StoreError>>;

    /// A signal that fires when another process may have committed undelivered events
    /// (PostgreSQL's `LISTEN/NOTIFY`), so delivery workers wake without polling. `None`
    /// (the default) when the store has no such channel: commits in this process wake
    /// the workers anyway, and they poll at a bounded interval as a fallback.
    fn outbox_signal(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }

    /// The events of one stream, in sequence order.
    fn stream<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>>;

    /// The events of one stream with a sequence above `after` and, if given, at most
    /// `up_to`, in order. The default reads the whole stream; stores override it.
    fn stream_range<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        Box::pin(async move {
            let events = self.stream(stream).await?;
            Ok(events.into_iter().filter(|e| e.sequence > after && up_to.is_none_or(|u| e.sequence <= u)).collect())
        })
    }

    /// What replaying the events of one stream with a sequence above `after` and, if
    /// given, at most `up_to` needs, in order: each event's sequence, type name, version
    /// and payload (see [`ReplayEvents`]). Loading an event-sourced aggregate reads its
    /// events this way. The default reads [`stream_range`](Store::stream_range); stores
    /// override it to read only those columns, without building an [`Envelope`] per event.
    fn replay_events<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<ReplayEvents, StoreError>> {
        Box::pin(async move {
            let envelopes = self.stream_range(stream, after, up_to).await?;
            let mut events = ReplayEvents::with_capacity(envelopes.len());
            for envelope in &envelopes {
                events.push(envelope.replayed());
            }
            Ok(events)
        })
    }

    /// The latest snapshot of an event-sourced aggregate taken at a sequence of at most
    /// `at_most` (any, if `None`): its sequence and JSON. The default keeps none, so
    /// loading replays the whole stream: correct, only slower.
    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
        at_most: Option<u64>,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        let _ = (stream, at_most);
        Box::pin(std::future::ready(Ok(None)))
    }

    /// Every stored event in commit order, from position `from` (0-based), at most `limit`.
    fn events(&self, from: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>>;

    /// Makes sure the store keeps `spec`'s projection: creates its state (serving copy
    /// 1, at `spec.version`, never built) when missing, and the indexes its declared
    /// fields need. Returns where it stands; a stored version other than `spec.version`
    /// is left for a rebuild to change.
    fn register_projection(&self, spec: ProjectionSpec) -> BoxFuture<'_, Result<ProjectionState, StoreError>> {
        let _ = spec;
        unsupported("projections")
    }

    /// Where a projection stands, if the store keeps it.
    fn projection_state<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<ProjectionState>, StoreError>> {
        let _ = name;
        unsupported("projections")
    }

    /// One row of a projection: of the serving copy when `generation` is `None`.
    fn projection_row<'a>(
        &'a self,
        name: &'a str,
        generation: Option<u64>,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Row>, StoreError>> {
        let _ = (name, generation, key);
        unsupported("projections")
    }

    /// The rows of a projection's serving copy that match `query`, executed by the
    /// store (SQL stores use the indexes of the declared fields).
    fn query_projection(&self, query: RowQuery) -> BoxFuture<'_, Result<Vec<Row>, StoreError>> {
        let _ = query;
        unsupported("projections")
    }

    /// Starts rebuilding a projection at `version` into a new, empty copy; or, when a
    /// rebuild is under way whose builder has not written for longer than `lease`, takes
    /// it over: at the same version, its rows move to a new generation (so the silent
    /// builder's writes are refused from then on) and it resumes from its
    /// [`BuildState::position`]; at another version, it starts over. `None` when another
    /// builder is at work.
    fn begin_build<'a>(
        &'a self,
        name: &'a str,
        version: u32,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<BuildState>, StoreError>> {
        let _ = (name, version, lease);
        unsupported("projections")
    }

    /// Writes rows into the copy a rebuild fills (`Some` JSON: the row's new content,
    /// its version one more than before, 1 when new; `None`: delete), records that the
    /// log is applied through `position`, and refreshes the build's heartbeat, in one
    /// transaction. [`StoreError::Conflict`] when that copy is no longer being built
    /// (taken over, or finished).
    fn write_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        rows: Vec<(String, Option<std::sync::Arc<str>>)>,
        position: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = (name, generation, rows, position);
        unsupported("projections")
    }

    /// Finishes a rebuild: if no event of `types` (any, when empty) is stored past
    /// `position` — checked so that no commit can slip in meanwhile (PostgreSQL locks
    /// the events table against writers for the check) — makes `generation` the
    /// serving copy at the build's version, built through the log's last position, and
    /// drops the old copy's rows; returns `true`. Returns `false`, changing nothing, when
    /// there are events to apply first. [`StoreError::Conflict`] when that copy is no
    /// longer being built.
    fn finish_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        position: u64,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = (name, generation, position, types);
        unsupported("projections")
    }

    /// Up to `limit` events of `types` (any, when empty) stored after log position
    /// `after`, in log order, with their positions.
    fn log_after<'a>(
        &'a self,
        after: u64,
        limit: usize,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Logged>, StoreError>> {
        let _ = (after, limit, types);
        unsupported("the positioned log")
    }

    /// How many events of `types` (any, when empty) are stored after log position `after`.
    fn log_count<'a>(&'a self, after: u64, types: &'a [String]) -> BoxFuture<'a, Result<u64, StoreError>> {
        let _ = (after, types);
        unsupported("the positioned log")
    }

    /// Claims up to `limit` scheduled commands due at `now` (earliest first) that no
    /// one holds, for `lease`: a claim whose lease ran out may be taken again.
    fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Scheduled>, StoreError>> {
        let _ = (now, limit, lease);
        unsupported("scheduled commands")
    }

    /// Forgets a scheduled command: it was fired.
    fn complete_scheduled(&self, id: Uuid) -> BoxFuture<'_, Result<(), StoreError>> {
        let _ = id;
        unsupported("scheduled commands")
    }

    /// Frees this store's claims on scheduled commands, so any worker may fire them.
    fn release_scheduled(&self, ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        let _ = ids;
        unsupported("scheduled commands")
    }

    /// When the earliest pending scheduled command is due (claimed or not), if any.
    fn next_due(&self) -> BoxFuture<'_, Result<Option<OffsetDateTime>, StoreError>> {
        unsupported("scheduled commands")
    }

    /// The pending scheduled commands of one process manager instance, earliest first.
    fn scheduled_of<'a>(
        &'a self,
        owner: &'a str,
        owner_key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Scheduled>, StoreError>> {
        let _ = (owner, owner_key);
        unsupported("scheduled commands")
    }

    /// A read model's JSON, by its name and key.
    fn read_model<'a>(&'a self, name: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>>;

    /// Writes a read model's JSON (projections and application code do this, never a
    /// handler's unit of work).
    fn put_read_model<'a>(&'a self, name: &'a str, key: &'a str, json: String)
        -> BoxFuture<'a, Result<(), StoreError>>;
}
