//! The in-memory store: for tests and for trying things out.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};

use foldhash::HashMap;

use std::time::{Duration, Instant};

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::ports::{Deliveries, Outbox, Projections, Records, Schedule};
use super::{Batch, BoxFuture, Commit, Committed, Record, Snapshot, StoreError, VersionConflict};
use super::{BuildState, Cancel, FilterOp, Logged, ProjectionSpec, ProjectionState, Row, RowChange, RowFilter};
use super::{FailedDelivery, FailureQuery, FailureStatus, FailureUpdate, HandlerState, OutboxStatus};
use super::{ReplayEvents, RowQuery, Scheduled};
use crate::store::envelope::{Envelope, StreamId};

/// A [`Store`](super::Store) in memory that behaves like a database: records and events are kept as
/// JSON text, so everything round-trips through serde; every load hands out a copy, so
/// units of work are isolated; and commits check versions.
///
/// It keeps projections (their rows in copies, rebuilds, queries over the rows' JSON),
/// the positioned log (an event's position is its place in the log, from 1) and
/// scheduled commands too, all under one lock, so every step is exact.
///
/// ```
/// # extern crate protean_core as protean;
/// use protean::store::{Batch, Commit, MemoryStore, Store, StoreError};
/// use protean::store::StreamId;
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
    /// Projections by name.
    projections: HashMap<String, Projected>,
    /// Scheduled commands not fired yet, in the order they were stored.
    scheduled: Vec<Pending>,
}

/// A projection kept by the store: where it stands and its copies.
#[derive(Debug)]
struct Projected {
    version: u32,
    /// The serving copy.
    generation: u64,
    built_through: u64,
    checkpoint: u64,
    /// The highest generation ever used: a new copy takes the next one.
    last_generation: u64,
    build: Option<BuildState>,
    /// generation → key → row.
    copies: HashMap<u64, BTreeMap<String, StoredRow>>,
}

#[derive(Debug, Clone)]
struct StoredRow {
    version: u64,
    json: Arc<str>,
}

impl Projected {
    fn new(version: u32) -> Self {
        let mut copies = HashMap::default();
        copies.insert(1, BTreeMap::new());
        Projected { version, generation: 1, built_through: 0, checkpoint: 0, last_generation: 1, build: None, copies }
    }

    fn state(&self, name: &str, created: bool) -> ProjectionState {
        ProjectionState {
            name: name.to_owned(),
            version: self.version,
            generation: self.generation,
            built_through: self.built_through,
            checkpoint: self.checkpoint,
            build: self.build.clone(),
            created,
        }
    }

    /// The version of the row under `key` in the serving copy (0: none).
    fn serving_version(&self, key: &str) -> u64 {
        self.copies.get(&self.generation).and_then(|copy| copy.get(key)).map_or(0, |row| row.version)
    }

    /// A new, empty copy: its generation.
    fn new_copy(&mut self) -> u64 {
        self.last_generation += 1;
        self.copies.insert(self.last_generation, BTreeMap::new());
        self.last_generation
    }
}

