//! Benchmark 4 of docs/benchmarks.md: the command round trip on PostgreSQL with 8 concurrent
//! clients, protean's `PostgresStore` (group commit on, its default) beside cqrs-es 0.5
//! with `postgres-es` doing the equivalent work, on the same server in the same run (each
//! on a fresh database per sample, both with a pool of 8 connections).
//!
//! Then a sweep over 1, 2, 4, 8, 16, 32 and 64 clients, of three sides: protean with
//! group commit, protean with it off (`PostgresOptions::group_commit(false)`: a
//! statement and a transaction per commit), and cqrs-es + postgres-es. For each client
//! count the sides alternate (A B C, then C B A, ...) over `PROTEAN_BENCH_SWEEP_ROUNDS`
//! rounds (default 3), each sample `PROTEAN_BENCH_SWEEP_COMMANDS` commands (default 1,000)
//! on a fresh database, dropped afterwards. Both stores get a pool of `max(clients, 8)`
//! connections. It prints every sample, the medians and spreads (min–max); with
//! `PROTEAN_BENCH_CSV=path` it writes the medians and spreads there, and with
//! `PROTEAN_BENCH_SVG=path` draws the chart (round trips per second against clients, a
//! log2 axis). `PROTEAN_BENCH_SWEEP=0` skips the sweep; `PROTEAN_BENCH_SWEEP=only` runs
//! only the sweep; `PROTEAN_BENCH_SWEEP_CLIENTS=8,32` chooses the client counts, and
//! `PROTEAN_BENCH_GROUPS_IN_FLIGHT=n` protean's groups in flight (default 2), and
//! `PROTEAN_BENCH_SIDES=protean_grouped,cqrs_es` (the CSV's keys) which sides run (all by
//! default; a ratio without the cqrs-es side is NaN).
//!
//! A round trip is `round_trip.rs`'s: place an order (one line), commit, deliver
//! `OrderPlaced` to the inventory reaction, which loads, changes and saves that SKU's
//! inventory. Every command uses its own SKU, stocked outside the timing. Needs
//! `PROTEAN_POSTGRES_URL`; without it the bench says so and measures nothing.
//!
//! `cargo bench --features postgres --bench postgres_round_trip`; `cargo test --features postgres --bench
//! postgres_round_trip` runs it once (and the sweep with 1 and 8 clients, one round of
//! 32 commands).

#[path = "support/clients.rs"]
mod clients;
#[path = "peer/cqrs_es.rs"]
#[allow(dead_code, missing_docs)]
mod cqrs_es_peer;
#[path = "peer/postgres_es.rs"]
#[allow(dead_code, missing_docs)]
mod postgres_es_peer;
#[path = "support/shop.rs"]
mod shop;

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, Criterion, Throughput};
use protean::prelude::*;
use protean::store::PostgresStore;

const CLIENTS: u64 = 8;

/// The least pool size of either side in the sweep.
const POOL_FLOOR: u64 = 8;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime")
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A new database on the server, so every sample starts empty: (its URL, its name).
async fn fresh_database(url: &str) -> (String, String) {
    let admin = sqlx::PgPool::connect(url).await.expect("PROTEAN_POSTGRES_URL answers");
    let name = format!("bench_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("a database");
    admin.close().await;
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    (format!("{base}/{name}"), name)
}

/// Drops a sample's database (its connections with it).
async fn drop_database(url: &str, name: &str) {
    let admin = sqlx::PgPool::connect(url).await.expect("PROTEAN_POSTGRES_URL answers");
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&admin).await.expect("dropped");
    admin.close().await;
}

/// A side of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// protean's `PostgresStore`, group commit on (its default).
    Grouped,
    /// protean's `PostgresStore` with `group_commit(false)`.
    Ungrouped,
    /// cqrs-es 0.5 with postgres-es.
    CqrsEs,
}

