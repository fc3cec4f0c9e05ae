//! Benchmark 3 of docs/benchmarks.md: the command round trip of `round_trip.rs`, durable on SQLite,
//! beside the physical limit measured in the same run: the same rows written with the
//! SQLite driver (rusqlite) directly, with the same durability settings (WAL,
//! `synchronous = NORMAL`) and the same transaction shape.
//!
//! The round trip commits two transactions on both sides:
//! 1. the order and its `OrderPlaced`;
//! 2. the inventory reaction: its handled-message record, the inventory, its
//!    `StockReserved`, and both events marked delivered (`OrderPlaced` has one handler,
//!    `StockReserved` none).
//!
//! The raw side writes exactly those rows with prepared statements and JSON text made
//! in advance; protean also loads (one miss, one hit), validates, serializes and routes.
//!
//! Two groups:
//! * `durable_round_trip_sqlite`: one client, round trips back to back;
//! * `durable_round_trip_sqlite_8_clients_{normal,full}`: 8 clients at once (8 tasks on
//!   a multi-thread runtime, each running its share back to back), with
//!   `synchronous = NORMAL` and `FULL` on both sides: protean with group commit (the
//!   default), protean with `group_commit(false)`, and the raw side from 8 threads
//!   sharing one connection behind a mutex, one transaction per command as above (the
//!   faster honest form: 8 connections of their own would wait for each other's write
//!   lock in SQLite's busy handler, which sleeps).
//!
//! `cargo bench --bench durable_round_trip`; `cargo test --bench durable_round_trip` runs it once.

#[path = "support/clients.rs"]
mod clients;
#[path = "support/shop.rs"]
mod shop;
#[path = "support/round_trips.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use protean::prelude::*;
use protean::store::{Durability, SqliteStore};
use rusqlite::{params, Connection, TransactionBehavior};

/// How many clients the concurrent groups run.
const CLIENTS: u64 = 8;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime")
}

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime")
}

/// A fresh database file per sample, removed afterwards.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("protean-bench-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("bench.db")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// The raw side: the rows protean writes for one round trip, written directly.
struct Raw {
    connection: Connection,
}

impl Raw {
    fn open(path: &Path) -> Self {
        Self::open_with(path, Durability::Normal)
    }

    fn open_with(path: &Path, durability: Durability) -> Self {
        // The same schema as protean's, created by protean's own migration.
        drop(SqliteStore::open(path).expect("the schema"));
        let connection = Connection::open(path).expect("opens");
        connection.pragma_update(None, "journal_mode", "WAL").expect("WAL");
        let synchronous = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        connection.pragma_update(None, "synchronous", synchronous).expect("synchronous");
        Raw { connection }
    }

    fn stock(&mut self, sku: &str) {
        let state = format!(r#"{{"id":"{sku}","on_hand":10,"reserved":0}}"#);
        self.connection
            .execute(
                "INSERT INTO protean_aggregates (aggregate, id, version, state, last_sequence) VALUES ('Inventory', ?1, 1, ?2, 1)",
                params![sku, state],
            )
            .expect("stocked");
    }

    fn round_trip(&mut self, order_id: &str, sku: &str) {
        let (placed, reserved) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
        let command = uuid::Uuid::now_v7().to_string();
        let order = format!(
            r#"{{"id":"{order_id}","customer_id":"customer-1","lines":[{{"sku":"{sku}","quantity":2,"unit_price_cents":1250}}],"status":"Placed"}}"#
        );
        let event = format!(
            r#"{{"order_id":"{order_id}","customer_id":"customer-1","lines":[{{"sku":"{sku}","quantity":2,"unit_price_cents":1250}}]}}"#
        );
        let insert_event =
            "INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload,
            recorded_at, correlation_id, causation_id) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, ?9)";

        let tx = self.connection.transaction_with_behavior(TransactionBehavior::Immediate).expect("tx 1");
        tx.prepare_cached(
            "INSERT INTO protean_aggregates (aggregate, id, version, state, last_sequence) VALUES ('Order', ?1, 1, ?2, 1)",
        )
        .and_then(|mut s| s.execute(params![order_id, order]))
        .expect("the order");
        tx.prepare_cached(insert_event)
            .and_then(|mut s| {
                s.execute(params![placed, "Order", order_id, 1, "Order.OrderPlaced", event, micros(), command, command])
            })
            .expect("its event");
        tx.commit().expect("commit 1");

