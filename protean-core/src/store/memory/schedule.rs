//! [`Schedule`] for [`MemoryStore`]: scheduled commands and their claims.

use std::time::{Duration, Instant};

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Inner, MemoryStore, Pending};
use crate::store::ports::Schedule;
use crate::store::{BoxFuture, Scheduled, ScheduledCounts, StoreError, MAX_LEASE};

impl Schedule for MemoryStore {
    fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Scheduled>, StoreError>> {
        Box::pin(std::future::ready(Ok(claim_due(&mut self.lock(), now, limit, lease))))
    }

    fn complete_scheduled(&self, id: Uuid) -> BoxFuture<'_, Result<(), StoreError>> {
        self.lock().scheduled.retain(|pending| pending.scheduled.id != id);
        Box::pin(std::future::ready(Ok(())))
    }

    fn release_scheduled(&self, ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        for pending in self.lock().scheduled.iter_mut().filter(|pending| ids.contains(&pending.scheduled.id)) {
            pending.claimed_until = None;
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<OffsetDateTime>, StoreError>> {
        let next = self.lock().scheduled.iter().map(|pending| pending.scheduled.due_at).min();
        Box::pin(std::future::ready(Ok(next)))
    }

    fn scheduled_of<'a>(
        &'a self,
        owner: &'a str,
        owner_key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Scheduled>, StoreError>> {
        let inner = self.lock();
        let mut found: Vec<Scheduled> = inner
            .scheduled
            .iter()
            .filter(|pending| pending.scheduled.owner == owner && pending.scheduled.owner_key == owner_key)
            .map(|pending| pending.scheduled.clone())
            .collect();
        found.sort_by_key(|scheduled| (scheduled.due_at, scheduled.id));
        Box::pin(std::future::ready(Ok(found)))
    }

    fn pending_scheduled(&self, limit: usize) -> BoxFuture<'_, Result<Vec<Scheduled>, StoreError>> {
        let inner = self.lock();
        let mut found: Vec<Scheduled> = inner.scheduled.iter().map(|pending| pending.scheduled.clone()).collect();
        found.sort_by_key(|scheduled| (scheduled.due_at, scheduled.id));
        found.truncate(limit);
        Box::pin(std::future::ready(Ok(found)))
    }

    fn cancel_scheduled(&self, id: Uuid) -> BoxFuture<'_, Result<bool, StoreError>> {
        let mut inner = self.lock();
        let before = inner.scheduled.len();
        inner.scheduled.retain(|pending| pending.scheduled.id != id);
        let cancelled = inner.scheduled.len() < before;
        Box::pin(std::future::ready(Ok(cancelled)))
    }

    fn count_scheduled(&self, now: OffsetDateTime) -> BoxFuture<'_, Result<ScheduledCounts, StoreError>> {
        let inner = self.lock();
        let pending = inner.scheduled.len() as u64;
        let due = inner.scheduled.iter().filter(|p| p.scheduled.due_at <= now).count() as u64;
        Box::pin(std::future::ready(Ok(ScheduledCounts { pending, due })))
    }
}

/// Claims up to `limit` of the commands due at `now` whose claim is free, earliest first,
/// for `lease`.
fn claim_due(inner: &mut Inner, now: OffsetDateTime, limit: usize, lease: Duration) -> Vec<Scheduled> {
    let clock = Instant::now();
    let until = clock.checked_add(lease.min(MAX_LEASE)).unwrap_or(clock);
    let mut due: Vec<&mut Pending> = inner
        .scheduled
        .iter_mut()
        .filter(|p| p.scheduled.due_at <= now && p.claimed_until.is_none_or(|claimed| claimed <= clock))
        .collect();
    due.sort_by_key(|p| (p.scheduled.due_at, p.scheduled.id));
    due.into_iter()
        .take(limit)
        .map(|pending| {
            pending.claimed_until = Some(until);
            pending.scheduled.clone()
        })
        .collect()
}
