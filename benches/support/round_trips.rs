//! The protean side of a round-trip sample, the same on every store: stock one SKU per
//! command outside the timing, time the `PlaceOrder`s back to back in one task (as a
//! service runs them), then check the work was done.

use std::hint::black_box;
use std::time::{Duration, Instant};

use protean::prelude::*;

use super::shop;

/// Times `iters` round trips on `domain`, which starts empty.
pub fn time_round_trips(rt: &tokio::runtime::Runtime, domain: &Domain, iters: u64) -> Duration {
    let commands: Vec<shop::PlaceOrder> = (0..iters)
        .map(|n| {
            let sku = format!("SKU-{n}");
            let id = Identifier::parse(&sku).expect("a SKU");
            rt.block_on(domain.process(shop::Stock { sku: id, quantity: 10 }))
                .expect("stocked")
                .all_delivered()
                .expect("stocked");
            shop::PlaceOrder {
                order_id: Identifier::generate(),
                customer_id: "customer-1".into(),
                sku,
                quantity: 2,
                unit_price_cents: 1250,
            }
        })
        .collect();
    let elapsed = rt.block_on(async {
        let start = Instant::now();
        for command in commands {
            let processed = domain.process(command).await.expect("processed");
            debug_assert!(processed.all_delivered().is_ok());
            let _ = black_box(processed);
        }
        start.elapsed()
    });
    // The work was done: the last SKU is reserved.
    let last = Identifier::<shop::Inventory>::parse(&format!("SKU-{}", iters - 1)).expect("a SKU");
    let stock = rt.block_on(domain.get(&last)).expect("loads").expect("stocked");
    assert_eq!((stock.on_hand, stock.reserved), (10, 2));
    elapsed
}
