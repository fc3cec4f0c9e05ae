//! Benchmark 1 of docs/benchmarks.md: the command round trip in memory, beside cqrs-es 0.5 with
//! its `MemStore`, in the same run, on one core (a current-thread tokio runtime).
//!
//! One round trip: `PlaceOrder` creates an order with one line and places it; the unit
//! of work commits; `OrderPlaced` is delivered to one `Inventory` handler, which loads,
//! changes and saves that SKU's inventory. Each command uses a fresh order and a SKU
//! stocked in the untimed setup, so neither side pays for a growing history, and each
//! sample starts from an empty store.
//!
//! A second group times the test kit: `Scenario::given(Stock).when(PlaceOrder)` beside
//! the same two commands sent with `process`, each on a fresh domain.
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

    // The test kit: `Scenario::given(Stock).when(PlaceOrder)` on a fresh domain, beside
    // the same two commands sent with `process` to a fresh domain. Building the domains
    // is outside the timing on both sides.
    let mut group = c.benchmark_group("test_kit_round_trip");
    group.throughput(Throughput::Elements(1));
    group.bench_function("process: Stock then PlaceOrder", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = std::time::Duration::ZERO;
            for n in 0..iters {
                let domain = protean_shop();
                let (stock, order) = commands(n);
                elapsed += rt.block_on(async {
                    let start = Instant::now();
                    let _ = domain.process(stock).await.expect("stocked");
                    let processed = domain.process(order).await.expect("placed");
                    let elapsed = start.elapsed();
                    assert!(processed.all_delivered().is_ok());
                    elapsed
                });
            }
            elapsed
        })
    });
    group.bench_function("Scenario: given Stock, when PlaceOrder", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = std::time::Duration::ZERO;
            for n in 0..iters {
                let scenario = protean::testing::Scenario::new(protean_shop());
                let (stock, order) = commands(n);
                elapsed += rt.block_on(async {
                    let start = Instant::now();
                    let outcome = scenario.given(stock).when(order).await;
                    let elapsed = start.elapsed();
                    outcome.then_no_failures();
                    elapsed
                });
            }
            elapsed
        })
    });
    group.finish();
}

/// The two commands of a test-kit round trip: stock a SKU, then order from it.
fn commands(n: u64) -> (shop::Stock, shop::PlaceOrder) {
    let sku = format!("SKU-{n}");
    let stock = shop::Stock { sku: Identifier::parse(&sku).expect("a SKU"), quantity: 10 };
    let order = shop::PlaceOrder {
        order_id: Identifier::generate(),
        customer_id: "customer-1".into(),
        sku,
        quantity: 2,
        unit_price_cents: 1250,
    };
    (stock, order)
}

fn protean_shop() -> Domain {
    Domain::builder().module(module_path!().to_string() + "::shop").build().expect("a valid model")
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
