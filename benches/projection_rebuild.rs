//! Projections (docs/benchmarks.md §7a): how fast `Domain::rebuild` replays a large event log into a
//! fresh copy of a projection, on SQLite and on PostgreSQL.
//!
//! Each store gets a fresh database (a SQLite file in a temporary directory; a new
//! database on the server of `PROTEAN_POSTGRES_URL`, with the `postgres` feature) filled
//! with `PROTEAN_BENCH_REBUILD_EVENTS` events (default 1,000,000 under `cargo bench`,
//! 2,000 otherwise), written straight through `Store::commit` in batches (1,000 events a
//! transaction), not by commands: 100 events per account (so 10,000 accounts for a
//! million), of 8 owners, in rounds of one commit of 5 events per account (4 `Deposited`,
//! 1 `Withdrawn`), so the log interleaves the accounts as commands over time would. The
//! events are written delivered, as a domain whose workers kept up leaves them. On
//! PostgreSQL a `VACUUM ANALYZE` and a `CHECKPOINT` follow the fill (outside any timing),
//! so that the rebuilds measure a database at rest, not the aftermath of a bulk load
//! (`PROTEAN_BENCH_REBUILD_SETTLE=0` leaves them out).
//!
//! Then, alternating the stores (SQLite, PostgreSQL, SQLite, ...) over
//! `PROTEAN_BENCH_REBUILD_ROUNDS` rounds (default 3 under `cargo bench`, 1 otherwise),
//! each round rebuilds, on the same filled database, the two projections of
//! `support/ledger.rs` one after the other:
//!
//! * `AccountBalance`: a row per account (10,000 rows for a million events), each
//!   changed by every event of its account;
//! * `OwnerTotal`: a row per owner (8 rows), each changed by an eighth of all events.
//!
//! and then, for reference, reads the whole log as those rebuilds do
//! (`Store::log_after`, the same batches and event types) without applying it: the
//! floor under a rebuild's time.
//!
//! A rebuild is `domain.rebuild::<V>().batch(B).run()` (`B` from
//! `PROTEAN_BENCH_REBUILD_BATCH`, default 1,000, the rebuild's own default), timed from
//! the call to its return; every run is a full rebuild into a new copy (the previous
//! run's copy serves until the switch, then is dropped). After each run, outside the
//! timing, the bench reads every row back through `domain.query` and checks the count
//! and the sums. It prints every run (with the CPU time this process used meanwhile,
//! every thread: on SQLite that includes the store's own threads, on PostgreSQL not the
//! server's; on PostgreSQL also the WAL the server wrote meanwhile) and, per store and projection, the median rate in events per second and
//! the spread (min–max).
//!
//! `cargo bench --bench projection_rebuild` (SQLite);
//! `PROTEAN_POSTGRES_URL=... cargo bench --all-features --bench projection_rebuild`
//! (both). `cargo test --bench projection_rebuild` runs 2,000 events once per store.

#[path = "support/backends.rs"]
#[allow(dead_code)]
mod backends;
#[path = "support/fill.rs"]
mod fill;
#[path = "support/ledger.rs"]
mod ledger;

use std::time::{Duration, Instant};

use ledger::accounts::{Deposited, Withdrawn};
use ledger::views::balances::AccountBalance;
use ledger::views::owners::OwnerTotal;
use protean::prelude::*;
use protean::runtime::{DeliveryMode, Projection};

use backends::{backends, runtime, Backend, Opened, Scratch};
use fill::{fill, Expected, OWNERS};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A filled database and the domain over it.
struct Filled {
    backend: Backend,
    domain: Domain,
    scratch: Option<Scratch>,
    /// The PostgreSQL database: its URL and name (dropped at the end).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    database: Option<(String, String)>,
    /// A connection of its own to the PostgreSQL database, to read the WAL position.
    #[cfg(feature = "postgres")]
    pg: Option<sqlx::PgPool>,
    expected: Expected,
}

impl Filled {
    async fn new(backend: &Backend, events: u64) -> Self {
        let Opened { store, scratch, database } = backend.fresh_store().await;
        let started = Instant::now();
        let expected = fill(store.as_ref(), events).await;
        let took = started.elapsed();
        eprintln!(
            "  {}: filled with {} events ({} accounts) in {:.1} s ({:.0} events/s)",
            backend.label(),
            expected.events,
            expected.accounts,
            took.as_secs_f64(),
            expected.events as f64 / took.as_secs_f64()
        );
        #[cfg(feature = "postgres")]
        let pg = match &database {
            Some((url, _)) => Some(postgres::settled(url, env("PROTEAN_BENCH_REBUILD_SETTLE", 1) != 0).await),
            None => None,
        };
        let domain = Domain::builder()
            .module(module_path!().to_string() + "::ledger")
            .shared_store(store)
            .delivery(DeliveryMode::Inline)
            .build()
            .expect("the ledger model is valid");
        Filled {
            backend: backend.clone(),
            domain,
            scratch,
            database,
            #[cfg(feature = "postgres")]
            pg,
            expected,
        }
    }

