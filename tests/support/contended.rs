//! A store that meets version conflicts on demand, so that a test gets one without
//! racing two writers.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

// The paths outside `protean::prelude`, in one place.
use protean::store::{Batch, BoxFuture, Committed, Envelope, Record, Store, StoreError, StreamId, VersionConflict};
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

impl<S: Store> Store for Contended<S> {
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
    fn load<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        self.inner.load(stream)
    }
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
    fn failed_deliveries(
        &self,
        query: protean::store::FailureQuery,
    ) -> BoxFuture<'_, Result<Vec<protean::store::FailedDelivery>, StoreError>> {
        self.inner.failed_deliveries(query)
    }
    fn remove_failure<'a>(&'a self, handler: &'a str, event_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.remove_failure(handler, event_id)
    }
    fn outbox_status(&self) -> BoxFuture<'_, Result<protean::store::OutboxStatus, StoreError>> {
        self.inner.outbox_status()
    }
    fn mark_delivered(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.mark_delivered(event_ids)
    }
    fn is_handled<'a>(&'a self, handler: &'a str, message_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.is_handled(handler, message_id)
    }
    fn stream<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        self.inner.stream(stream)
    }
    fn events(&self, from: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        self.inner.events(from, limit)
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
