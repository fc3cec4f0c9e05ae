//! A store that meets version conflicts on demand, so that a test gets one without
//! racing two writers.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

// The paths outside `protean::prelude`, in one place.
use protean::store::{
    Batch, BoxFuture, BuildState, Committed, Deliveries, Envelope, Logged, OffsetDateTime, Outbox, ProjectionSpec,
    ProjectionState, Projections, Record, Records, ReplayEvents, Row, RowQuery, Schedule, Scheduled, Snapshot, Store,
    StoreError, StreamId, VersionConflict,
};
use uuid::Uuid;

/// `inner`, as if another process always wrote an aggregate named `aggregate` between
/// a unit of work's load and its save: the first `conflicts` commits that change an
/// existing one are refused with a [`VersionConflict`]. Adding one is never refused.
pub struct Contended<S> {
    inner: S,
    aggregate: &'static str,
    tally: Arc<Tally>,
}

/// What a [`Contended`] store has left to refuse and has refused.
#[derive(Debug, Default)]
pub struct Tally {
    /// How many more commits to refuse.
    pub to_refuse: AtomicU32,
    /// How many commits were refused.
    pub refused: AtomicU32,
}

impl<S: Store> Contended<S> {
    /// `inner`, refusing the first `conflicts` commits of an existing `aggregate`.
    pub fn new(inner: S, aggregate: &'static str, conflicts: u32) -> Self {
        let tally = Arc::new(Tally { to_refuse: AtomicU32::new(conflicts), refused: AtomicU32::new(0) });
        Contended { inner, aggregate, tally }
    }

    /// The counts, shared: still readable once the store is handed to a domain.
    pub fn tally(&self) -> Arc<Tally> {
        self.tally.clone()
    }
}

impl<S: Store> Records for Contended<S> {
    fn migrate(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.migrate()
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.close()
    }

    fn load<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        self.inner.load(stream)
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, Result<Vec<Committed>, StoreError>> {
        let existing = batch.commits.iter().find(|c| c.stream.aggregate == self.aggregate && c.expected_version > 0);
        if let Some(commit) = existing {
            if self.tally.to_refuse.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                self.tally.refused.fetch_add(1, Ordering::SeqCst);
                let (expected, actual) = (commit.expected_version, commit.expected_version + 1);
                let conflict = VersionConflict { stream: commit.stream.clone(), expected, actual };
                return Box::pin(std::future::ready(Err(conflict.into())));
            }
        }
        self.inner.commit(batch)
    }

    fn commit_group(&self, batches: Vec<Batch>) -> BoxFuture<'_, Vec<Result<Vec<Committed>, StoreError>>> {
        self.inner.commit_group(batches)
    }

    fn stream<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        self.inner.stream(stream)
    }

    fn stream_range<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        self.inner.stream_range(stream, after, up_to)
    }

    fn replay_events<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<ReplayEvents, StoreError>> {
        self.inner.replay_events(stream, after, up_to)
    }

    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
        at_most: Option<u64>,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        self.inner.load_snapshot(stream, at_most)
    }

    fn events(&self, from: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        self.inner.events(from, limit)
    }

    fn log_after<'a>(
        &'a self,
        after: u64,
        limit: usize,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Logged>, StoreError>> {
        self.inner.log_after(after, limit, types)
    }

    fn log_count<'a>(&'a self, after: u64, types: &'a [String]) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.inner.log_count(after, types)
    }
}

impl<S: Store> Outbox for Contended<S> {
    fn claim_undelivered(
        &self,
        limit: usize,
        lease: std::time::Duration,
    ) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        self.inner.claim_undelivered(limit, lease)
    }

    fn renew_claims(&self, event_ids: Vec<Uuid>, lease: std::time::Duration) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.renew_claims(event_ids, lease)
    }

    fn release_claims(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.release_claims(event_ids)
    }

    fn mark_delivered(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.mark_delivered(event_ids)
    }

    fn outbox_status(&self) -> BoxFuture<'_, Result<protean::store::OutboxStatus, StoreError>> {
        self.inner.outbox_status()
    }

    fn outbox_signal(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        self.inner.outbox_signal()
    }
}

