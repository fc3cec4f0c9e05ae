//! Background delivery (docs/benchmarks.md §6a, §6b), on SQLite and on PostgreSQL:
//!
//! 1. `process()` latency with `DeliveryMode::Background` beside the inline mode, in one
//!    criterion group (`background_process_latency`). A command deposits into a new
//!    wallet; its `Deposited` has two reacting handlers. Inline, `process` runs both
//!    reactions before it returns; in the background it returns after the commit, while
//!    delivery workers run on the same runtime during the measurement (the reactions
//!    still happen, off the request path); after the timing the sample waits until the
//!    workers have delivered every event, and checks they did.
//! 2. Commit-to-reaction latency in the background mode (not criterion: a table on
//!    stderr): commands at a steady pace with workers running; each reaction notes the
//!    wall-clock time it ran, compared with its event's `recorded_at` (taken when the
//!    command's unit of work starts its commit). p50 and p99, per reaction and per event
//!    (until both handlers have reacted).
//!
//! Each criterion case (its samples one after the other), and each latency run, gets a
//! fresh database: a SQLite file in a temporary directory; a new database on the server of
//! `PROTEAN_POSTGRES_URL` (with the `postgres` feature; without the URL the PostgreSQL
//! cases say they are skipped). 50 deposits, processed and delivered before the timing,
//! warm it up (see `WARM_UP`). After the criterion group, a line per store says how much
//! of the background samples' delivery work the workers did inside the timed windows.
//!
//! `cargo bench --all-features --bench background -- --warm-up-time 1 --measurement-time 3`;
//! `cargo test --all-features --bench background` runs each case once and the latency
//! measurement with 50 commands.

#[path = "support/backends.rs"]
#[allow(dead_code)]
mod backends;
#[path = "support/deposits.rs"]
mod deposits;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use protean::prelude::*;
use protean::runtime::{DeliveryMode, WorkerConfig, WorkerHandle};
use protean::store::{OffsetDateTime, Store};

use backends::{backends, runtime, Backend, Opened, Scratch};

fn domain(store: Arc<dyn Store>, mode: DeliveryMode) -> Domain {
    Domain::builder()
        .module(module_path!().to_string() + "::deposits")
        .shared_store(store)
        .delivery(mode)
        .build()
        .expect("the deposits model is valid")
}

