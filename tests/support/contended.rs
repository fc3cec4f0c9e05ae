//! A store that meets version conflicts on demand, so that a test gets one without
//! racing two writers.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use protean::store::{
    Batch, BoxFuture, Committed, Deliveries, Outbox, Projections, Records, Schedule, Store, StoreError, VersionConflict,
};

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

    protean::forward_ports!(
        self.inner: migrate, close, load, commit_group, stream, stream_range, replay_events, load_snapshot, events,
        log_after, log_count
    );
}

impl<S: Store> Outbox for Contended<S> {
    protean::forward_ports!(self.inner: Outbox);
}

impl<S: Store> Deliveries for Contended<S> {
    protean::forward_ports!(self.inner: Deliveries);
}

impl<S: Store> Projections for Contended<S> {
    protean::forward_ports!(self.inner: Projections);
}

impl<S: Store> Schedule for Contended<S> {
    protean::forward_ports!(self.inner: Schedule);
}
