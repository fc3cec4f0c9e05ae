//! Benchmark 1 of issue 3: the command round trip in memory, beside cqrs-es 0.5 with
//! its `MemStore`, in the same run, on one core (a current-thread tokio runtime).
//!
//! One round trip: `PlaceOrder` creates an order with one line and places it; the unit
//! of work commits; `OrderPlaced` is delivered to one `Inventory` handler, which loads,
//! changes and saves that SKU's inventory. Each command uses a fresh order and a SKU
//! stocked in the untimed setup, so neither side pays for a growing history, and each
//! sample starts from an empty store.
//!
//! `cargo bench --bench round_trip` (cqrs-es's `MemStore` prints a line per load and
//! commit; send stdout to /dev/null and read `target/criterion/command_round_trip/*/new/estimates.json`,
//! as `docs/benchmarks.md` explains). `cargo test --bench round_trip` runs it once.

#[path = "peer/cqrs_es.rs"]
#[allow(dead_code, missing_docs)]
mod cqrs_es_peer;

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use protean::prelude::*;

#[path = "support/shop.rs"]
mod shop;
#[path = "support/round_trips.rs"]
mod support;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime")
}

fn round_trip(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("command_round_trip");
    group.throughput(Throughput::Elements(1));

    // Each sample starts from an empty store, stocks one SKU per command outside the
    // timing, then times the commands back to back in one task, as a service would run them.
    group.bench_function("protean MemoryStore", |b| {
        b.iter_custom(|iters| support::time_round_trips(&rt, &protean_shop(), iters))
    });

    group.bench_function("cqrs-es 0.5 MemStore", |b| {
        b.iter_custom(|iters| {
            let peer = cqrs_es_peer::CqrsPeer::new();
            let orders: Vec<(String, String)> = (0..iters)
                .map(|n| {
                    let sku = format!("SKU-{n}");
                    rt.block_on(peer.stock(&sku, 10));
                    (uuid::Uuid::now_v7().to_string(), sku)
                })
                .collect();
            let elapsed = rt.block_on(async {
                let start = Instant::now();
                for (order_id, sku) in &orders {
                    peer.place_order(order_id, "customer-1", sku, 2, 1250).await;
                }
                start.elapsed()
            });
            let last = format!("SKU-{}", iters - 1);
            assert_eq!(rt.block_on(peer.inventory(&last)), (10, 2));
            elapsed
        })
    });
    group.finish();
}

fn protean_shop() -> Domain {
    Domain::builder().module(module_path!().to_string() + "::shop").build().expect("a valid model")
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