        let tx = self.connection.transaction_with_behavior(TransactionBehavior::Immediate).expect("tx 2");
        tx.prepare_cached("INSERT INTO protean_handled (handler, message_id) VALUES ('Stocks::reserve', ?1)")
            .and_then(|mut s| s.execute([&placed]))
            .expect("handled");
        let state = format!(r#"{{"id":"{sku}","on_hand":10,"reserved":2}}"#);
        tx.prepare_cached(
            "UPDATE protean_aggregates SET version = 2, state = ?2, last_sequence = 2 WHERE aggregate = 'Inventory' AND id = ?1",
        )
        .and_then(|mut s| s.execute(params![sku, state]))
        .expect("the inventory");
        let payload = format!(r#"{{"order_id":"{order_id}","quantity":2}}"#);
        tx.prepare_cached(insert_event)
            .and_then(|mut s| {
                s.execute(params![
                    reserved,
                    "Inventory",
                    sku,
                    2,
                    "Inventory.StockReserved",
                    payload,
                    micros(),
                    command,
                    placed
                ])
            })
            .expect("its event");
        {
            let mut mark = tx.prepare_cached("UPDATE protean_events SET delivered = 1 WHERE id = ?1").expect("mark");
            mark.execute([&reserved]).expect("delivered");
            mark.execute([&placed]).expect("delivered");
        }
        tx.commit().expect("commit 2");
    }
}

fn durable_round_trip(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("durable_round_trip_sqlite");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));

    group.bench_function("protean SqliteStore", |b| {
        b.iter_custom(|iters| {
            let scratch = Scratch::new();
            let store = SqliteStore::open(scratch.db()).expect("opens");
            let domain = Domain::builder()
                .module(module_path!().to_string() + "::shop")
                .store(store)
                .build()
                .expect("a valid model");
            support::time_round_trips(&rt, &domain, iters)
        })
    });

    group.bench_function("rusqlite, the same rows directly", |b| {
        b.iter_custom(|iters| {
            let scratch = Scratch::new();
            let mut raw = Raw::open(&scratch.db());
            let orders: Vec<(String, String)> = (0..iters)
                .map(|n| {
                    let sku = format!("SKU-{n}");
                    raw.stock(&sku);
                    (uuid::Uuid::now_v7().to_string(), sku)
                })
                .collect();
            let start = Instant::now();
            for (order_id, sku) in &orders {
                raw.round_trip(order_id, sku);
            }
            start.elapsed()
        })
    });
    group.finish();
}

/// `iters` round trips by 8 clients on a new store with `durability` and `group_commit`.
fn protean_clients(rt: &tokio::runtime::Runtime, iters: u64, durability: Durability, group_commit: bool) -> Duration {
    let scratch = Scratch::new();
    let store =
        SqliteStore::options().durability(durability).group_commit(group_commit).open(scratch.db()).expect("opens");
    let domain =
        Domain::builder().module(module_path!().to_string() + "::shop").store(store).build().expect("a valid model");
    rt.block_on(clients::protean_round_trips(&domain, CLIENTS, iters))
}

/// `iters` raw round trips by 8 threads sharing one connection, one transaction per
/// command.
fn raw_clients(iters: u64, durability: Durability) -> Duration {
    let scratch = Scratch::new();
    let mut raw = Raw::open_with(&scratch.db(), durability);
    let orders: Vec<(String, String)> = (0..iters)
        .map(|n| {
            let sku = format!("SKU-{n}");
            raw.stock(&sku);
            (uuid::Uuid::now_v7().to_string(), sku)
        })
        .collect();
    let (raw, orders) = (Arc::new(Mutex::new(raw)), Arc::new(orders));
    let start = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (raw, orders) = (Arc::clone(&raw), Arc::clone(&orders));
            std::thread::spawn(move || {
                let mut n = client;
                while n < iters {
                    let (order_id, sku) = &orders[n as usize];
                    raw.lock().expect("the connection").round_trip(order_id, sku);
                    n += CLIENTS;
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a client");
    }
    start.elapsed()
}

fn durable_round_trip_8_clients(c: &mut Criterion) {
    let rt = multi_thread_runtime();
    for (durability, name) in [(Durability::Normal, "normal"), (Durability::Full, "full")] {
        let mut group = c.benchmark_group(format!("durable_round_trip_sqlite_8_clients_{name}"));
        group.throughput(Throughput::Elements(1));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(6));
        group.bench_function("protean SqliteStore, group commit", |b| {
            b.iter_custom(|iters| protean_clients(&rt, iters, durability, true))
        });
        group.bench_function("protean SqliteStore, group_commit(false)", |b| {
            b.iter_custom(|iters| protean_clients(&rt, iters, durability, false))
        });
        group.bench_function("rusqlite directly, 8 threads on one connection", |b| {
            b.iter_custom(|iters| raw_clients(iters, durability))
        });
        group.finish();
    }
}

criterion_group!(benches, durable_round_trip, durable_round_trip_8_clients);
criterion_main!(benches);
