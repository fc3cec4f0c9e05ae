//! Benchmark 5 of docs/benchmarks.md: loading an event-sourced aggregate whose stream holds 10,
//! 1,000 or 100,000 events, on SQLite (the default store), with snapshots every 100
//! events and without any. Without snapshots a load replays the whole stream, so its
//! cost grows with the stream; with them it replays at most 100 events after the latest
//! snapshot, so it stays about flat.
//!
//! The same loads run on the memory store too (the groups named `memory, …`): there no
//! database is read, so its replay rate is what replaying itself costs (parsing each
//! payload and applying it), without SQLite's I/O.
//!
//! Throughput is reported per event in the stream: for the runs without snapshots that is
//! the replay rate (events replayed per second).
//!
//! `cargo bench --bench event_sourced_load` (it draws
//! `target/criterion/event_sourced_load/report/lines.svg`); `cargo test --bench
//! event_sourced_load` runs it once, on streams of 10 and 1,000 events.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, AxisScale, BenchmarkId, Criterion, PlotConfiguration};
use protean::prelude::*;
use protean::store::{MemoryStore, SqliteStore, Store};

/// The event-sourced account whose stream is loaded.
mod bank {
    use protean::prelude::*;

    /// Every change is an applied event.
    #[aggregate(event_sourced)]
    pub struct Account {
        pub owner: String,
        pub balance: i64,
        pub deposits: u64,
    }

    /// Money came in.
    #[event(part_of = Account)]
    pub struct Deposited {
        pub amount: i64,
        pub reference: String,
    }

    #[apply]
    impl Account {
        fn deposited(&mut self, event: &Deposited) {
            self.balance += event.amount;
            self.deposits += 1;
        }
    }
}

use bank::*;

/// A fresh database file, removed afterwards.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the stream is kept.
#[derive(Clone, Copy)]
enum Backend {
    /// A fresh SQLite file (the default store).
    Sqlite,
    /// A [`MemoryStore`].
    Memory,
}

/// An account whose stream holds `events` deposits, committed 100 at a time, on `backend`.
async fn seeded(backend: Backend, events: u64, snapshot_every: u64) -> (Domain, Identifier<Account>, Scratch) {
    let dir = std::env::temp_dir().join(format!("protean-es-bench-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let store: std::sync::Arc<dyn Store> = match backend {
        Backend::Sqlite => std::sync::Arc::new(SqliteStore::open(dir.join("bench.db")).expect("opens")),
        Backend::Memory => std::sync::Arc::new(MemoryStore::new()),
    };
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::bank")
        .shared_store(store)
        .snapshot_every(snapshot_every)
        .build()
        .expect("a valid model");
    let id = Identifier::<Account>::generate();
    let mut written = 0;
    while written < events {
        let mut unit = domain.unit_of_work::<Account>();
        let account = if written == 0 {
            let blank = Account::builder().id(id.clone()).owner("Ada").balance(0i64).deposits(0u64).build();
            unit.add(blank.expect("a valid account")).expect("added")
        } else {
            unit.load(&id).await.expect("loads")
        };
        for n in written..(written + 100).min(events) {
            account.raise(Deposited { amount: 1, reference: format!("deposit {n}") });
        }
        unit.commit().await.expect("committed").all_delivered().expect("committed");
        written = (written + 100).min(events);
    }
    (domain, id, Scratch(dir))
}

fn event_sourced_load(c: &mut Criterion) {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: &[u64] = if full { &[10, 1_000, 100_000] } else { &[10, 1_000] };
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime");
    let mut group = c.benchmark_group("event_sourced_load");
    group.plot_config(PlotConfiguration::default().summary_scale(AxisScale::Logarithmic));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    let labels = [
        (Backend::Sqlite, "snapshots every 100 events", 100),
        (Backend::Sqlite, "no snapshots", 0),
        (Backend::Memory, "memory, snapshots every 100 events", 100),
        (Backend::Memory, "memory, no snapshots", 0),
    ];
    for &events in sizes {
        for (backend, label, every) in labels {
            let (domain, id, _scratch) = rt.block_on(seeded(backend, events, every));
            let loaded = rt.block_on(domain.get(&id)).expect("loads").expect("exists");
            assert_eq!(loaded.deposits, events, "the whole stream is reflected");
            group.bench_with_input(BenchmarkId::new(label, events), &events, |b, _| {
                b.iter(|| rt.block_on(domain.get(&id)).expect("loads").expect("exists"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, event_sourced_load);
criterion_main!(benches);
