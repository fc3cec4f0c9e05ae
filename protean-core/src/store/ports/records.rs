//! The [`Records`] port: aggregates' records, the event streams, snapshots and the
//! positioned log, and the store's own lifecycle (schema, closing).

use crate::store::{
    Batch, BoxFuture, Committed, Envelope, Logged, Record, ReplayEvents, Snapshot, StoreError, StreamId,
};

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
