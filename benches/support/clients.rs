//! Concurrent clients for the multi-client round-trip benches: tasks on the current
//! tokio runtime, each running its share of the commands back to back.

use std::time::{Duration, Instant};

use protean::prelude::*;

use super::shop;

/// The protean side of a multi-client sample, the same on every store: `clients`
/// clients stock one SKU per command (untimed), then place `iters` orders (timed); the
/// last SKU is checked reserved.
pub async fn protean_round_trips(domain: &Domain, clients: u64, iters: u64) -> Duration {
    self::clients(clients, iters, {
        let domain = domain.clone();
        move |n| {
            let domain = domain.clone();
            async move {
                let sku = Identifier::parse(&format!("SKU-{n}")).expect("a SKU");
                let stocked = domain.process(shop::Stock { sku, quantity: 10 }).await.expect("stocked");
                stocked.all_delivered().expect("stocked");
            }
        }
    })
    .await;
    let elapsed = self::clients(clients, iters, {
        let domain = domain.clone();
        move |n| {
            let domain = domain.clone();
            async move {
                let command = shop::PlaceOrder {
                    order_id: Identifier::generate(),
                    customer_id: "customer-1".into(),
                    sku: format!("SKU-{n}"),
                    quantity: 2,
                    unit_price_cents: 1250,
                };
                domain.process(command).await.expect("processed").all_delivered().expect("processed");
            }
        }
    })
    .await;
    let last = Identifier::<shop::Inventory>::parse(&format!("SKU-{}", iters - 1)).expect("a SKU");
    let stock = domain.get(&last).await.expect("loads").expect("stocked");
    assert_eq!((stock.on_hand, stock.reserved), (10, 2));
    elapsed
}

/// `iters` commands spread over `clients` clients, each client running its share back to back.
pub async fn clients<F, Fut>(clients: u64, iters: u64, run: F) -> Duration
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let run = run.clone();
            tokio::spawn(async move {
                let mut n = client;
                while n < iters {
                    run(n).await;
                    n += clients;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a client");
    }
    start.elapsed()
}