/// A scheduled command and its claim.
#[derive(Debug)]
struct Pending {
    scheduled: Scheduled,
    claimed_until: Option<Instant>,
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
        let Batch { commits, handled, delivered, rows, rows_from, schedule, cancel, reads } = batch;
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
        // What the unit decided on must still be as it read it.
        super::ports::check_reads(
            &reads,
            |name, key| Ok(Self::row_in(&inner, name, None, key)),
            |query| Self::query_in(&inner, query),
        )?;
        // And every row change: which apply, which are skipped.
        let (plan, from) = Self::check_rows(&inner, &rows, rows_from)?;
        if let Some(handled) = handled {
            inner.handled.insert((handled.handler, handled.message_id), handled.outcome);
        }
        let raises_events = commits.iter().any(|commit| !commit.events.is_empty());
        let committed = commits.into_iter().map(|commit| Self::write(&mut inner, commit)).collect();
        Self::mark(&mut inner, &delivered);
        // The changes come from the stored event `rows_from`, or from this batch's own
        // events, the last of which is now the log's last.
        let applied_through = from.or_else(|| raises_events.then(|| position_of_last(inner.log.len())));
        for (change, apply) in rows.into_iter().zip(plan) {
            if apply {
                Self::apply_row(&mut inner, change, applied_through);
            }
        }
        for cancel in &cancel {
            inner.scheduled.retain(|pending| !cancels(cancel, &pending.scheduled));
        }
        for scheduled in schedule {
            if !inner.scheduled.iter().any(|pending| pending.scheduled.id == scheduled.id) {
                inner.scheduled.push(Pending { scheduled, claimed_until: None });
            }
        }
        Ok(committed)
    }

    /// Checks a batch's row changes against the rule of the [projection
    /// module](super::projection): whether each one applies (`false`: skipped), and the
    /// log position of `rows_from`; or the conflict that refuses the batch.
    fn check_rows(
        inner: &Inner,
        rows: &[RowChange],
        rows_from: Option<Uuid>,
    ) -> Result<(Vec<bool>, Option<u64>), StoreError> {
        if rows.is_empty() {
            return Ok((Vec::new(), None));
        }
        let from = rows_from.and_then(|id| inner.log.iter().rposition(|e| e.id == id)).map(position);
        // (projection, key) → its version after the earlier changes of this batch.
        let mut changed: HashMap<(&str, &str), u64> = HashMap::default();
        let mut plan = Vec::with_capacity(rows.len());
        for change in rows {
            let conflict = |actual| {
                let stream = StreamId::new(change.projection.clone(), change.key.as_str());
                StoreError::from(VersionConflict { stream, expected: change.expected_version, actual })
            };
            // A projection the store does not keep has no serving copy to name.
            let Some(projected) = inner.projections.get(&*change.projection) else { return Err(conflict(0)) };
            if projected.build.is_some() || from.is_some_and(|at| at <= projected.built_through) {
                plan.push(false);
                continue;
            }
            let key = (&*change.projection, change.key.as_str());
            let actual = changed.get(&key).copied().unwrap_or_else(|| projected.serving_version(&change.key));
            if change.generation != projected.generation || change.expected_version != actual {
                return Err(conflict(actual));
            }
            changed.insert(key, if change.json.is_some() { actual + 1 } else { 0 });
            plan.push(true);
        }
        Ok((plan, from))
    }

    /// Writes (or deletes) one checked row of a serving copy, and moves the projection's
    /// checkpoint to `applied_through`.
    fn apply_row(inner: &mut Inner, change: RowChange, applied_through: Option<u64>) {
        let Some(projected) = inner.projections.get_mut(&*change.projection) else { return };
        let copy = projected.copies.entry(projected.generation).or_default();
        match change.json {
            Some(json) => {
                let version = copy.get(&change.key).map_or(0, |row| row.version) + 1;
                copy.insert(change.key, StoredRow { version, json });
            }
            None => {
                copy.remove(&change.key);
            }
        }
        if let Some(at) = applied_through {
            projected.checkpoint = projected.checkpoint.max(at);
        }
    }

    /// The projection `name`, or an error saying the store does not keep it.
    fn projected<'i>(inner: &'i mut Inner, name: &str) -> Result<&'i mut Projected, StoreError> {
        inner.projections.get_mut(name).ok_or_else(|| {
            StoreError::Unsupported(format!("the store keeps no projection `{name}`: register it first"))
        })
    }

    /// The rebuild of `name` filling `generation`, or a conflict when that copy is no
    /// longer being built (taken over, or finished).
    fn building<'i>(inner: &'i mut Inner, name: &str, generation: u64) -> Result<&'i mut Projected, StoreError> {
        let projected = Self::projected(inner, name)?;
        let actual = projected.build.as_ref().map_or(0, |build| build.generation);
        if actual != generation {
            let stream = StreamId::new(name.to_owned(), format!("generation {generation}"));
            return Err(VersionConflict { stream, expected: generation, actual }.into());
        }
        Ok(projected)
    }

    fn begin_build_now(&self, name: &str, version: u32, lease: Duration) -> Result<Option<BuildState>, StoreError> {
        let mut inner = self.lock();
        let projected = Self::projected(&mut inner, name)?;
        let now = OffsetDateTime::now_utc();
        let build = match projected.build.take() {
            Some(build) if !lease_ran_out(build.heartbeat, lease, now) => {
                projected.build = Some(build);
                return Ok(None);
            }
            // Taken over at the same version: the rows so far move to a new copy (so the
            // silent builder's writes are refused) and the build resumes where it was.
            Some(stale) if stale.version == version => {
                let rows = projected.copies.remove(&stale.generation).unwrap_or_default();
                let generation = projected.new_copy();
                projected.copies.insert(generation, rows);
                BuildState { generation, version, position: stale.position, heartbeat: now }
            }
            // Taken over at another version, or no build: start from an empty copy.
            stale => {
                if let Some(stale) = stale {
                    projected.copies.remove(&stale.generation);
                }
                let generation = projected.new_copy();
                BuildState { generation, version, position: 0, heartbeat: now }
            }
        };
        projected.build = Some(build.clone());
        Ok(Some(build))
    }

    fn write_build_now(
        &self,
        name: &str,
        generation: u64,
        rows: Vec<(String, Option<Arc<str>>)>,
        position: u64,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let projected = Self::building(&mut inner, name, generation)?;
        let copy = projected.copies.entry(generation).or_default();
        for (key, json) in rows {
            match json {
                Some(json) => {
                    let version = copy.get(&key).map_or(0, |row| row.version) + 1;
                    copy.insert(key, StoredRow { version, json });
                }
                None => {
                    copy.remove(&key);
                }
            }
        }
        if let Some(build) = &mut projected.build {
            build.position = position;
            build.heartbeat = OffsetDateTime::now_utc();
        }
        Ok(())
    }

    fn finish_build_now(
        &self,
        name: &str,
        generation: u64,
        position: u64,
        types: &[String],
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let last = inner.log.len();
        let start = usize::try_from(position).unwrap_or(usize::MAX).min(last);
        let behind = inner.log[start..].iter().any(|event| of_types(event, types));
        let projected = Self::building(&mut inner, name, generation)?;
        if behind {
            return Ok(false);
        }
        let Some(build) = projected.build.take() else { return Ok(false) };
        projected.copies.remove(&projected.generation);
        projected.generation = build.generation;
        projected.version = build.version;
        projected.built_through = position_of_last(last);
        projected.checkpoint = projected.built_through;
        Ok(true)
    }

    /// Row `key` of projection `name`: of copy `generation`, or of the serving copy.
    fn row_in(inner: &Inner, name: &str, generation: Option<u64>, key: &str) -> Option<Row> {
        let projected = inner.projections.get(name)?;
        let generation = generation.unwrap_or(projected.generation);
        let row = projected.copies.get(&generation)?.get(key)?;
        Some(Row { key: key.to_owned(), generation, version: row.version, json: Arc::clone(&row.json) })
    }

    fn query_now(&self, query: &RowQuery) -> Result<Vec<Row>, StoreError> {
        Self::query_in(&self.lock(), query)
    }

    /// The rows of `query`, from the serving copy.
    fn query_in(inner: &Inner, query: &RowQuery) -> Result<Vec<Row>, StoreError> {
        for filter in &query.filters {
            check_filter(filter)?;
        }
        let Some(projected) = inner.projections.get(&*query.projection) else { return Ok(Vec::new()) };
        let Some(copy) = projected.copies.get(&projected.generation) else { return Ok(Vec::new()) };
        let parse = !query.filters.is_empty() || !query.order.is_empty();
        // Each matching row with the values it is ordered by.
        let mut found: Vec<(Vec<Value>, &String, &StoredRow)> = Vec::new();
        for (key, row) in copy {
            let mut sort_by = Vec::new();
            if parse {
                let value: Value = serde_json::from_str(&row.json).map_err(|e| {
                    let stream = StreamId::new(query.projection.clone(), key.as_str());
                    StoreError::corrupt(&stream, row.version, format!("the projection row does not read: {e}"))
                })?;
                if !query.filters.iter().all(|filter| holds(filter, value.get(&filter.field))) {
                    continue;
                }
                sort_by = query.order.iter().map(|o| value.get(&o.field).cloned().unwrap_or(Value::Null)).collect();
            }
            found.push((sort_by, key, row));
        }
        found.sort_by(|(a, a_key, _), (b, b_key, _)| {
            for ((a, b), order) in a.iter().zip(b).zip(&query.order) {
                let ordering = order_values(a, b);
                let ordering = if order.descending { ordering.reverse() } else { ordering };
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            a_key.cmp(b_key)
        });
        let rows = found.into_iter().skip(query.offset).take(query.limit).map(|(_, key, row)| Row {
            key: key.clone(),
            generation: projected.generation,
            version: row.version,
            json: Arc::clone(&row.json),
        });
        Ok(rows.collect())
    }

    fn claim_due_now(&self, now: OffsetDateTime, limit: usize, lease: Duration) -> Vec<Scheduled> {
        let mut inner = self.lock();
        let clock = Instant::now();
        let until = clock.checked_add(lease.min(super::MAX_LEASE)).unwrap_or(clock);
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
        Box::pin(std::future::ready(self.commit_now(batch)))
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

impl Outbox for MemoryStore {
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
}

impl Deliveries for MemoryStore {
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

    /// Decided and written under the store's one lock, like every other step.
    fn hold_behind_dead_letter<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
        reason: &'a str,
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut inner = self.lock();
        let of_handler = (handler.to_owned(), Uuid::nil())..=(handler.to_owned(), Uuid::max());
        let ahead = inner.failures.range(of_handler).any(|(_, (_, failure))| {
            failure.event.stream == event.stream
                && failure.event.sequence < event.sequence
                && failure.status != FailureStatus::Retrying
        });
        let key = (handler.to_owned(), event.id);
        match inner.failures.get_mut(&key) {
            Some((_, own)) if own.status == FailureStatus::Held => {
                if ahead {
                    own.last_error = reason.to_owned();
                    own.last_failed_at = at;
                } else {
                    inner.failures.remove(&key);
                }
            }
            Some(_) => {} // its own dead letter or retried failure stays as it is
            None if ahead => {
                let position = inner.log.iter().rposition(|e| e.id == event.id).unwrap_or(usize::MAX);
                let held = FailedDelivery {
                    handler: key.0.clone(),
                    event: event.stored(),
                    status: FailureStatus::Held,
                    attempts: 0,
                    first_error: reason.to_owned(),
                    last_error: reason.to_owned(),
                    first_failed_at: at,
                    last_failed_at: at,
                };
                inner.failures.insert(key, (position, held));
            }
            None => {}
        }
        Box::pin(std::future::ready(Ok(ahead)))
    }

    fn failed_delivery<'a>(
        &'a self,
        handler: &'a str,
        event_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<FailedDelivery>, StoreError>> {
        let found = self.lock().failures.get(&(handler.to_owned(), event_id)).map(|(_, failure)| failure.clone());
        Box::pin(std::future::ready(Ok(found)))
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
}

impl Projections for MemoryStore {
    fn register_projection(&self, spec: ProjectionSpec) -> BoxFuture<'_, Result<ProjectionState, StoreError>> {
        let mut inner = self.lock();
        let state = match inner.projections.get(&*spec.name) {
            Some(projected) => projected.state(&spec.name, false),
            None => {
                let projected = Projected::new(spec.version);
                let state = projected.state(&spec.name, true);
                inner.projections.insert(spec.name.into_owned(), projected);
                state
            }
        };
        Box::pin(std::future::ready(Ok(state)))
    }

    fn projection_state<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<ProjectionState>, StoreError>> {
        let state = self.lock().projections.get(name).map(|projected| projected.state(name, false));
        Box::pin(std::future::ready(Ok(state)))
    }

    fn projection_row<'a>(
        &'a self,
        name: &'a str,
        generation: Option<u64>,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Row>, StoreError>> {
        Box::pin(std::future::ready(Ok(Self::row_in(&self.lock(), name, generation, key))))
    }

    fn query_projection(&self, query: RowQuery) -> BoxFuture<'_, Result<Vec<Row>, StoreError>> {
        Box::pin(std::future::ready(self.query_now(&query)))
    }

    fn begin_build<'a>(
        &'a self,
        name: &'a str,
        version: u32,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<BuildState>, StoreError>> {
        Box::pin(std::future::ready(self.begin_build_now(name, version, lease)))
    }

    fn write_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        rows: Vec<(String, Option<Arc<str>>)>,
        position: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(std::future::ready(self.write_build_now(name, generation, rows, position)))
    }

    fn finish_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        position: u64,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(std::future::ready(self.finish_build_now(name, generation, position, types)))
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

