//! Benchmark 11 of docs/benchmarks.md: what metrics cost on the round trips of benchmarks 1
//! (memory) and 3 (SQLite): one `PlaceOrder` committed and its `OrderPlaced` delivered to
//! one `Inventory` handler, on one core.
//!
//! The side is chosen by `PROTEAN_BENCH_METRICS`: `recorder` installs a Prometheus
//! recorder (`metrics-exporter-prometheus`, with histogram buckets, as
//! `examples/http_shop` does) before any domain is built; anything else (or nothing) runs
//! with no recorder. The recorder is process-global, so the sides are separate runs;
//! `benches/metrics.sh` alternates them, A B A B A B, and prints each run's medians.
//! With the recorder, the samples' histogram values are drained (`run_upkeep`) between
//! samples, outside the timing, as the exporter's upkeep does in the background.
//!
//! `cargo bench --bench metrics`; `cargo test --bench metrics` runs it once.

#[path = "support/shop.rs"]
mod shop;
#[path = "support/round_trips.rs"]
mod support;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use protean::prelude::*;
use protean::store::SqliteStore;

/// The recorder's handle, when this run installed one.
static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder when `PROTEAN_BENCH_METRICS=recorder`: the side's name.
fn side() -> &'static str {
    let handle = RECORDER.get_or_init(|| {
        if std::env::var("PROTEAN_BENCH_METRICS").as_deref() != Ok("recorder") {
            return None;
        }
        let buckets = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];
        let builder = PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets);
        Some(builder.expect("buckets").install_recorder().expect("the only recorder of this process"))
    });
    if handle.is_some() {
        "recorder"
    } else {
        "none"
    }
}

/// Drains the recorder's histogram samples, outside the timing.
fn upkeep() {
    if let Some(Some(handle)) = RECORDER.get() {
        handle.run_upkeep();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime")
}

fn shop(store: impl protean::store::Store) -> Domain {
    Domain::builder().module(module_path!().to_string() + "::shop").store(store).build().expect("a valid model")
}

/// A fresh database folder per sample, removed afterwards.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("protean-bench-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn metrics_round_trip(c: &mut Criterion) {
    let side = side();
    let rt = runtime();

    let mut group = c.benchmark_group("metrics_round_trip_memory");
    group.throughput(Throughput::Elements(1));
    group.bench_function(side, |b| {
        b.iter_custom(|iters| {
            upkeep();
            support::time_round_trips(&rt, &shop(protean::store::MemoryStore::new()), iters)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("metrics_round_trip_sqlite");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function(side, |b| {
        b.iter_custom(|iters| {
            upkeep();
            let scratch = Scratch::new();
            let store = SqliteStore::open(scratch.0.join("bench.db")).expect("opens");
            support::time_round_trips(&rt, &shop(store), iters)
        })
    });
    group.finish();

    // The recorder side recorded: the round trips are in its counts.
    if let Some(Some(handle)) = RECORDER.get() {
        let text = handle.render();
        assert!(text.contains("protean_commands_total{command=\"Order.PlaceOrder\",outcome=\"processed\"}"), "{text}");
        assert!(text.contains("protean_deliveries_total{handler="), "{text}");
    }
}

criterion_group!(benches, metrics_round_trip);
criterion_main!(benches);
