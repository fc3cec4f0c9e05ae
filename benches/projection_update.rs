//! Projections (docs/benchmarks.md §7b): what an async projector costs per event, beside the same row
//! update written by hand with the store's read-model calls, in one criterion group
//! (`projection_update`), on SQLite (and PostgreSQL with the `postgres` feature and
//! `PROTEAN_POSTGRES_URL`).
//!
//! One iteration processes one `Deposit` command (`domain.process`, inline delivery) into
//! one of 100 accounts, in turn; the command's unit of work loads the account, changes it
//! and commits it with its `Deposited`. Then, per case:
//!
//! * **async projector**: the domain has the `AccountBalances` projector, the event's only
//!   reaction, so `process` also delivers `Deposited` to it before returning: the runtime
//!   reads the account's `AccountBalance` row, the projector `upsert`s it, and the row
//!   change commits with the handled record and the event's delivery mark in one
//!   transaction (the row's version checked; the event recorded as handled, so it has one
//!   effect however often it is delivered).
//! * **by hand**: the domain has no projector (the event is written delivered with the
//!   command's commit); after `process` returns, the iteration reads the account's row with
//!   `store.read_model`, parses it, changes it, serializes it and writes it back with
//!   `store.put_read_model`, in its own transaction: no version check (a concurrent update
//!   would be lost) and no exactly-once (a retry after a crash applies the event twice).
//! * **command alone**: the same command in the domain without the projector, and
//!   nothing after it: the share of both cases that is not the update.
//!
//! Then, on the same databases, the cases run again in fine alternation, outside
//! criterion: `PROTEAN_BENCH_ROUNDS` rounds (default 20) of `PROTEAN_BENCH_PER_ROUND`
//! iterations of each case in turn (default 500 on SQLite, 100 on PostgreSQL; the first
//! case rotating), so that all three share whatever else the machine does at the time; a
//! table gives, per case, the median time per iteration over the rounds, and the median
//! of the per-round ratios (projector ÷ by hand, for the whole iteration and for the
//! update alone, that is minus the command alone), with the 25th–75th percentiles.
//!
//! After the group, a line per SQLite case says how many bytes the process wrote to files
//! per iteration during its samples (`wchar` of `/proc/self/io`: mostly the pages of
//! the write-ahead log).
//!
//! Each case gets a fresh database (a SQLite file in a temporary directory; a new
//! PostgreSQL database), warmed up with one deposit into each account (so every row
//! exists, and every iteration updates one) before its first sample; its samples follow
//! one another on it.
//!
//! `cargo bench --bench projection_update -- --warm-up-time 1 --measurement-time 5`;
//! with `--all-features` and `PROTEAN_POSTGRES_URL`, PostgreSQL too.
//! `cargo test --bench projection_update` runs each case once, and one interleaved round
//! of two iterations per case.

#[path = "support/backends.rs"]
#[allow(dead_code)]
mod backends;
#[path = "support/ledger.rs"]
mod ledger;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use ledger::accounts::{Account, Deposit};
use ledger::views::balances::AccountBalance;
use protean::prelude::*;
use protean::runtime::DeliveryMode;
use protean::store::Store;

use backends::{backends, runtime, Backend, Opened, Scratch};

/// Accounts the iterations deposit into, in turn.
const ACCOUNTS: usize = 100;
/// Where the hand-written update keeps its rows (`Store::read_model`).
const BY_HAND: &str = "AccountBalanceByHand";

/// What follows the command in an iteration.
#[derive(Clone, Copy, PartialEq)]
enum Way {
    /// The async projector, delivered inside `process`.
    Projector,
    /// `read_model`, serde, `put_read_model`, after `process`.
    ByHand,
    /// Nothing: the command alone.
    CommandAlone,
}

impl Way {
    fn label(self) -> &'static str {
        match self {
            Way::Projector => "async projector",
            Way::ByHand => "by hand",
            Way::CommandAlone => "command alone",
        }
    }
}

/// A case's domain on its fresh database, warmed up.
struct Case {
    way: Way,
    domain: Domain,
    store: Arc<dyn Store>,
    accounts: Vec<(Identifier<Account>, String)>,
    next: AtomicUsize,
    _scratch: Option<Scratch>,
}

