//! The in-memory store, for tests and for trying things out: every record, event, row
//! and scheduled command is kept as JSON text under one lock, so it behaves like a
//! database (copies on load, version checks on commit) and every step is exact. Like
//! every backend it has one file per port; the guarantees it keeps are those of every
//! store, in [docs/storage.md](../../../../docs/storage.md).

mod commit;
mod deliveries;
mod outbox;
mod projections;
mod records;
mod rows;
mod schedule;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use foldhash::HashMap;
use uuid::Uuid;

use super::{BuildState, FailedDelivery, Record, Scheduled, WorkerBeat};
use crate::store::envelope::Envelope;

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
/// use protean::store::{Batch, Commit, MemoryStore, Records, StoreError};
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
    failures: BTreeMap<(String, Uuid), (usize, FailedDelivery)>,
    read_models: HashMap<String, HashMap<String, String>>,
    /// Projections by name.
    projections: HashMap<String, Projected>,
    /// Scheduled commands not fired yet, in the order they were stored.
    scheduled: Vec<Pending>,
    /// Worker sets' last beats, by id.
    workers: HashMap<Uuid, WorkerBeat>,
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
    /// The version of the row under `key` in the serving copy (0: none).
    fn serving_version(&self, key: &str) -> u64 {
        self.copies.get(&self.generation).and_then(|copy| copy.get(key)).map_or(0, |row| row.version)
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
    snapshots: BTreeMap<u64, Arc<str>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-written (every
        // mutation is a single insert or push), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    /// Marks the undelivered events `event_ids` delivered: by a commit, or by the outbox.
    fn mark_delivered(&mut self, event_ids: &[Uuid]) {
        let Inner { log, delivery, first_undelivered, .. } = self;
        // Events just delivered are near the end of the log: search from there.
        for id in event_ids {
            if let Some(i) = log.iter().rposition(|e| e.id == *id).filter(|&i| i >= *first_undelivered) {
                delivery[i].delivered = true;
            }
        }
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
