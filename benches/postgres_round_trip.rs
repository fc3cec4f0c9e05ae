//! Benchmark 3 of issue 4: the command round trip on PostgreSQL with 8 concurrent
//! clients, protean's `PostgresStore` beside cqrs-es 0.5 with `postgres-es` doing the
//! equivalent work, on the same server in the same run (each on a fresh database per
//! sample, both with a pool of 8 connections).
//!
//! A round trip is `round_trip.rs`'s: place an order (one line), commit, deliver
//! `OrderPlaced` to the inventory reaction, which loads, changes and saves that SKU's
//! inventory. Every command uses its own SKU, stocked outside the timing. Needs
//! `PROTEAN_POSTGRES_URL`; without it the bench says so and measures nothing.
//!
//! `cargo bench --features postgres --bench postgres_round_trip`; `cargo test --features postgres --bench
//! postgres_round_trip` runs it once.

#[path = "peer/cqrs_es.rs"]
#[allow(dead_code, missing_docs)]
mod cqrs_es_peer;
#[path = "peer/postgres_es.rs"]
#[allow(dead_code, missing_docs)]
mod postgres_es_peer;
#[path = "support/shop.rs"]
mod shop;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use protean::prelude::*;
use protean::store::PostgresStore;

const CLIENTS: u64 = 8;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime")
}

/// A new database on the server, so every sample starts empty.
async fn fresh_database(url: &str) -> String {
    let admin = sqlx::PgPool::connect(url).await.expect("PROTEAN_POSTGRES_URL answers");
    let name = format!("bench_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("a database");
    admin.close().await;
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    format!("{base}/{name}")
}

/// `iters` commands spread over the clients, each client running its share back to back.
async fn clients<F, Fut>(iters: u64, run: F) -> Duration
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let run = run.clone();
            tokio::spawn(async move {
                let mut n = client;
                while n < iters {
                    run(n).await;
                    n += CLIENTS;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a client");
    }
    start.elapsed()
}

fn postgres_round_trip(c: &mut Criterion) {
    let Ok(url) = std::env::var("PROTEAN_POSTGRES_URL") else {
        eprintln!("postgres_round_trip: set PROTEAN_POSTGRES_URL to run it; nothing measured");
        return;
    };
    let rt = runtime();
    let mut group = c.benchmark_group("postgres_round_trip_8_clients");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));

    group.bench_function("protean PostgresStore", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let db = fresh_database(&url).await;
                let store = PostgresStore::connect_with(&db, 8).await.expect("connects");
                let domain = Domain::builder()
                    .module(module_path!().to_string() + "::shop")
                    .store(store)
                    .build()
                    .expect("a valid model");
                clients(iters, {
                    let domain = domain.clone();
                    move |n| {
                        let domain = domain.clone();
                        async move {
                            let sku = Identifier::parse(&format!("SKU-{n}")).expect("a SKU");
                            domain
                                .process(shop::Stock { sku, quantity: 10 })
                                .await
                                .expect("stocked")
                                .all_delivered()
                                .expect("stocked");
                        }
                    }
                })
                .await;
                let elapsed = clients(iters, {
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
            })
        })
    });

    group.bench_function("cqrs-es 0.5 postgres-es", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let db = fresh_database(&url).await;
                let peer = Arc::new(postgres_es_peer::PostgresEsPeer::connect(&db, 8).await);
                clients(iters, {
                    let peer = Arc::clone(&peer);
                    move |n| {
                        let peer = Arc::clone(&peer);
                        async move { peer.stock(&format!("SKU-{n}"), 10).await }
                    }
                })
                .await;
                let elapsed = clients(iters, {
                    let peer = Arc::clone(&peer);
                    move |n| {
                        let peer = Arc::clone(&peer);
                        async move {
                            let order_id = uuid::Uuid::now_v7().to_string();
                            peer.place_order(&order_id, "customer-1", &format!("SKU-{n}"), 2, 1250).await
                        }
                    }
                })
                .await;
                assert_eq!(peer.inventory(&format!("SKU-{}", iters - 1)).await, (10, 2));
                elapsed
            })
        })
    });
    group.finish();
}

criterion_group!(benches, postgres_round_trip);
criterion_main!(benches);
