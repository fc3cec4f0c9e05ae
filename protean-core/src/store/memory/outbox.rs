//! [`Outbox`] for [`MemoryStore`]: claims on undelivered events, their leases, delivered marks.

use std::time::{Duration, Instant};

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Inner, MemoryStore};
use crate::store::envelope::Envelope;
use crate::store::ports::Outbox;
use crate::store::{BoxFuture, ClaimOrder, OutboxStatus, StoreError, WorkerBeat, MAX_LEASE};

impl Outbox for MemoryStore {
    fn claim_undelivered(&self, limit: usize, lease: Duration) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        let lease = lease.min(MAX_LEASE);
        let mut inner = self.lock();
        let now = Instant::now();
        let mut claimed = Vec::new();
        let mut order = ClaimOrder::new();
        let Inner { log, delivery, first_undelivered, .. } = &mut *inner;
        while *first_undelivered < log.len() && delivery[*first_undelivered].delivered {
            *first_undelivered += 1;
        }
        for (event, state) in log.iter().zip(delivery.iter_mut()).skip(*first_undelivered) {
            if claimed.len() == limit {
                break;
            }
            let leased = state.claimed_until.is_some_and(|until| until > now);
            if state.delivered || !order.take(event.stream.clone(), leased) {
                continue;
            }
            state.claimed_until = Some(now + lease);
            claimed.push(event.clone());
        }
        Box::pin(std::future::ready(Ok(claimed)))
    }

    fn renew_claims(&self, event_ids: Vec<Uuid>, lease: Duration) -> BoxFuture<'_, Result<(), StoreError>> {
        let until = Instant::now() + lease.min(MAX_LEASE);
        self.set_claims(&event_ids, Some(until));
        Box::pin(std::future::ready(Ok(())))
    }

    fn release_claims(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.set_claims(&event_ids, None);
        Box::pin(std::future::ready(Ok(())))
    }

    fn mark_delivered(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.lock().mark_delivered(&event_ids);
        Box::pin(std::future::ready(Ok(())))
    }

    fn outbox_status(&self) -> BoxFuture<'_, Result<OutboxStatus, StoreError>> {
        let inner = self.lock();
        let start = inner.first_undelivered.min(inner.log.len());
        let mut undelivered = 0;
        let mut oldest = None;
        for (event, state) in inner.log[start..].iter().zip(&inner.delivery[start..]) {
            if !state.delivered {
                undelivered += 1;
                // The earliest recorded, which need not be the first in the log.
                oldest = Some(oldest.map_or(event.recorded_at, |o: OffsetDateTime| o.min(event.recorded_at)));
            }
        }
        let failures =
            OutboxStatus::count_failures(inner.failures.values().map(|(_, f)| (f.handler.as_str(), f.status, 1)));
        Box::pin(std::future::ready(Ok(OutboxStatus { undelivered, oldest_undelivered: oldest, failures })))
    }

    /// `None`: only this process commits into its memory, and its commits wake the
    /// workers.
    fn outbox_signal(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }

    fn beat_worker(&self, beat: WorkerBeat) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut inner = self.lock();
        let forget_before = beat.seen_at - time::Duration::DAY;
        inner.workers.retain(|_, known| known.seen_at >= forget_before);
        inner.workers.insert(beat.id, beat);
        Box::pin(std::future::ready(Ok(())))
    }

    fn worker_beats(&self) -> BoxFuture<'_, Result<Vec<WorkerBeat>, StoreError>> {
        let mut beats: Vec<WorkerBeat> = self.lock().workers.values().cloned().collect();
        beats.sort_by(|a, b| b.seen_at.cmp(&a.seen_at).then(a.id.cmp(&b.id)));
        Box::pin(std::future::ready(Ok(beats)))
    }
}

impl MemoryStore {
    /// Sets the claim on each undelivered event of `event_ids`: held `until`, or released.
    fn set_claims(&self, event_ids: &[Uuid], until: Option<Instant>) {
        let mut inner = self.lock();
        let Inner { log, delivery, first_undelivered, .. } = &mut *inner;
        for id in event_ids {
            if let Some(i) = log.iter().rposition(|e| e.id == *id).filter(|&i| i >= *first_undelivered) {
                if !delivery[i].delivered {
                    delivery[i].claimed_until = until;
                }
            }
        }
    }
}
