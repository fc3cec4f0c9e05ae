//! [`Records`] for [`MemoryStore`]: records, event streams, snapshots and the positioned log.

use std::borrow::Cow;
use std::sync::Arc;

use super::{of_types, position, position_of_last, MemoryStore, Slot};
use crate::store::envelope::{Envelope, StreamId};
use crate::store::ports::Records;
use crate::store::{Batch, BoxFuture, Committed, Logged, Record, ReplayEvents, Snapshot, StoreError};

impl Records for MemoryStore {
    fn migrate(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Nothing in memory needs releasing: the store stays usable.
    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn load<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        let record = self
            .lock()
            .streams
            .get(&*stream.aggregate)
            .and_then(|by_id| by_id.get(&*stream.id))
            .and_then(|slot| slot.record.clone());
        Box::pin(std::future::ready(Ok(record)))
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, Result<Vec<Committed>, StoreError>> {
        Box::pin(std::future::ready(super::commit::commit(&mut self.lock(), batch)))
    }

    /// Commits the batches one after another: each is atomic on its own, and nothing
    /// here is made durable, so grouping them saves nothing.
    fn commit_group(&self, batches: Vec<Batch>) -> BoxFuture<'_, Vec<Result<Vec<Committed>, StoreError>>> {
        Box::pin(async move {
            let mut outcomes = Vec::with_capacity(batches.len());
            for batch in batches {
                outcomes.push(self.commit(batch).await);
            }
            outcomes
        })
    }

    fn stream<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        let inner = self.lock();
        let events = inner
            .streams
            .get(&*stream.aggregate)
            .and_then(|by_id| by_id.get(&*stream.id))
            .map(|slot| slot.events.iter().map(|&i| inner.log[i].clone()).collect())
            .unwrap_or_default();
        Box::pin(std::future::ready(Ok(events)))
    }

    fn stream_range<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        let inner = self.lock();
        let events = inner
            .streams
            .get(&*stream.aggregate)
            .and_then(|by_id| by_id.get(&*stream.id))
            .map(|slot| in_range(&inner.log, slot, after, up_to).cloned().collect())
            .unwrap_or_default();
        Box::pin(std::future::ready(Ok(events)))
    }

    fn replay_events<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<ReplayEvents, StoreError>> {
        let inner = self.lock();
        let mut events = ReplayEvents::new();
        if let Some(slot) = inner.streams.get(&*stream.aggregate).and_then(|by_id| by_id.get(&*stream.id)) {
            for envelope in in_range(&inner.log, slot, after, up_to) {
                match &envelope.type_name {
                    Cow::Borrowed(type_name) => events.push_static(envelope.replayed(), type_name),
                    Cow::Owned(_) => events.push(envelope.replayed()),
                }
            }
        }
        Box::pin(std::future::ready(Ok(events)))
    }

    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
        at_most: Option<u64>,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        let snapshot = self
            .lock()
            .streams
            .get(&*stream.aggregate)
            .and_then(|by_id| by_id.get(&*stream.id))
            .and_then(|slot| slot.snapshots.range(..=at_most.unwrap_or(u64::MAX)).next_back())
            .map(|(sequence, state)| Snapshot { sequence: *sequence, state: Arc::clone(state) });
        Box::pin(std::future::ready(Ok(snapshot)))
    }

    fn events(&self, from: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        let inner = self.lock();
        let from = usize::try_from(from).unwrap_or(usize::MAX).min(inner.log.len());
        let events = inner.log[from..].iter().take(limit).cloned().collect();
        Box::pin(std::future::ready(Ok(events)))
    }

    fn log_after<'a>(
        &'a self,
        after: u64,
        limit: usize,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Logged>, StoreError>> {
        let inner = self.lock();
        let start = usize::try_from(after).unwrap_or(usize::MAX).min(inner.log.len());
        let logged = inner.log[start..]
            .iter()
            .enumerate()
            .filter(|(_, event)| of_types(event, types))
            .take(limit)
            .map(|(i, event)| Logged { position: position(start + i), event: event.clone() })
            .collect();
        Box::pin(std::future::ready(Ok(logged)))
    }

    fn log_count<'a>(&'a self, after: u64, types: &'a [String]) -> BoxFuture<'a, Result<u64, StoreError>> {
        let inner = self.lock();
        let start = usize::try_from(after).unwrap_or(usize::MAX).min(inner.log.len());
        let count = inner.log[start..].iter().filter(|event| of_types(event, types)).count();
        Box::pin(std::future::ready(Ok(position_of_last(count))))
    }
}

/// The events of `slot` with a sequence above `after` and, if given, at most `up_to`, in
/// order. A stream's events are in sequence order, so the first is found by binary search
/// (loading after a late snapshot does not walk the stream from its start).
fn in_range<'l>(
    log: &'l [Envelope],
    slot: &'l Slot,
    after: u64,
    up_to: Option<u64>,
) -> impl Iterator<Item = &'l Envelope> + 'l {
    let start = slot.events.partition_point(|&i| log[i].sequence <= after);
    slot.events[start..].iter().map(move |&i| &log[i]).take_while(move |e| up_to.is_none_or(|u| e.sequence <= u))
}