impl Case {
    async fn new(backend: &Backend, way: Way) -> Self {
        let Opened { store, scratch, .. } = backend.fresh_store().await;
        let here = module_path!().to_string();
        let mut builder = Domain::builder().module(here.clone() + "::ledger::accounts");
        if way == Way::Projector {
            builder = builder.module(here + "::ledger::views::balances");
        }
        let domain = builder
            .shared_store(Arc::clone(&store))
            .delivery(DeliveryMode::Inline)
            .build()
            .expect("the ledger model is valid");
        let accounts = (0..ACCOUNTS).map(|i| (Identifier::generate(), format!("owner-{}", i % 8))).collect();
        let case = Case { way, domain, store, accounts, next: AtomicUsize::new(0), _scratch: scratch };
        for _ in 0..ACCOUNTS {
            case.once().await;
        }
        case.check().await;
        case
    }

    /// One iteration: the next account's deposit, and its update.
    async fn once(&self) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let (id, owner) = &self.accounts[n % ACCOUNTS];
        let command = Deposit { id: id.clone(), owner: owner.clone(), cents: 1 };
        let processed = self.domain.process(command).await.expect("processed");
        assert!(processed.failures.is_empty(), "the projector failed: {:?}", processed.failures);
        let _ = std::hint::black_box(processed);
        if self.way == Way::ByHand {
            self.by_hand(id, owner).await;
        }
    }

    /// The update written by hand: read, parse, change, serialize, write.
    async fn by_hand(&self, id: &Identifier<Account>, owner: &str) {
        let key = id.to_string();
        let json = self.store.read_model(BY_HAND, &key).await.expect("read");
        let mut row = match json {
            Some(json) => serde_json::from_str::<AccountBalance>(&json).expect("a row"),
            None => AccountBalance::opened(id, owner),
        };
        row.balance += 1;
        row.deposits += 1;
        let json = serde_json::to_string(&row).expect("serialized");
        self.store.put_read_model(BY_HAND, &key, json).await.expect("written");
    }

    /// Every account's row counts the iterations that deposited into it: no update lost,
    /// none applied twice.
    async fn check(&self) {
        let done = self.next.load(Ordering::Relaxed);
        for (i, (id, _)) in self.accounts.iter().enumerate() {
            let deposits = ((done + ACCOUNTS - 1 - i) / ACCOUNTS) as u32;
            let row: Option<AccountBalance> = match self.way {
                Way::Projector => self.domain.projection::<AccountBalance>(id).await.expect("read"),
                Way::ByHand => self
                    .store
                    .read_model(BY_HAND, &id.to_string())
                    .await
                    .expect("read")
                    .map(|json| serde_json::from_str(&json).expect("a row")),
                Way::CommandAlone => continue,
            };
            assert_eq!(row.map(|r| r.deposits), Some(deposits), "{}", self.way.label());
        }
    }

    /// One sample: `iters` iterations back to back in one task.
    async fn time(&self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.once().await;
        }
        start.elapsed()
    }
}

/// Bytes this process has passed to `write` so far (`wchar` of `/proc/self/io`): on
/// SQLite, mostly the write-ahead log, which takes every page a transaction changed.
fn bytes_written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines().find_map(|line| line.strip_prefix("wchar: ")).and_then(|n| n.trim().parse().ok())
}

/// What each SQLite case wrote, printed after the group.
static WRITTEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The three cases of one store, measured by criterion one after the other; kept for
/// the interleaved rounds.
fn update(c: &mut Criterion, rt: &tokio::runtime::Runtime, backends: &[Backend]) -> Vec<(Backend, Vec<Case>)> {
    let mut group = c.benchmark_group("projection_update");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    let mut kept = Vec::new();
    for backend in backends {
        let mut cases = Vec::new();
        for way in [Way::Projector, Way::ByHand, Way::CommandAlone] {
            let case = rt.block_on(Case::new(backend, way));
            let (before, written_before) = (case.next.load(Ordering::Relaxed), bytes_written());
            group.bench_function(BenchmarkId::new(backend.label(), way.label()), |b| {
                b.iter_custom(|iters| rt.block_on(case.time(iters)))
            });
            let iterations = case.next.load(Ordering::Relaxed) - before;
            if let (Backend::Sqlite, Some(from), Some(to)) = (backend, written_before, bytes_written()) {
                WRITTEN.lock().unwrap().push(format!(
                    "SQLite, {}: {iterations} iterations, {:.1} kB written to files per iteration",
                    way.label(),
                    (to - from) as f64 / iterations.max(1) as f64 / 1e3
                ));
            }
            rt.block_on(case.check());
            cases.push(case);
        }
        kept.push((backend.clone(), cases));
    }
    group.finish();
    kept
}