impl Side {
    const ALL: [Side; 3] = [Side::Grouped, Side::Ungrouped, Side::CqrsEs];

    fn label(self) -> &'static str {
        match self {
            Side::Grouped => "protean (group commit)",
            Side::Ungrouped => "protean (group commit off)",
            Side::CqrsEs => "cqrs-es 0.5 + postgres-es",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Side::Grouped => "protean_grouped",
            Side::Ungrouped => "protean_ungrouped",
            Side::CqrsEs => "cqrs_es",
        }
    }

    fn color(self) -> &'static str {
        match self {
            Side::Grouped => "#4c78a8",
            Side::Ungrouped => "#72b7b2",
            Side::CqrsEs => "#e45756",
        }
    }
}

/// One protean sample on the fresh database `db`: stock `iters` SKUs, then time `iters`
/// orders from `n_clients` clients; the store's pool has `pool` connections.
async fn protean_sample(db: &str, n_clients: u64, pool: u32, iters: u64, grouped: bool) -> Duration {
    let mut options = PostgresStore::options().max_connections(pool).group_commit(grouped);
    if let Ok(groups) = std::env::var("PROTEAN_BENCH_GROUPS_IN_FLIGHT") {
        options = options.groups_in_flight(groups.parse().expect("a number of groups"));
    }
    let store = options.connect(db).await.expect("connects");
    let domain =
        Domain::builder().module(module_path!().to_string() + "::shop").store(store).build().expect("a valid model");
    clients::protean_round_trips(&domain, n_clients, iters).await
}

/// One cqrs-es sample, the same work as [`protean_sample`].
async fn cqrs_es_sample(db: &str, n_clients: u64, pool: u32, iters: u64) -> Duration {
    let peer = Arc::new(postgres_es_peer::PostgresEsPeer::connect(db, pool).await);
    clients::clients(n_clients, iters, {
        let peer = Arc::clone(&peer);
        move |n| {
            let peer = Arc::clone(&peer);
            async move { peer.stock(&format!("SKU-{n}"), 10).await }
        }
    })
    .await;
    let elapsed = clients::clients(n_clients, iters, {
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
    peer.pool().close().await;
    elapsed
}

/// One sample of `side` on a fresh database, dropped afterwards.
async fn sample(url: &str, side: Side, n_clients: u64, iters: u64) -> Duration {
    let pool = u32::try_from(n_clients.max(POOL_FLOOR)).expect("a pool size");
    let (db, name) = fresh_database(url).await;
    let elapsed = match side {
        Side::Grouped => protean_sample(&db, n_clients, pool, iters, true).await,
        Side::Ungrouped => protean_sample(&db, n_clients, pool, iters, false).await,
        Side::CqrsEs => cqrs_es_sample(&db, n_clients, pool, iters).await,
    };
    drop_database(url, &name).await;
    elapsed
}

fn postgres_round_trip(c: &mut Criterion) {
    let Ok(url) = std::env::var("PROTEAN_POSTGRES_URL") else {
        eprintln!("postgres_round_trip: set PROTEAN_POSTGRES_URL to run it; nothing measured");
        return;
    };
    if std::env::var("PROTEAN_BENCH_SWEEP").as_deref() == Ok("only") {
        return;
    }
    let rt = runtime();
    let mut group = c.benchmark_group("postgres_round_trip_8_clients");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for side in [Side::Grouped, Side::CqrsEs] {
        let name = match side {
            Side::CqrsEs => "cqrs-es 0.5 postgres-es",
            _ => "protean PostgresStore",
        };
        group.bench_function(name, |b| b.iter_custom(|iters| rt.block_on(sample(&url, side, CLIENTS, iters))));
    }
    group.finish();
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn spread(values: &[f64]) -> (f64, f64) {
    values.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)))
}

/// The rates of one side at each client count.
type Series = Vec<(u64, Vec<f64>)>;