impl<S: Store> Deliveries for Contended<S> {
    fn is_handled<'a>(&'a self, handler: &'a str, message_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.is_handled(handler, message_id)
    }

    fn handled_outcome<'a>(
        &'a self,
        handler: &'a str,
        message_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<Option<String>>, StoreError>> {
        self.inner.handled_outcome(handler, message_id)
    }

    fn handler_state<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<protean::store::HandlerState, StoreError>> {
        self.inner.handler_state(handler, event)
    }

    fn record_failure(&self, update: protean::store::FailureUpdate) -> BoxFuture<'_, Result<u32, StoreError>> {
        self.inner.record_failure(update)
    }

    fn hold_behind_dead_letter<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
        reason: &'a str,
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.hold_behind_dead_letter(handler, event, reason, at)
    }

    fn failed_delivery<'a>(
        &'a self,
        handler: &'a str,
        event_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<protean::store::FailedDelivery>, StoreError>> {
        self.inner.failed_delivery(handler, event_id)
    }

    fn failed_deliveries(
        &self,
        query: protean::store::FailureQuery,
    ) -> BoxFuture<'_, Result<Vec<protean::store::FailedDelivery>, StoreError>> {
        self.inner.failed_deliveries(query)
    }

    fn remove_failure<'a>(&'a self, handler: &'a str, event_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.remove_failure(handler, event_id)
    }
}

impl<S: Store> Projections for Contended<S> {
    // Projections and scheduled commands (the e-commerce model has an inline projection
    // and a process manager): as the inner store keeps them.
    fn register_projection(&self, spec: ProjectionSpec) -> BoxFuture<'_, Result<ProjectionState, StoreError>> {
        self.inner.register_projection(spec)
    }

    fn projection_state<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<ProjectionState>, StoreError>> {
        self.inner.projection_state(name)
    }

    fn projection_row<'a>(
        &'a self,
        name: &'a str,
        generation: Option<u64>,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Row>, StoreError>> {
        self.inner.projection_row(name, generation, key)
    }

    fn query_projection(&self, query: RowQuery) -> BoxFuture<'_, Result<Vec<Row>, StoreError>> {
        self.inner.query_projection(query)
    }

    fn begin_build<'a>(
        &'a self,
        name: &'a str,
        version: u32,
        lease: std::time::Duration,
    ) -> BoxFuture<'a, Result<Option<BuildState>, StoreError>> {
        self.inner.begin_build(name, version, lease)
    }

    fn write_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        rows: Vec<(String, Option<Arc<str>>)>,
        position: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.write_build(name, generation, rows, position)
    }

    fn finish_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        position: u64,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.finish_build(name, generation, position, types)
    }

    fn read_model<'a>(&'a self, name: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        self.inner.read_model(name, key)
    }

    fn put_read_model<'a>(
        &'a self,
        name: &'a str,
        key: &'a str,
        json: String,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.put_read_model(name, key, json)
    }
}

impl<S: Store> Schedule for Contended<S> {
    fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: usize,
        lease: std::time::Duration,
    ) -> BoxFuture<'_, Result<Vec<Scheduled>, StoreError>> {
        self.inner.claim_due(now, limit, lease)
    }

    fn complete_scheduled(&self, id: Uuid) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.complete_scheduled(id)
    }

    fn release_scheduled(&self, ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.release_scheduled(ids)
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<OffsetDateTime>, StoreError>> {
        self.inner.next_due()
    }

    fn scheduled_of<'a>(
        &'a self,
        owner: &'a str,
        owner_key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Scheduled>, StoreError>> {
        self.inner.scheduled_of(owner, owner_key)
    }
}
