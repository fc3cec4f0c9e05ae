//! The in-memory store: for tests and for trying things out.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};

use foldhash::HashMap;

use std::time::{Duration, Instant};

use uuid::Uuid;

use super::{Batch, BoxFuture, Commit, Committed, Record, Snapshot, Store, StoreError, VersionConflict};
use super::{FailedDelivery, FailureQuery, FailureStatus, FailureUpdate, HandlerState, OutboxStatus};
use crate::store::envelope::{Envelope, StreamId};

/// A [`Store`] in memory that behaves like a database: records and events are kept as
/// JSON text, so everything round-trips through serde; every load hands out a copy, so
/// units of work are isolated; and commits check versions.
///
/// ```
/// use protean_core::store::{Batch, Commit, MemoryStore, Store, StoreError};
/// use protean_core::store::StreamId;
/// # futures_lite(async {
/// let store = MemoryStore::new();
/// let stream = StreamId::new("Order", "o-1");
/// let first = Commit {
///     stream: stream.clone(),
///     expected_version: 0,
///     advance: 1,
///     state: Some("{}".into()),
///     events: vec![],
///     snapshot: None,
/// };
/// let batch = |commit: &Commit| Batch { commits: vec![commit.clone()], handled: None, delivered: vec![], ..Batch::default() };
/// assert_eq!(store.commit(batch(&first)).await.unwrap()[0].version, 1);
/// // A second writer that also loaded version 0 is refused.
/// assert!(matches!(store.commit(batch(&first)).await, Err(StoreError::Conflict(_))));
/// # });
/// # fn futures_lite(f: impl std::future::Future<Output = ()>) {
/// #     let mut f = std::pin::pin!(f);
/// #     let waker = std::task::Waker::noop();
/// #     assert!(f.as_mut().poll(&mut std::task::Context::from_waker(&waker)).is_ready());
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// aggregate name → id → slot; nested so lookups borrow `&str` without allocating.
    streams: HashMap<Cow<'static, str>, HashMap<Arc<str>, Slot>>,
    log: Vec<Envelope>,
    /// Per log entry: delivered yet, and claimed until when.
    delivery: Vec<Delivery>,
    /// Every entry before this one is delivered.
    first_undelivered: usize,
    /// (handler, message) → the outcome recorded with it.
    handled: HashMap<(Cow<'static, str>, Uuid), Option<Arc<str>>>,
    /// (handler, event) → its failed delivery, with the event's log position.
    failures: std::collections::BTreeMap<(String, Uuid), (usize, FailedDelivery)>,
    read_models: HashMap<String, HashMap<String, String>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Delivery {
    delivered: bool,
    claimed_until: Option<Instant>,
}

#[derive(Debug, Default)]
struct Slot {
    record: Option<Record>,
    /// The version the record had when last written, kept after a removal so a
    /// stale writer is still refused.
    version: u64,
    last_sequence: u64,
    /// Positions of this stream's events in the log.
    events: Vec<usize>,
    /// Snapshots by the sequence they were taken at.
    snapshots: std::collections::BTreeMap<u64, Arc<str>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-written (every
        // mutation below is a single insert or push), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn commit_now(&self, batch: Batch) -> Result<Vec<Committed>, StoreError> {
        let Batch { commits, handled, delivered, rows, rows_from, schedule, cancel } = batch;
        let mut inner = self.lock();
        if let Some(handled) = &handled {
            if inner.handled.contains_key(&(handled.handler.clone(), handled.message_id)) {
                return Err(StoreError::AlreadyHandled {
                    handler: handled.handler.to_string(),
                    message_id: handled.message_id,
                });
            }
        }
        // Check every version before writing anything: all or nothing.
        for commit in &commits {
            let actual = inner
                .streams
                .get(&*commit.stream.aggregate)
                .and_then(|by_id| by_id.get(&*commit.stream.id))
                .and_then(|slot| slot.record.as_ref().map(|_| slot.version))
                .unwrap_or(0);
            // After a removal the stream counts as absent: a writer that loaded the
            // removed aggregate (expected > 0) is refused, and the id may be added again.
            if actual != commit.expected_version {
                let stream = commit.stream.clone();
                return Err(VersionConflict { stream, expected: commit.expected_version, actual }.into());
            }
        }
        if let Some(handled) = handled {
            inner.handled.insert((handled.handler, handled.message_id), handled.outcome);
        }
        let committed = commits.into_iter().map(|commit| Self::write(&mut inner, commit)).collect();
        Self::mark(&mut inner, &delivered);
        Ok(committed)
    }

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

    fn mark(inner: &mut Inner, event_ids: &[Uuid]) {
        let Inner { log, delivery, first_undelivered, .. } = inner;
        // Events just delivered are near the end of the log: search from there.
        for id in event_ids {
            if let Some(i) = log.iter().rposition(|e| e.id == *id).filter(|&i| i >= *first_undelivered) {
                delivery[i].delivered = true;
            }
        }
    }

    fn write(inner: &mut Inner, commit: Commit) -> Committed {
        let Inner { streams, log, delivery, .. } = inner;
        let by_id = match streams.get_mut(&*commit.stream.aggregate) {
            Some(by_id) => by_id,
            None => streams.entry(commit.stream.aggregate.clone()).or_default(),
        };
        let slot = match by_id.get_mut(&*commit.stream.id) {
            Some(slot) => slot,
            None => by_id.entry(commit.stream.id.clone()).or_default(),
        };
        // Versions keep rising across a removal, so a writer that loaded the removed
        // aggregate is refused even after the identity is added again.
        let base = if slot.record.is_some() { commit.expected_version } else { slot.version };
        let version = base.saturating_add(commit.advance);
        slot.version = version;
        slot.record = commit.state.map(|state| Record { version, state });
        let mut events = commit.events;
        for event in &mut events {
            slot.last_sequence += 1;
            event.sequence = slot.last_sequence;
            slot.events.push(log.len());
            log.push(event.stored());
            delivery.push(Delivery::default());
        }
        if let Some(snapshot) = commit.snapshot {
            slot.snapshots.insert(slot.last_sequence, snapshot);
        }
        Committed { stream: commit.stream, version, events }
    }
}

impl Store for MemoryStore {
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
        Box::pin(std::future::ready(self.commit_now(batch)))
    }

    fn claim_undelivered(&self, limit: usize, lease: Duration) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        let lease = lease.min(super::MAX_LEASE);
        let mut inner = self.lock();
        let now = Instant::now();
        let mut claimed = Vec::new();
        let mut order = super::ClaimOrder::new();
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
        let until = Instant::now() + lease.min(super::MAX_LEASE);
        self.set_claims(&event_ids, Some(until));
        Box::pin(std::future::ready(Ok(())))
    }

    fn release_claims(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.set_claims(&event_ids, None);
        Box::pin(std::future::ready(Ok(())))
    }

    fn mark_delivered(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        Self::mark(&mut self.lock(), &event_ids);
        Box::pin(std::future::ready(Ok(())))
    }

    fn is_handled<'a>(&'a self, handler: &'a str, message_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        let handled = self.lock().handled.contains_key(&(Cow::Owned(handler.to_owned()), message_id));
        Box::pin(std::future::ready(Ok(handled)))
    }

    fn handled_outcome<'a>(
        &'a self,
        handler: &'a str,
        message_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<Option<String>>, StoreError>> {
        let outcome = self
            .lock()
            .handled
            .get(&(Cow::Owned(handler.to_owned()), message_id))
            .map(|outcome| outcome.as_deref().map(str::to_owned));
        Box::pin(std::future::ready(Ok(outcome)))
    }

    fn handler_state<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<HandlerState, StoreError>> {
        let inner = self.lock();
        let handled = inner.handled.contains_key(&(Cow::Owned(handler.to_owned()), event.id));
        let mut state = HandlerState { handled, ..HandlerState::default() };
        for ((h, id), (_, failure)) in &inner.failures {
            if h != handler {
                continue;
            }
            if *id == event.id {
                state.attempts = failure.attempts;
            }
            if failure.event.stream == event.stream && failure.status != FailureStatus::Retrying {
                state.held = true;
            }
        }
        Box::pin(std::future::ready(Ok(state)))
    }

    fn record_failure(&self, update: FailureUpdate) -> BoxFuture<'_, Result<u32, StoreError>> {
        let mut inner = self.lock();
        let position = inner.log.iter().rposition(|e| e.id == update.event.id).unwrap_or(usize::MAX);
        let counted = u32::from(update.status != FailureStatus::Held);
        let key = (update.handler.to_string(), update.event.id);
        let attempts = match inner.failures.get_mut(&key) {
            Some((_, failure)) => {
                failure.status = update.status;
                failure.attempts += counted;
                failure.last_error = update.error;
                failure.last_failed_at = update.at;
                failure.attempts
            }
            None => {
                let failure = FailedDelivery {
                    handler: key.0.clone(),
                    event: update.event.stored(),
                    status: update.status,
                    attempts: counted,
                    first_error: update.error.clone(),
                    last_error: update.error,
                    first_failed_at: update.at,
                    last_failed_at: update.at,
                };
                inner.failures.insert(key, (position, failure));
                counted
            }
        };
        Box::pin(std::future::ready(Ok(attempts)))
    }

    fn failed_deliveries(&self, query: FailureQuery) -> BoxFuture<'_, Result<Vec<FailedDelivery>, StoreError>> {
        let inner = self.lock();
        let mut found: Vec<&(usize, FailedDelivery)> =
            inner.failures.values().filter(|(_, failure)| query.matches(failure)).collect();
        found.sort_by(|a, b| (a.0, &a.1.handler).cmp(&(b.0, &b.1.handler)));
        let found = found.into_iter().take(query.limit).map(|(_, failure)| failure.clone()).collect();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn remove_failure<'a>(&'a self, handler: &'a str, event_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        let removed = self.lock().failures.remove(&(handler.to_owned(), event_id)).is_some();
        Box::pin(std::future::ready(Ok(removed)))
    }

    fn outbox_status(&self) -> BoxFuture<'_, Result<OutboxStatus, StoreError>> {
        let inner = self.lock();
        let start = inner.first_undelivered.min(inner.log.len());
        let mut undelivered = 0;
        let mut oldest = None;
        for (event, state) in inner.log[start..].iter().zip(&inner.delivery[start..]) {
            if !state.delivered {
                undelivered += 1;
                oldest = oldest.or(Some(event.recorded_at));
            }
        }
        let failures =
            OutboxStatus::count_failures(inner.failures.values().map(|(_, f)| (f.handler.as_str(), f.status, 1)));
        Box::pin(std::future::ready(Ok(OutboxStatus { undelivered, oldest_undelivered: oldest, failures })))
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
            .map(|slot| {
                slot.events
                    .iter()
                    .map(|&i| &inner.log[i])
                    .skip_while(|e| e.sequence <= after)
                    .take_while(|e| up_to.is_none_or(|u| e.sequence <= u))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
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

    fn read_model<'a>(&'a self, name: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        let json = self.lock().read_models.get(name).and_then(|by_key| by_key.get(key)).cloned();
        Box::pin(std::future::ready(Ok(json)))
    }

    fn put_read_model<'a>(
        &'a self,
        name: &'a str,
        key: &'a str,
        json: String,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.lock().read_models.entry(name.to_owned()).or_default().insert(key.to_owned(), json);
        Box::pin(std::future::ready(Ok(())))
    }
}