/// A line chart: round trips per second against clients (log2), one line per side
/// through the medians, whiskers from the least to the greatest sample.
fn svg(commands: u64, rounds: usize, results: &[(Side, Series)]) -> String {
    let (width, height, left, right, top, bottom) = (720.0, 440.0, 80.0, 220.0, 50.0, 60.0);
    let max_rate = results.iter().flat_map(|(_, s)| s.iter().flat_map(|(_, r)| r.iter().copied())).fold(0.0, f64::max);
    let top_rate = (max_rate * 1.1 / 500.0).ceil().max(1.0) * 500.0;
    let counts: Vec<u64> = results.first().map(|(_, s)| s.iter().map(|(c, _)| *c).collect()).unwrap_or_default();
    let (lo_c, hi_c) = (counts.first().copied().unwrap_or(1) as f64, counts.last().copied().unwrap_or(2).max(2) as f64);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let x = |clients: u64| {
        let span = (hi_c.log2() - lo_c.log2()).max(1.0);
        left + plot_w * ((clients as f64).log2() - lo_c.log2()) / span
    };
    let y = |rate: f64| top + plot_h * (1.0 - rate / top_rate);
    let mut out = format!(
        r##"<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">
<rect width="{width}" height="{height}" fill="#ffffff"/>
<text x="{cx}" y="24" text-anchor="middle" font-size="16">Command round trips on PostgreSQL, by concurrent clients</text>
<text x="18" y="{cy}" text-anchor="middle" font-size="12" transform="rotate(270, 18, {cy})">round trips per second</text>
<text x="{cx}" y="{xl}" text-anchor="middle" font-size="12">clients (log2 scale; pool = max(clients, {POOL_FLOOR}) on every side)</text>
<polyline fill="none" stroke="#000000" points="{left},{top} {left},{base} {r},{base}"/>
"##,
        cx = left + plot_w / 2.0,
        cy = top + plot_h / 2.0,
        xl = height - 14.0,
        base = top + plot_h,
        r = left + plot_w,
    );
    let steps = 5;
    for i in 0..=steps {
        let rate = top_rate * f64::from(i) / f64::from(steps);
        out += &format!(
            "<polyline fill=\"none\" stroke=\"#dddddd\" points=\"{left},{y0:.1} {r},{y0:.1}\"/>\n<text x=\"{tx}\" y=\"{y0:.1}\" dy=\"0.35em\" text-anchor=\"end\" font-size=\"11\">{rate:.0}</text>\n",
            y0 = y(rate),
            r = left + plot_w,
            tx = left - 6.0,
        );
    }
    for &clients in &counts {
        out += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">{clients}</text>\n",
            x(clients),
            top + plot_h + 16.0
        );
    }
    for (i, (side, series)) in results.iter().enumerate() {
        let color = side.color();
        let points: Vec<String> =
            series.iter().map(|(c, rates)| format!("{:.1},{:.1}", x(*c), y(median(rates)))).collect();
        out += &format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n",
            points.join(" ")
        );
        for (c, rates) in series {
            let (lo, hi) = spread(rates);
            let cx = x(*c);
            out += &format!(
                "<polyline fill=\"none\" stroke=\"{color}\" points=\"{cx:.1},{:.1} {cx:.1},{:.1}\"/>\n<circle cx=\"{cx:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>\n",
                y(lo),
                y(hi),
                y(median(rates)),
            );
        }
        let ly = top + 20.0 + 20.0 * i as f64;
        let lx = left + plot_w + 14.0;
        out += &format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{lx:.1},{ly:.1} {:.1},{ly:.1}\"/>\n<text x=\"{:.1}\" y=\"{ly:.1}\" dy=\"0.35em\" font-size=\"11\">{}</text>\n",
            lx + 20.0,
            lx + 26.0,
            side.label()
        );
    }
    out += &format!(
        "<text x=\"{lx}\" y=\"{ly}\" font-size=\"11\" fill=\"#555555\">points: median of {rounds} samples of {commands} commands; whiskers: min–max</text>\n</svg>\n",
        lx = left + 8.0,
        ly = top - 8.0,
    );
    out
}

