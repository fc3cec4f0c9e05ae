//! The [`Records`] port: aggregates' records, the event streams, snapshots and the
//! positioned log, and the store's own lifecycle (schema, closing).

use uuid::Uuid;

use crate::store::ports::{Cancel, Logged, ReplayEvents, RowChange, RowRead, Scheduled};
#[cfg(doc)]
use crate::store::Projections;
use crate::store::{BoxFuture, Envelope, StoreError, StreamId};

/// Where aggregates and their events are kept: loading and committing a unit of work's
/// [`Batch`] atomically, the streams, snapshots and the positioned log.
///
/// Implementations must make [`commit`](Records::commit) atomic and check the expected
/// version, and must hand out copies: what one unit of work loads is never changed by
/// another until it loads again.
pub trait Records: Send + Sync + 'static {
    /// Creates or upgrades the store's schema; safe to call any number of times.
    fn migrate(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Closes the store, for every clone sharing it: the work under way is finished,
    /// what the store holds is released, and from then on every call fails with
    /// [`StoreError::Closed`]. Calling it again, from any clone, is harmless. The SQL
    /// stores implement it: `SqliteStore::close` does all the work already sent to it,
    /// checkpoints the WAL and leaves no `-wal` file behind; `PostgresStore::close`
    /// finishes the work that holds a connection and closes its connections (work still
    /// waiting for one is refused). The memory store's does nothing and stays usable, as
    /// nothing in it needs releasing.
    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>>;

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
    /// whole group is as durable as one [`commit`](Records::commit) would be.
    ///
    /// The SQL stores commit a group in one transaction (group commit): their `commit`
    /// queues each batch for one writer, which takes every batch waiting as one group.
    /// The memory store commits the batches one after another.
    fn commit_group(&self, batches: Vec<Batch>) -> BoxFuture<'_, Vec<Result<Vec<Committed>, StoreError>>>;

    /// The events of one stream, in sequence order.
    fn stream<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>>;

    /// The events of one stream with a sequence above `after` and, if given, at most
    /// `up_to`, in order.
    fn stream_range<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>>;

    /// What replaying the events of one stream with a sequence above `after` and, if
    /// given, at most `up_to` needs, in order: each event's sequence, type name, version
    /// and payload (see [`ReplayEvents`]). Loading an event-sourced aggregate reads its
    /// events this way: stores read only those columns, without building an [`Envelope`]
    /// per event.
    fn replay_events<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<ReplayEvents, StoreError>>;

    /// The latest snapshot of an event-sourced aggregate taken at a sequence of at most
    /// `at_most` (any, if `None`): its sequence and JSON. A store that keeps none answers
    /// `None`, so loading replays the whole stream: correct, only slower.
    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
        at_most: Option<u64>,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>>;

    /// Every stored event in commit order, from position `from` (0-based), at most `limit`.
    fn events(&self, from: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>>;

    /// Up to `limit` events of `types` (any, when empty) stored after log position
    /// `after`, in log order, with their positions.
    fn log_after<'a>(
        &'a self,
        after: u64,
        limit: usize,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Logged>, StoreError>>;

    /// How many events of `types` (any, when empty) are stored after log position `after`.
    fn log_count<'a>(&'a self, after: u64, types: &'a [String]) -> BoxFuture<'a, Result<u64, StoreError>>;
}

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
    /// Changes to projection rows, applied by the rule every store follows (docs/storage.md,
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
