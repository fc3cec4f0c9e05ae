//! An `Arc` of a store is a store: each port of `Arc<S>` is `S`'s, so an `Arc<dyn Store>`
//! can be handed (or wrapped) wherever a store is expected.

use std::sync::Arc;
use std::time::Duration;

use crate::store::ports::{
    Batch, BoxFuture, BuildState, Committed, Deliveries, Envelope, FailedDelivery, FailureQuery, FailureUpdate,
    HandlerState, Logged, Notify, OffsetDateTime, Outbox, OutboxStatus, ProjectionSpec, ProjectionState, Projections,
    Record, Records, ReplayEvents, Row, RowQuery, Schedule, Scheduled, Snapshot, StoreError, StreamId, Uuid,
};

impl<S: Records + ?Sized> Records for Arc<S> {
    fn migrate(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        (**self).migrate()
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        (**self).close()
    }

    fn load<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        (**self).load(stream)
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, Result<Vec<Committed>, StoreError>> {
        (**self).commit(batch)
    }

    fn commit_group(&self, batches: Vec<Batch>) -> BoxFuture<'_, Vec<Result<Vec<Committed>, StoreError>>> {
        (**self).commit_group(batches)
    }

    fn stream<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        (**self).stream(stream)
    }

    fn stream_range<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        (**self).stream_range(stream, after, up_to)
    }

    fn replay_events<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<ReplayEvents, StoreError>> {
        (**self).replay_events(stream, after, up_to)
    }

    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
        at_most: Option<u64>,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        (**self).load_snapshot(stream, at_most)
    }

    fn events(&self, from: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        (**self).events(from, limit)
    }

    fn log_after<'a>(
        &'a self,
        after: u64,
        limit: usize,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Logged>, StoreError>> {
        (**self).log_after(after, limit, types)
    }

    fn log_count<'a>(&'a self, after: u64, types: &'a [String]) -> BoxFuture<'a, Result<u64, StoreError>> {
        (**self).log_count(after, types)
    }
}

impl<S: Outbox + ?Sized> Outbox for Arc<S> {
    fn claim_undelivered(&self, limit: usize, lease: Duration) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        (**self).claim_undelivered(limit, lease)
    }

    fn renew_claims(&self, event_ids: Vec<Uuid>, lease: Duration) -> BoxFuture<'_, Result<(), StoreError>> {
        (**self).renew_claims(event_ids, lease)
    }

    fn release_claims(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        (**self).release_claims(event_ids)
    }

    fn mark_delivered(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        (**self).mark_delivered(event_ids)
    }

    fn outbox_status(&self) -> BoxFuture<'_, Result<OutboxStatus, StoreError>> {
        (**self).outbox_status()
    }

    fn outbox_signal(&self) -> Option<Arc<Notify>> {
        (**self).outbox_signal()
    }
}

impl<S: Deliveries + ?Sized> Deliveries for Arc<S> {
    fn is_handled<'a>(&'a self, handler: &'a str, message_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        (**self).is_handled(handler, message_id)
    }

    fn handled_outcome<'a>(
        &'a self,
        handler: &'a str,
        message_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<Option<String>>, StoreError>> {
        (**self).handled_outcome(handler, message_id)
    }

    fn handler_state<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<HandlerState, StoreError>> {
        (**self).handler_state(handler, event)
    }

    fn record_failure(&self, update: FailureUpdate) -> BoxFuture<'_, Result<u32, StoreError>> {
        (**self).record_failure(update)
    }

    fn hold_behind_dead_letter<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
        reason: &'a str,
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        (**self).hold_behind_dead_letter(handler, event, reason, at)
    }

    fn failed_delivery<'a>(
        &'a self,
        handler: &'a str,
        event_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<FailedDelivery>, StoreError>> {
        (**self).failed_delivery(handler, event_id)
    }

    fn failed_deliveries(&self, query: FailureQuery) -> BoxFuture<'_, Result<Vec<FailedDelivery>, StoreError>> {
        (**self).failed_deliveries(query)
    }

    fn remove_failure<'a>(&'a self, handler: &'a str, event_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        (**self).remove_failure(handler, event_id)
    }
}

impl<S: Projections + ?Sized> Projections for Arc<S> {
    fn register_projection(&self, spec: ProjectionSpec) -> BoxFuture<'_, Result<ProjectionState, StoreError>> {
        (**self).register_projection(spec)
    }

    fn projection_state<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<ProjectionState>, StoreError>> {
        (**self).projection_state(name)
    }

    fn projection_row<'a>(
        &'a self,
        name: &'a str,
        generation: Option<u64>,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Row>, StoreError>> {
        (**self).projection_row(name, generation, key)
    }

    fn query_projection(&self, query: RowQuery) -> BoxFuture<'_, Result<Vec<Row>, StoreError>> {
        (**self).query_projection(query)
    }

    fn begin_build<'a>(
        &'a self,
        name: &'a str,
        version: u32,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<BuildState>, StoreError>> {
        (**self).begin_build(name, version, lease)
    }

    fn write_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        rows: Vec<(String, Option<std::sync::Arc<str>>)>,
        position: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).write_build(name, generation, rows, position)
    }

    fn finish_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        position: u64,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        (**self).finish_build(name, generation, position, types)
    }

    fn read_model<'a>(&'a self, name: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        (**self).read_model(name, key)
    }

    fn put_read_model<'a>(
        &'a self,
        name: &'a str,
        key: &'a str,
        json: String,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        (**self).put_read_model(name, key, json)
    }
}

impl<S: Schedule + ?Sized> Schedule for Arc<S> {
    fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Scheduled>, StoreError>> {
        (**self).claim_due(now, limit, lease)
    }

    fn complete_scheduled(&self, id: Uuid) -> BoxFuture<'_, Result<(), StoreError>> {
        (**self).complete_scheduled(id)
    }

    fn release_scheduled(&self, ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        (**self).release_scheduled(ids)
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<OffsetDateTime>, StoreError>> {
        (**self).next_due()
    }

    fn scheduled_of<'a>(
        &'a self,
        owner: &'a str,
        owner_key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Scheduled>, StoreError>> {
        (**self).scheduled_of(owner, owner_key)
    }
}