/// The sweep over client counts, the sides alternating within each.
fn sweep() {
    let Ok(url) = std::env::var("PROTEAN_POSTGRES_URL") else { return };
    if std::env::var("PROTEAN_BENCH_SWEEP").as_deref() == Ok("0") {
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let commands = env("PROTEAN_BENCH_SWEEP_COMMANDS", if full { 1_000 } else { 32 });
    let rounds = env("PROTEAN_BENCH_SWEEP_ROUNDS", if full { 3 } else { 1 }) as usize;
    let counts: Vec<u64> = match std::env::var("PROTEAN_BENCH_SWEEP_CLIENTS") {
        Ok(list) => list.split(',').filter_map(|c| c.trim().parse().ok()).collect(),
        Err(_) if full => vec![1, 2, 4, 8, 16, 32, 64],
        Err(_) => vec![1, 8],
    };
    let sides: Vec<Side> = match std::env::var("PROTEAN_BENCH_SIDES") {
        Ok(list) => Side::ALL.into_iter().filter(|side| list.split(',').any(|k| k.trim() == side.key())).collect(),
        Err(_) => Side::ALL.to_vec(),
    };
    let rt = runtime();
    eprintln!(
        "postgres_round_trip sweep: {commands} commands per sample, {rounds} round(s), pool max(clients, {POOL_FLOOR})"
    );
    let mut results: Vec<(Side, Series)> =
        Side::ALL.iter().map(|&side| (side, counts.iter().map(|&c| (c, Vec::new())).collect())).collect();
    for (ci, &n_clients) in counts.iter().enumerate() {
        for round in 0..rounds {
            let order: Vec<usize> = if round % 2 == 0 { vec![0, 1, 2] } else { vec![2, 1, 0] };
            for si in order {
                let side = Side::ALL[si];
                if !sides.contains(&side) {
                    continue;
                }
                let elapsed = rt.block_on(sample(&url, side, n_clients, commands));
                let rate = commands as f64 / elapsed.as_secs_f64();
                eprintln!(
                    "  clients {n_clients:>2} round {} {:<28} {rate:>8.0} round trips/s",
                    round + 1,
                    side.label()
                );
                results[si].1[ci].1.push(rate);
            }
        }
    }
    eprintln!("\nclients  side                          median/s   spread (min–max)   vs cqrs-es");
    let mut csv = String::from("clients,side,median_per_s,min_per_s,max_per_s,samples,ratio_to_cqrs_es\n");
    for (ci, &n_clients) in counts.iter().enumerate() {
        let peer = median(&results[2].1[ci].1);
        for (side, series) in &results {
            let rates = &series[ci].1;
            if rates.is_empty() {
                continue;
            }
            let (lo, hi) = spread(rates);
            let med = median(rates);
            eprintln!("{n_clients:>7}  {:<28} {med:>9.0}   {lo:>7.0} – {hi:<7.0}   {:>8.2}×", side.label(), med / peer);
            csv += &format!("{n_clients},{},{med:.1},{lo:.1},{hi:.1},{},{:.3}\n", side.key(), rates.len(), med / peer);
        }
    }
    if let Ok(path) = std::env::var("PROTEAN_BENCH_CSV") {
        std::fs::write(&path, csv).expect("the CSV is written");
        eprintln!("medians: {path}");
    }
    if let Ok(path) = std::env::var("PROTEAN_BENCH_SVG") {
        std::fs::write(&path, svg(commands, rounds, &results)).expect("the chart is written");
        eprintln!("chart: {path}");
    }
}

criterion_group!(benches, postgres_round_trip);

fn main() {
    benches();
    sweep();
    Criterion::default().configure_from_args().final_summary();
}
