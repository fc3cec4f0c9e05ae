//! What the engine makes of corrupt stored records: typed errors.

use std::sync::Arc;

use protean::prelude::*;
use protean::store::StreamId;
use protean::store::{Batch, Commit, MemoryStore, Store, StoreError};

use crate::ecommerce::Restock;
use crate::sku;

#[tokio::test]
async fn corrupt_stored_records_are_typed_errors() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let domain = Domain::builder().module(crate::model("ecommerce")).shared_store(Arc::clone(&store)).build().unwrap();
    let stream = StreamId::new("Inventory", "BOOK-1");
    let bad = Commit {
        stream,
        expected_version: 0,
        advance: 1,
        state: Some(r#"{"id":"BOOK-1","available":"many"}"#.into()),
        events: vec![],
        snapshot: None,
    };
    store.commit(Batch { commits: vec![bad], handled: None, delivered: vec![], ..Batch::default() }).await.unwrap();
    let error = domain.get(&sku("BOOK-1")).await.unwrap_err();
    let ProcessError::Store(StoreError::Corrupt { stream, position, reason }) = &error else { panic!("{error}") };
    assert_eq!((&*stream.id, *position), ("BOOK-1", 1));
    assert!(reason.contains("not a valid `Inventory`"), "{reason}");
    // A handler meeting it fails the command with the same typed error.
    let error = domain.process(Restock { sku: sku("BOOK-1"), quantity: 1 }).await.unwrap_err();
    assert!(matches!(error, ProcessError::Store(StoreError::Corrupt { .. })), "{error}");
}