impl Schedule for MemoryStore {
    fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Scheduled>, StoreError>> {
        Box::pin(std::future::ready(Ok(self.claim_due_now(now, limit, lease))))
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
}

/// The log position of the entry at `index`: positions start at 1.
fn position(index: usize) -> u64 {
    position_of_last(index) + 1
}

/// The position of the last of `len` log entries (0: none): also a count as a `u64`.
fn position_of_last(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// Whether `event` is of one of `types` (any, when empty).
fn of_types(event: &Envelope, types: &[String]) -> bool {
    types.is_empty() || types.iter().any(|t| *t == *event.type_name)
}

/// Whether `cancel` drops `scheduled`: a deadline of the same instance, with its name.
fn cancels(cancel: &Cancel, scheduled: &Scheduled) -> bool {
    scheduled.owner == cancel.owner
        && scheduled.owner_key == cancel.owner_key
        && scheduled.name.as_deref() == Some(cancel.name.as_str())
}

/// Whether a builder that last wrote at `heartbeat` has been silent for longer than `lease`.
fn lease_ran_out(heartbeat: OffsetDateTime, lease: Duration, now: OffsetDateTime) -> bool {
    let lease = time::Duration::try_from(lease.min(super::MAX_LEASE)).unwrap_or(time::Duration::MAX);
    heartbeat.checked_add(lease).is_some_and(|end| end < now)
}

/// Refuses the filters this store cannot evaluate: an order with `null`, and values
/// that are not JSON scalars.
fn check_filter(filter: &RowFilter) -> Result<(), StoreError> {
    match (&filter.value, filter.op) {
        (Value::Null, FilterOp::Eq | FilterOp::Ne) | (Value::Bool(_) | Value::Number(_) | Value::String(_), _) => {
            Ok(())
        }
        (Value::Null, op) => Err(StoreError::Unsupported(format!(
            "a row filter on `{}` compares with null by `{}`: only equal and not equal can",
            filter.field,
            op.sql()
        ))),
        (Value::Array(_) | Value::Object(_), _) => Err(StoreError::Unsupported(format!(
            "a row filter on `{}` compares with {}: only JSON scalars (string, number, boolean, null) can be compared",
            filter.field, filter.value
        ))),
    }
}

/// Whether a row whose field `filter.field` is `field` (`None`: missing) passes `filter`.
fn holds(filter: &RowFilter, field: Option<&Value>) -> bool {
    match (&filter.value, filter.op) {
        (Value::Null, FilterOp::Eq) => field.is_none_or(Value::is_null),
        (Value::Null, FilterOp::Ne) => field.is_some_and(|value| !value.is_null()),
        (value, op) => match field.and_then(|field| compare_scalars(field, value)) {
            None => false,
            Some(ordering) => match op {
                FilterOp::Eq => ordering == Ordering::Equal,
                FilterOp::Ne => ordering != Ordering::Equal,
                FilterOp::Lt => ordering == Ordering::Less,
                FilterOp::Le => ordering != Ordering::Greater,
                FilterOp::Gt => ordering == Ordering::Greater,
                FilterOp::Ge => ordering != Ordering::Less,
            },
        },
    }
}

/// How two JSON scalars of the same kind compare; `None` for different kinds (which
/// never match) and for anything but strings, numbers and booleans.
fn compare_scalars(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Number(a), Value::Number(b)) => Some(compare_numbers(a, b)),
        (Value::String(a), Value::String(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        _ => None,
    }
}

/// Numbers by value: exactly when both are integers, as floats otherwise.
fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Ordering {
    let integer = |n: &serde_json::Number| n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from));
    match (integer(a), integer(b)) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ => {
            let (a, b) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN));
            a.partial_cmp(&b).unwrap_or_else(|| a.total_cmp(&b))
        }
    }
}

/// The order of a query's field values, ascending: missing and null first, then
/// booleans, numbers, strings, arrays and objects (each kind by value; arrays and
/// objects by their JSON text).
fn order_values(a: &Value, b: &Value) -> Ordering {
    let kind = |value: &Value| match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    };
    kind(a).cmp(&kind(b)).then_with(|| match compare_scalars(a, b) {
        Some(ordering) => ordering,
        None if a.is_null() => Ordering::Equal,
        None => a.to_string().cmp(&b.to_string()),
    })
}
