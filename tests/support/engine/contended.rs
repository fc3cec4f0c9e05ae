//! A store that refuses the first commits touching `Inventory` with a version conflict.

use std::sync::atomic::{AtomicU32, Ordering};

use protean::store::StreamId;
use protean::store::{Batch, BoxFuture, Committed, MemoryStore, Record, Store, StoreError, VersionConflict};

/// A store that refuses the first `conflicts` commits touching `Inventory`, as if another
/// process had written it in between.
pub struct ContendedStore {
    pub inner: MemoryStore,
    pub conflicts: AtomicU32,
}

impl Store for ContendedStore {
    fn load<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        self.inner.load(stream)
    }
    fn commit(&self, batch: Batch) -> BoxFuture<'_, Result<Vec<Committed>, StoreError>> {
        let commits = &batch.commits;
        let contended = commits.iter().any(|c| c.stream.aggregate == "Inventory" && c.expected_version > 0);
        if contended && self.conflicts.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            let c = &commits[0];
            let conflict = VersionConflict { stream: c.stream.clone(), expected: c.expected_version, actual: 99 };
            return Box::pin(std::future::ready(Err(conflict.into())));
        }
        self.inner.commit(batch)
    }
    fn claim_undelivered(
        &self,
        limit: usize,
        lease: std::time::Duration,
    ) -> BoxFuture<'_, Result<Vec<protean::store::Envelope>, StoreError>> {
        self.inner.claim_undelivered(limit, lease)
    }
    fn mark_delivered(&self, event_ids: Vec<uuid::Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.mark_delivered(event_ids)
    }
    fn is_handled<'a>(&'a self, handler: &'a str, message_id: uuid::Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.is_handled(handler, message_id)
    }
    fn stream<'a>(
        &'a self,
        stream: &'a StreamId,
    ) -> BoxFuture<'a, Result<Vec<protean::store::Envelope>, StoreError>> {
        self.inner.stream(stream)
    }
    fn events(&self, from: u64, limit: usize) -> BoxFuture<'_, Result<Vec<protean::store::Envelope>, StoreError>> {
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
