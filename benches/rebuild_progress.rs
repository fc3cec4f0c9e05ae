//! What the CLI's progress reporting costs a rebuild (docs/benchmarks.md §11): one
//! million events on SQLite, `OwnerTotal` rebuilt by `Domain::rebuild_by_name(..).run()`
//! (no progress reported) and by `ops projections rebuild OwnerTotal` through
//! `protean::cli::Ops` (a progress report after every batch: a line on stderr when
//! stderr is not a terminal, a bar when it is), the two sides alternated.
//!
//! The database is filled as in `projection_rebuild.rs` (§7a): events written straight
//! through `Records::commit`, 1,000 a transaction, 100 per account of 8 owners, written
//! delivered. `OwnerTotal` (8 rows) is the cheaper of the two projections there, so a
//! fixed cost per batch shows most in it. Every run is a full rebuild into a new copy,
//! timed from the call to its return; the rows are checked after each, outside the
//! timing.
//!
//! `cargo bench --all-features --bench rebuild_progress 2> progress.log` (stderr to a
//! file: the progress lines; to a terminal: the bar). `PROTEAN_BENCH_PROGRESS_EVENTS`
//! (default 1,000,000 under `cargo bench`, 2,000 otherwise) and
//! `PROTEAN_BENCH_PROGRESS_ROUNDS` (default 5, 1 otherwise: each round runs both
//! sides, their order alternating from round to round). `cargo test --benches` runs it
//! once with 2,000 events.

#[path = "support/backends.rs"]
#[allow(dead_code)]
mod backends;
#[path = "support/fill.rs"]
mod fill;
#[path = "support/ledger.rs"]
#[allow(dead_code)]
mod ledger;

use std::time::{Duration, Instant};

use clap::Parser;
use ledger::views::owners::OwnerTotal;
use protean::cli::{Exit, Ops};
use protean::prelude::*;
use protean::runtime::DeliveryMode;

use backends::{runtime, Backend, Opened};
use fill::{fill, OWNERS};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A binary's command line with the operations commands under `ops`.
#[derive(Parser)]
enum Cli {
    Ops(Ops),
}

/// One side of the comparison.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Plain,
    Cli,
}

impl Side {
    fn label(self) -> &'static str {
        match self {
            Side::Plain => "rebuild_by_name(..).run()",
            Side::Cli => "ops projections rebuild",
        }
    }
}

/// One timed rebuild of `OwnerTotal`; the rows are checked afterwards.
async fn rebuild(domain: &Domain, side: Side, net: i64) -> Duration {
    let started = Instant::now();
    match side {
        Side::Plain => {
            domain.rebuild_by_name("OwnerTotal").expect("a projection").run().await.expect("rebuilt");
        }
        Side::Cli => {
            let Cli::Ops(ops) = Cli::parse_from(["bench", "ops", "projections", "rebuild", "OwnerTotal"]);
            let mut out = Vec::new();
            let exit = ops.run_until(domain, &mut out, std::future::pending()).await;
            assert_eq!(exit, Exit::Ok, "{}", String::from_utf8_lossy(&out));
        }
    }
    let elapsed = started.elapsed();
    let rows = domain.query::<OwnerTotal>().limit(100).fetch().await.expect("the rows");
    assert_eq!(rows.len(), OWNERS, "a row per owner");
    assert_eq!(rows.iter().map(|r| r.total).sum::<i64>(), net, "the totals add up");
    elapsed
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let events = env("PROTEAN_BENCH_PROGRESS_EVENTS", if full { 1_000_000 } else { 2_000 });
    let rounds = env("PROTEAN_BENCH_PROGRESS_ROUNDS", if full { 5 } else { 1 });
    let rt = runtime();
    let Opened { store, scratch, .. } = rt.block_on(Backend::Sqlite.fresh_store());
    let started = Instant::now();
    let filled = rt.block_on(fill(store.as_ref(), events));
    let (events, net) = (filled.events, filled.net);
    eprintln!("rebuild_progress: SQLite filled with {events} events in {:.1} s", started.elapsed().as_secs_f64());
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::ledger")
        .shared_store(store)
        .delivery(DeliveryMode::Inline)
        .build()
        .expect("the ledger model is valid");
    let mut rates: Vec<(Side, f64)> = Vec::new();
    for round in 0..rounds {
        let order = if round % 2 == 0 { [Side::Plain, Side::Cli] } else { [Side::Cli, Side::Plain] };
        for side in order {
            let took = rt.block_on(rebuild(&domain, side, net));
            let rate = events as f64 / took.as_secs_f64();
            eprintln!(
                "  round {} {:<27} {:>6.2} s {:>9.0} events/s",
                round + 1,
                side.label(),
                took.as_secs_f64(),
                rate
            );
            rates.push((side, rate));
        }
    }
    eprintln!("\nside                         median events/s   spread (min–max)   runs");
    for side in [Side::Plain, Side::Cli] {
        let mut mine: Vec<f64> = rates.iter().filter(|(s, _)| *s == side).map(|(_, r)| *r).collect();
        mine.sort_by(f64::total_cmp);
        let median = mine[mine.len() / 2];
        let (lo, hi) = (mine[0], mine[mine.len() - 1]);
        eprintln!("{:<28} {median:>15.0}   {lo:>7.0} – {hi:<7.0}   {:>4}", side.label(), mine.len());
    }
    rt.block_on(domain.close()).expect("closes");
    drop(scratch);
}
