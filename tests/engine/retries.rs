//! Version conflicts: handlers run again up to the configured bound, and concurrent
//! commands on one aggregate lose no update.

use protean::prelude::*;
use protean::store::MemoryStore;

use crate::contended::Contended;
use crate::ecommerce::*;
use crate::{order_of, sku};

async fn contended_shop(conflicts: u32, retries: u32) -> Domain {
    let store = Contended::new(MemoryStore::new(), "Inventory", conflicts);
    let domain =
        Domain::builder().module(crate::model("ecommerce")).store(store).conflict_retries(retries).build().unwrap();
    domain.process(Restock { sku: sku("BOOK-1"), quantity: 5 }).await.unwrap().all_delivered().unwrap();
    domain
}

#[tokio::test]
async fn event_handlers_retry_version_conflicts_up_to_the_configured_bound() {
    let domain = contended_shop(2, 2).await;
    let processed = domain.process(order_of(&Identifier::generate(), "BOOK-1", 1, 100)).await.unwrap();
    assert!(processed.failures.is_empty(), "two conflicts, two retries: {:?}", processed.failures);
    assert_eq!(domain.get(&sku("BOOK-1")).await.unwrap().unwrap().reserved, 1, "reserved once, not three times");

    let domain = contended_shop(3, 2).await;
    let processed = domain.process(order_of(&Identifier::generate(), "BOOK-1", 1, 100)).await.unwrap();
    let [failure] = processed.failures.as_slice() else { panic!("one failure") };
    assert!(matches!(failure.error, ProcessError::Conflict(_)), "{}", failure.error);
    assert_eq!(domain.get(&sku("BOOK-1")).await.unwrap().unwrap().reserved, 0);
    // Once the contention is gone, the kept event is delivered.
    let Delivered { events: _, failures } = domain.retry_failed().await;
    assert!(failures.is_empty());
    assert_eq!(domain.get(&sku("BOOK-1")).await.unwrap().unwrap().reserved, 1);
}

#[tokio::test]
async fn commands_retry_conflicts_too_and_report_them_when_retries_run_out() {
    let domain = contended_shop(1, 0).await;
    let error = domain.process(Restock { sku: sku("BOOK-1"), quantity: 1 }).await.unwrap_err();
    assert!(matches!(error, ProcessError::Conflict(_)), "{error}");
    let domain = contended_shop(1, 1).await;
    domain.process(Restock { sku: sku("BOOK-1"), quantity: 1 }).await.unwrap().all_delivered().unwrap();
    assert_eq!(domain.get(&sku("BOOK-1")).await.unwrap().unwrap().available, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_on_one_aggregate_lose_no_update() {
    let domain = Domain::builder().module(crate::model("ecommerce")).conflict_retries(1_000).build().unwrap();
    let id = sku("BOOK-1");
    domain.process(Restock { sku: id.clone(), quantity: 1 }).await.unwrap().all_delivered().unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (domain, id) = (domain.clone(), id.clone());
            tokio::spawn(async move {
                let mut done = 0;
                for _ in 0..50 {
                    domain.process(Restock { sku: id.clone(), quantity: 1 }).await.unwrap().all_delivered().unwrap();
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut succeeded = 0;
    for task in tasks {
        succeeded += task.await.unwrap();
    }
    let stock = domain.get(&id).await.unwrap().unwrap();
    assert_eq!(stock.available, 1 + succeeded);
    assert_eq!(stock.version(), 1 + u64::from(succeeded), "one version per successful command");
    assert_eq!(domain.events_of(&id).await.unwrap().len(), 1 + succeeded as usize);
}