/// The value below which `share` of `sorted` lies (nearest rank).
fn percentile(sorted: &[f64], share: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((share * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// The cases of each store in fine alternation: `rounds` rounds, each running
/// `per_round` iterations of every case in turn (the first case rotating), so that the
/// cases share whatever else the machine does; per case, the time per iteration of each
/// round, and per round the ratios. Printed as a table.
fn interleaved(
    rt: &tokio::runtime::Runtime,
    kept: &[(Backend, Vec<Case>)],
    rounds: usize,
    per_round: &dyn Fn(&Backend) -> u64,
) {
    eprintln!("\ninterleaved rounds: µs per iteration, median of the rounds (25th–75th percentile)");
    for (backend, cases) in kept {
        let per_round = per_round(backend);
        let mut micros: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); cases.len()];
        for round in 0..rounds {
            for k in 0..cases.len() {
                let i = (round + k) % cases.len();
                let elapsed = rt.block_on(cases[i].time(per_round));
                micros[i].push(elapsed.as_secs_f64() * 1e6 / per_round as f64);
            }
        }
        for case in cases {
            rt.block_on(case.check());
        }
        let per_case: Vec<Vec<f64>> = micros.iter().cloned().map(sorted).collect();
        let line = |label: &str, values: &[f64], unit: &str| {
            let digits = if unit == "×" { 2 } else { 1 };
            eprintln!(
                "{:<11} {label:<36} {:>9.digits$}{unit} ({:.digits$} – {:.digits$})",
                backend.label(),
                percentile(values, 0.5),
                percentile(values, 0.25),
                percentile(values, 0.75)
            );
        };
        for (case, values) in cases.iter().zip(&per_case) {
            line(case.way.label(), values, " µs");
        }
        let ratio = |a: usize, b: usize| sorted((0..rounds).map(|r| micros[a][r] / micros[b][r]).collect());
        let update = |a: usize| sorted((0..rounds).map(|r| micros[a][r] - micros[2][r]).collect());
        line("async projector ÷ by hand", &ratio(0, 1), "×");
        line("projector's update (minus command)", &update(0), " µs");
        line("hand-written update (minus command)", &update(1), " µs");
        let update_ratio =
            sorted((0..rounds).map(|r| (micros[0][r] - micros[2][r]) / (micros[1][r] - micros[2][r])).collect());
        line("projector's ÷ hand-written update", &update_ratio, "×");
        eprintln!("({rounds} rounds of {per_round} iterations per case)");
    }
}

/// `cargo bench` measures; `cargo test --benches` runs each case once, and one
/// interleaved round of two iterations per case.
/// `PROTEAN_BENCH_ROUNDS` and `PROTEAN_BENCH_PER_ROUND` change the interleaved rounds.
fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let rt = runtime();
    let backends = backends("projection_update");
    let mut criterion = Criterion::default().configure_from_args();
    let kept = update(&mut criterion, &rt, &backends);
    for line in WRITTEN.lock().unwrap().iter() {
        eprintln!("{line}");
    }
    let rounds = env("PROTEAN_BENCH_ROUNDS").unwrap_or(if full { 20 } else { 1 }) as usize;
    let per_round = |backend: &Backend| {
        env("PROTEAN_BENCH_PER_ROUND").unwrap_or(match (full, backend) {
            (false, _) => 2,
            (true, Backend::Sqlite) => 500,
            (true, Backend::Postgres(_)) => 100,
        })
    };
    interleaved(&rt, &kept, rounds, &per_round);
    criterion.final_summary();
}