    /// The server's WAL position in bytes (PostgreSQL only).
    async fn wal(&self) -> Option<u64> {
        #[cfg(feature = "postgres")]
        if let Some(pool) = &self.pg {
            return Some(postgres::wal(pool).await);
        }
        None
    }

    /// The database's size on disk, in MB.
    async fn size_mb(&self) -> f64 {
        let bytes = match (&self.scratch, &self.database) {
            (Some(scratch), _) => scratch.size(),
            #[cfg(feature = "postgres")]
            (None, Some((url, _))) => postgres::size(url).await,
            _ => 0,
        };
        bytes as f64 / 1e6
    }
}

/// One timed run.
struct Run {
    elapsed: Duration,
    /// CPU time this process used meanwhile (user and system, every thread), in seconds.
    cpu: f64,
    /// Rows read back afterwards.
    rows: usize,
    /// WAL the PostgreSQL server wrote meanwhile, in bytes.
    wal: Option<u64>,
}

/// CPU time this process has used so far, in seconds (`utime` + `stime` of
/// `/proc/self/stat`, in clock ticks of 1/100 s, which Linux reports them in).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// Rebuilds `V` once, timed; checks its rows afterwards.
async fn rebuild<V: Projection>(filled: &Filled, batch: usize, check: fn(&[V], &Expected)) -> Run {
    let wal = filled.wal().await;
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let report = filled.domain.rebuild::<V>().batch(batch).run().await.expect("rebuilt").expect("no other builder");
    let (elapsed, cpu) = (started.elapsed(), cpu_seconds() - cpu);
    let wal = filled.wal().await.zip(wal).map(|(to, from)| to - from);
    assert_eq!(report.events, filled.expected.events, "every event applied once: {report:?}");
    let mut rows: Vec<V> = Vec::new();
    loop {
        let page = filled.domain.query::<V>().limit(1_000).offset(rows.len()).fetch().await.expect("read back");
        let last = page.len() < 1_000;
        rows.extend(page);
        if last {
            break;
        }
    }
    check(&rows, &filled.expected);
    Run { elapsed, cpu, rows: rows.len(), wal }
}

/// Reads the whole log as a rebuild of these projections does (`Store::log_after`, the
/// same batches and event types), and nothing else: the floor under a rebuild's time.
async fn read_log(filled: &Filled, batch: usize) -> Run {
    let store = filled.domain.store();
    let types = vec![Deposited::TYPE_NAME.to_owned(), Withdrawn::TYPE_NAME.to_owned()];
    let wal = filled.wal().await;
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let (mut position, mut read) = (0, 0u64);
    loop {
        let logged = store.log_after(position, batch, &types).await.expect("read");
        let Some(last) = logged.last() else { break };
        position = last.position;
        read += logged.len() as u64;
        std::hint::black_box(&logged);
    }
    let (elapsed, cpu) = (started.elapsed(), cpu_seconds() - cpu);
    let wal = filled.wal().await.zip(wal).map(|(to, from)| to - from);
    assert_eq!(read, filled.expected.events, "the whole log read");
    Run { elapsed, cpu, rows: 0, wal }
}

fn check_balances(rows: &[AccountBalance], expected: &Expected) {
    assert_eq!(rows.len() as u64, expected.accounts, "a row per account");
    assert_eq!(rows.iter().map(|r| r.balance).sum::<i64>(), expected.net);
    let events: u64 = rows.iter().map(|r| u64::from(r.deposits + r.withdrawals)).sum();
    assert_eq!(events, expected.events);
}

fn check_totals(rows: &[OwnerTotal], expected: &Expected) {
    assert_eq!(rows.len() as u64, expected.accounts.min(OWNERS as u64), "a row per owner");
    assert_eq!(rows.iter().map(|r| r.total).sum::<i64>(), expected.net);
    assert_eq!(rows.iter().map(|r| r.events).sum::<u64>(), expected.events);
}

#[cfg(feature = "postgres")]
mod postgres {
    /// A connection to the freshly filled database at `url`, once it is settled (unless
    /// `settle` is false): a `VACUUM ANALYZE` and a `CHECKPOINT`, so that the rebuilds
    /// measure a database at rest (right after the bulk load they were slower; see
    /// docs/benchmarks.md, section 7a).
    pub async fn settled(url: &str, settle: bool) -> sqlx::PgPool {
        let pool = sqlx::PgPool::connect(url).await.expect("the database answers");
        let statements: &[&str] = if settle { &["VACUUM ANALYZE", "CHECKPOINT"] } else { &[] };
        for statement in statements {
            if let Err(error) = sqlx::query(statement).execute(&pool).await {
                eprintln!("  (no {statement} after the fill: {error})");
            }
        }
        pool
    }