/// Waits until the workers have worked `events` events.
async fn delivered(handle: &WorkerHandle, events: u64) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while handle.report().events < events {
        assert!(Instant::now() < deadline, "not delivered in time: {:?}", handle.report());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits until the workers have worked `events` events (two deliveries each), and stops them.
async fn drained(handle: WorkerHandle, events: u64) {
    delivered(&handle, events).await;
    let report = handle.shutdown().await;
    assert_eq!((report.events, report.deliveries, report.failed_attempts), (events, 2 * events, 0), "{report:?}");
}

/// Deposits processed, and delivered, on each case's fresh database before its first
/// sample: a new PostgreSQL database means new server backends, which read their catalogs
/// and prepare every statement on first use (milliseconds each); without this the first
/// samples measure mostly that.
const WARM_UP: u64 = 50;

async fn deposit(domain: &Domain) {
    let processed = domain.process(deposits::Deposit { id: Identifier::generate(), amount: 1 }).await;
    let processed = processed.expect("processed");
    debug_assert!(processed.failures.is_empty());
    let _ = std::hint::black_box(processed);
}

/// A case's domain on its fresh database, warmed up; its samples follow one another on it
/// (each deposit opens a new wallet, so a deposit costs the same in every sample).
struct Case {
    backend: Backend,
    mode: DeliveryMode,
    domain: Domain,
    _scratch: Option<Scratch>,
}

impl Case {
    async fn new(backend: &Backend, mode: DeliveryMode) -> Self {
        let Opened { store, scratch, .. } = backend.fresh_store().await;
        let case = Case { backend: backend.clone(), mode, domain: domain(store, mode), _scratch: scratch };
        let workers = case.workers();
        for _ in 0..WARM_UP {
            deposit(&case.domain).await;
        }
        if let Some(workers) = workers {
            drained(workers, WARM_UP).await;
        }
        case
    }

    /// Workers started, in the background mode.
    fn workers(&self) -> Option<WorkerHandle> {
        (self.mode == DeliveryMode::Background)
            .then(|| self.domain.workers(WorkerConfig::default()).start().expect("on a runtime"))
    }

    /// One sample: `iters` deposits into new wallets, back to back in one task. In the
    /// background mode the workers run meanwhile, and are drained after the timing.
    async fn time_deposits(&self, iters: u64) -> Duration {
        let workers = self.workers();
        let start = Instant::now();
        for _ in 0..iters {
            deposit(&self.domain).await;
        }
        let elapsed = start.elapsed();
        match workers {
            Some(workers) => {
                let in_window = workers.report().events;
                let draining = Instant::now();
                drained(workers, iters).await;
                let mut backlog = BACKLOG.lock().unwrap();
                let entry = backlog.entry(self.backend.label()).or_default();
                entry.commands += iters;
                entry.delivered_in_window += in_window;
                entry.timed += elapsed;
                entry.drain_after += draining.elapsed();
            }
            None => assert_eq!(self.domain.delivery_status().await.expect("a status").undelivered, 0),
        }
        elapsed
    }
}

/// How far the workers kept up during the background samples' timed windows, per store.
#[derive(Default)]
struct Backlog {
    commands: u64,
    delivered_in_window: u64,
    timed: Duration,
    drain_after: Duration,
}

static BACKLOG: std::sync::Mutex<std::collections::BTreeMap<&'static str, Backlog>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Whether the background samples' work happened inside their timing, or was left for after.
fn print_backlog() {
    for (store, b) in BACKLOG.lock().unwrap().iter() {
        eprintln!(
            "{store} background samples: {} commands in {:.2} s timed; the workers delivered {} of their events \
             ({:.0}%) within the timing, and the rest in {:.2} s after it",
            b.commands,
            b.timed.as_secs_f64(),
            b.delivered_in_window,
            100.0 * b.delivered_in_window as f64 / b.commands.max(1) as f64,
            b.drain_after.as_secs_f64()
        );
    }
}

fn process_latency(c: &mut Criterion, rt: &tokio::runtime::Runtime, backends: &[Backend]) {
    let mut group = c.benchmark_group("background_process_latency");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    for backend in backends {
        for (mode, name) in [(DeliveryMode::Inline, "inline"), (DeliveryMode::Background, "background")] {
            let case = rt.block_on(Case::new(backend, mode));
            group.bench_function(BenchmarkId::new(backend.label(), name), |b| {
                b.iter_custom(|iters| rt.block_on(case.time_deposits(iters)))
            });
        }
    }
    group.finish();
}

/// The value below which `share` of `sorted` lies (nearest rank).
fn percentile<T: Copy + Default>(sorted: &[T], share: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((share * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Commit-to-reaction latencies of `commands` deposits sent one every `pace`.
async fn reaction_latency(backend: &Backend, commands: u64, pace: Duration) -> Latencies {
    let Opened { store, scratch: _scratch, .. } = backend.fresh_store().await;
    let domain = domain(store, DeliveryMode::Background);
    let wallets: Vec<Identifier<deposits::Wallet>> = (0..100).map(|_| Identifier::generate()).collect();
    let workers = domain.workers(WorkerConfig::default()).start().expect("on a runtime");
    for _ in 0..WARM_UP {
        deposit(&domain).await;
    }
    delivered(&workers, WARM_UP).await;
    deposits::record_reactions(true);
    let mut recorded = std::collections::HashMap::new();
    let mut ticks = tokio::time::interval(pace);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = Instant::now();
    for n in 0..commands {
        ticks.tick().await;
        let id = wallets[n as usize % wallets.len()].clone();
        let processed = domain.process(deposits::Deposit { id, amount: 1 }).await.expect("processed");
        let event = &processed.events[0];
        recorded.insert(event.id, (event.recorded_at, OffsetDateTime::now_utc()));
    }
    let sent = start.elapsed();
    drained(workers, WARM_UP + commands).await;
    let noted = deposits::reactions();
    deposits::record_reactions(false);
    // Per event: the later reaction, from the commit and from `process` returning.
    let mut per_event: std::collections::HashMap<Uuid, (u64, i64)> = std::collections::HashMap::new();
    let mut per_reaction: Vec<u64> = noted
        .iter()
        .map(|(event, at)| {
            let (committed, returned) = recorded[event];
            let micros = (*at - committed).whole_microseconds().max(0) as u64;
            let after_return = (*at - returned).whole_microseconds() as i64;
            let latest = per_event.entry(*event).or_insert((0, i64::MIN));
            *latest = (latest.0.max(micros), latest.1.max(after_return));
            micros
        })
        .collect();
    assert_eq!(per_reaction.len() as u64, 2 * commands, "each event reacted to twice, once per handler");
    per_reaction.sort_unstable();
    let mut both: Vec<u64> = per_event.values().map(|(micros, _)| *micros).collect();
    both.sort_unstable();
    let mut after_return: Vec<i64> = per_event.values().map(|(_, micros)| *micros).collect();
    after_return.sort_unstable();
    Latencies { per_reaction, both, after_return, sent }
}

/// Commit-to-reaction latencies in µs, sorted.
struct Latencies {
    /// Each reaction, from its event's commit.
    per_reaction: Vec<u64>,
    /// Each event, until both handlers reacted, from its commit.
    both: Vec<u64>,
    /// Each event, until both handlers reacted, from `process` returning (negative:
    /// both reacted before the caller resumed).
    after_return: Vec<i64>,
    /// How long sending took.
    sent: Duration,
}

fn print_latencies(rt: &tokio::runtime::Runtime, backends: &[Backend], commands: u64, pace: Duration) {
    eprintln!(
        "\ncommit-to-reaction latency, background mode: {commands} deposits over 100 wallets, one every {} µs",
        pace.as_micros()
    );
    eprintln!("(react: each reaction; both: until both handlers reacted; from commit, or from process() returning)");
    eprintln!(
        "{:<11} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>9}",
        "store",
        "p50 react",
        "p99 react",
        "p50 both",
        "p99 both",
        "max both",
        "p50 returned",
        "p99 returned",
        "sent in"
    );
    for backend in backends {
        let latencies = rt.block_on(reaction_latency(backend, commands, pace));
        let ms = |micros: f64| format!("{:.2} ms", micros / 1000.0);
        eprintln!(
            "{:<11} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>7.2} s",
            backend.label(),
            ms(percentile(&latencies.per_reaction, 0.5) as f64),
            ms(percentile(&latencies.per_reaction, 0.99) as f64),
            ms(percentile(&latencies.both, 0.5) as f64),
            ms(percentile(&latencies.both, 0.99) as f64),
            ms(latencies.both.last().copied().unwrap_or(0) as f64),
            ms(percentile(&latencies.after_return, 0.5) as f64),
            ms(percentile(&latencies.after_return, 0.99) as f64),
            latencies.sent.as_secs_f64()
        );
    }
}

/// `cargo bench` (which passes `--bench`) measures; `cargo test --benches` runs each
/// criterion case once and the latency measurement with a few commands.
/// `PROTEAN_BENCH_COMMANDS` and `PROTEAN_BENCH_PACE_US` change the latency run.
fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let rt = runtime();
    let backends = backends("background");
    let mut criterion = Criterion::default().configure_from_args();
    if std::env::var_os("PROTEAN_BENCH_SKIP_CRITERION").is_none() {
        process_latency(&mut criterion, &rt, &backends);
        print_backlog();
    }
    let commands = env("PROTEAN_BENCH_COMMANDS", if full { 2_000 } else { 50 });
    let pace = Duration::from_micros(env("PROTEAN_BENCH_PACE_US", if full { 2_500 } else { 1_000 }));
    print_latencies(&rt, &backends, commands, pace);
    criterion.final_summary();
}
