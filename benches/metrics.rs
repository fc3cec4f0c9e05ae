//! Benchmark 12 of docs/benchmarks.md: what metrics cost on the round trips of benchmarks 1
//! (memory) and 3 (SQLite): one `PlaceOrder` committed and its `OrderPlaced` delivered to
//! one `Inventory` handler, on one core.
//!
//! Two sides in one run: `recorder` builds each sample's domain inside
//! `metrics::with_local_recorder` with a Prometheus recorder (`metrics-exporter-prometheus`,
//! with histogram buckets, as `examples/http_shop` does), so everything the domain records
//! goes to it; `none` builds it with no recorder. `PROTEAN_BENCH_METRICS` lists the sides
//! in the order to run them (`none,recorder` by default); `benches/metrics.sh` runs the
//! bench several times, alternating the order, and prints the medians. The recorder's
//! histogram samples are drained (`run_upkeep`) before each sample, outside the timing,
//! as the exporter's upkeep does in the background.
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
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use protean::prelude::*;
use protean::store::SqliteStore;

/// The recorder of the `recorder` side, and its handle.
fn recorder() -> &'static (PrometheusRecorder, PrometheusHandle) {
    static RECORDER: OnceLock<(PrometheusRecorder, PrometheusHandle)> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let buckets = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];
        let builder = PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets);
        let recorder = builder.expect("buckets").build_recorder();
        let handle = recorder.handle();
        (recorder, handle)
    })
}

/// The sides to run, in order.
fn sides() -> Vec<&'static str> {
    let order = std::env::var("PROTEAN_BENCH_METRICS").unwrap_or_else(|_| "none,recorder".into());
    order.split(',').map(|side| if side.trim() == "recorder" { "recorder" } else { "none" }).collect()
}

/// The shop on `store`, its metrics going to the recorder on the `recorder` side (whose
/// histogram samples are drained first).
fn shop(side: &str, store: impl protean::store::Store) -> Domain {
    let builder = Domain::builder().module(module_path!().to_string() + "::shop").store(store);
    let domain = if side == "recorder" {
        let (recorder, handle) = recorder();
        handle.run_upkeep();
        metrics::with_local_recorder(recorder, || builder.build())
    } else {
        builder.build()
    };
    domain.expect("a valid model")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime")
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
    let rt = runtime();

    let mut group = c.benchmark_group("metrics_round_trip_memory");
    group.throughput(Throughput::Elements(1));
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for side in sides() {
        group.bench_function(side, |b| {
            b.iter_custom(|iters| {
                support::time_round_trips(&rt, &shop(side, protean::store::MemoryStore::new()), iters)
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("metrics_round_trip_sqlite");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for side in sides() {
        group.bench_function(side, |b| {
            b.iter_custom(|iters| {
                let scratch = Scratch::new();
                let store = SqliteStore::open(scratch.0.join("bench.db")).expect("opens");
                support::time_round_trips(&rt, &shop(side, store), iters)
            })
        });
    }
    group.finish();

    // The recorder side recorded: the round trips are in its counts.
    if sides().contains(&"recorder") {
        let text = recorder().1.render();
        assert!(text.contains("protean_commands_total{command=\"Order.PlaceOrder\",outcome=\"processed\"}"), "{text}");
        assert!(text.contains("protean_deliveries_total{handler="), "{text}");
    }
}

criterion_group!(benches, metrics_round_trip);
criterion_main!(benches);