    /// The server's current WAL position, in bytes.
    pub async fn wal(pool: &sqlx::PgPool) -> u64 {
        let lsn: i64 = sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
            .fetch_one(pool)
            .await
            .expect("the WAL position");
        u64::try_from(lsn).unwrap_or(0)
    }

    /// Drops the database `name`.
    pub async fn drop_database(url: &str, name: &str) {
        let admin = sqlx::PgPool::connect(url).await.expect("PROTEAN_POSTGRES_URL answers");
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&admin).await.expect("dropped");
        admin.close().await;
    }

    /// The size of the database at `url`, in bytes.
    pub async fn size(url: &str) -> u64 {
        let pool = sqlx::PgPool::connect(url).await.expect("the database answers");
        let size: i64 =
            sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(&pool).await.unwrap_or(0);
        pool.close().await;
        u64::try_from(size).unwrap_or(0)
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(|_| "unknown".into(), |l| l.trim().to_owned())
}

/// The rates of one store and projection, and its row count.
struct Series {
    store: &'static str,
    projection: &'static str,
    rates: Vec<f64>,
    /// This process's CPU time per second of each run.
    cpu: Vec<f64>,
    rows: usize,
}

fn record(series: &mut Vec<Series>, store: &'static str, projection: &'static str, events: u64, run: Run) {
    let seconds = run.elapsed.as_secs_f64();
    let rate = events as f64 / seconds;
    let wal = run.wal.map_or(String::new(), |bytes| format!(", server WAL {:.0} MB", bytes as f64 / 1e6));
    eprintln!(
        "    {projection:<15} {seconds:>7.2} s  {rate:>9.0} events/s  {:>6} rows  this process's CPU {:>6.2} s ({:.0}% of one core){wal}",
        run.rows,
        run.cpu,
        100.0 * run.cpu / seconds
    );
    match series.iter_mut().find(|s| s.store == store && s.projection == projection) {
        Some(s) => {
            s.rates.push(rate);
            s.cpu.push(run.cpu / seconds);
        }
        None => {
            series.push(Series { store, projection, rates: vec![rate], cpu: vec![run.cpu / seconds], rows: run.rows })
        }
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let events = env("PROTEAN_BENCH_REBUILD_EVENTS", if full { 1_000_000 } else { 2_000 });
    let rounds = env("PROTEAN_BENCH_REBUILD_ROUNDS", if full { 3 } else { 1 });
    let batch = env("PROTEAN_BENCH_REBUILD_BATCH", 1_000) as usize;
    let rt = runtime();
    let backends = backends("projection_rebuild");
    eprintln!(
        "projection_rebuild: {events} events, batches of {batch}, {rounds} round(s); load average {}",
        load_average()
    );
    let filled: Vec<Filled> = backends.iter().map(|b| rt.block_on(Filled::new(b, events))).collect();
    for f in &filled {
        eprintln!("  {}: {:.0} MB on disk after the fill", f.backend.label(), rt.block_on(f.size_mb()));
    }
    let mut series: Vec<Series> = Vec::new();
    for round in 1..=rounds {
        for f in &filled {
            let store = f.backend.label();
            eprintln!("  round {round} {store} (load average {})", load_average());
            let n = f.expected.events;
            record(&mut series, store, "AccountBalance", n, rt.block_on(rebuild(f, batch, check_balances)));
            record(&mut series, store, "OwnerTotal", n, rt.block_on(rebuild(f, batch, check_totals)));
            record(&mut series, store, "(log read only)", n, rt.block_on(read_log(f, batch)));
        }
    }
    eprintln!("\nstore       projection       rows   median events/s   spread (min–max)   runs   process CPU (median)");
    for s in &series {
        let (lo, hi) = s.rates.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        eprintln!(
            "{:<11} {:<15} {:>6}   {:>15.0}   {lo:>7.0} – {hi:<7.0}   {:>4}   {:>5.0}% of one core",
            s.store,
            s.projection,
            s.rows,
            median(&s.rates),
            s.rates.len(),
            100.0 * median(&s.cpu)
        );
    }
    for f in &filled {
        eprintln!("  {}: {:.0} MB on disk at the end", f.backend.label(), rt.block_on(f.size_mb()));
    }
    eprintln!("load average at the end: {}", load_average());
    #[cfg(feature = "postgres")]
    for f in filled {
        if let (Backend::Postgres(url), Some((_, name))) = (&f.backend, &f.database) {
            let (url, name) = (url.clone(), name.clone());
            drop(f);
            rt.block_on(postgres::drop_database(&url, &name));
        }
    }
}
