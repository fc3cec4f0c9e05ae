//! Background delivery (docs/benchmarks.md §6c): how fast delivery workers drain a PostgreSQL outbox,
//! with 1, 2 and 4 worker **processes**.
//!
//! Each run gets a fresh database whose outbox holds `PROTEAN_BENCH_DRAIN_EVENTS`
//! (default 20,000) undelivered `Deposited` events, ten per wallet (so 2,000 streams),
//! written as a background-mode domain with no workers leaves them (the same rows,
//! written straight through the store in batches, which is faster than 20,000 commands).
//! Every event has two reacting handlers. Then K child processes (this binary again, with
//! `PROTEAN_BENCH_DRAIN_CHILD` set) connect (`PostgresStore::connect`: a pool of 16),
//! build the domain, say they are ready, and on the parent's word start delivery workers
//! with `WorkerConfig::default()`. The time is the parent's, from that word until its poll
//! (every 10 ms, one cheap `EXISTS` query) finds no undelivered event; then it tells the
//! children to stop. Startup and connecting are outside the time, and the children do not
//! poll (an earlier version had each child poll `delivery_status` every 20 ms: that
//! `count(*)` cost more with more processes, and skewed the comparison). Afterwards the parent checks that each handler handled each
//! event once, and drops the database.
//!
//! The K values alternate (1 2 4, then 4 2 1, ...) over `PROTEAN_BENCH_DRAIN_ROUNDS`
//! rounds (default 3); the table gives every run, the median and the spread (min–max).
//! With `PROTEAN_BENCH_SVG=path` it also draws the chart there.
//!
//! `PROTEAN_POSTGRES_URL=... cargo bench --features postgres --bench background_drain`;
//! `cargo test --features postgres --bench background_drain` runs 200 events with 1 and 2
//! processes once. Without `PROTEAN_POSTGRES_URL` it says so and measures nothing.

#[path = "support/deposits.rs"]
#[allow(dead_code)] // the reaction times are the other benchmark's
mod deposits;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use protean::prelude::*;
use protean::runtime::{DeliveryMode, WorkerConfig};
use protean::store::{Batch, Cause, Commit, Envelope, PostgresStore, StreamId};

const CHILD: &str = "PROTEAN_BENCH_DRAIN_CHILD";
const EVENTS_PER_STREAM: u64 = 10;
const HANDLERS: [&str; 2] = ["Auditing::audit", "Bookkeeping::book"];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime")
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn domain(store: PostgresStore) -> Domain {
    Domain::builder()
        .module(module_path!().to_string() + "::deposits")
        .store(store)
        .delivery(DeliveryMode::Background)
        .build()
        .expect("the deposits model is valid")
}

/// A child: workers on the database at `url`, from the parent's first word to its second
/// (which it sends once the outbox is empty); prints what they did.
async fn child(url: String) {
    let store = PostgresStore::connect(&url).await.expect("connects");
    let domain = domain(store);
    println!("ready");
    std::io::stdout().flush().expect("stdout");
    let word =
        || tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new()).expect("the parent's word"));
    word().await.expect("go");
    let workers = domain.workers(WorkerConfig::default()).start().expect("on a runtime");
    word().await.expect("stop");
    let report = workers.shutdown().await;
    println!(
        "events {} deliveries {} failed {} released {} store_errors {}",
        report.events, report.deliveries, report.failed_attempts, report.released, report.store_errors
    );
}

/// A new, empty database on the server of `url`: (its URL, its name).
async fn fresh_database(admin: &sqlx::PgPool, url: &str) -> (String, String) {
    let name = format!("bench_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(admin).await.expect("a database");
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    (format!("{base}/{name}"), name)
}

/// Fills the outbox with `events` undelivered deposits, `EVENTS_PER_STREAM` per wallet.
async fn fill(store: &PostgresStore, events: u64) {
    let streams = events.div_ceil(EVENTS_PER_STREAM);
    let commits: Vec<Commit> = (0..streams)
        .map(|_| {
            let id = Identifier::<deposits::Wallet>::generate();
            let stream = StreamId::new("Wallet", id.to_string());
            let count = EVENTS_PER_STREAM;
            let events = (1..=count)
                .map(|number| {
                    let event = deposits::Deposited { id: id.clone(), number, amount: 1 };
                    Envelope::new(event.into(), stream.clone(), Cause::command(uuid::Uuid::now_v7()))
                        .expect("an envelope")
                })
                .collect();
            let state = format!(r#"{{"id":"{id}","balance":{count},"deposits":{count}}}"#);
            Commit { stream, expected_version: 0, advance: 1, state: Some(state.into()), events, snapshot: None }
        })
        .collect();
    let mut commits = commits.into_iter().peekable();
    while commits.peek().is_some() {
        let batch: Vec<Commit> = commits.by_ref().take(100).collect();
        store
            .commit(Batch { commits: batch, handled: None, delivered: vec![], ..Batch::default() })
            .await
            .expect("filled");
    }
}

async fn count(pool: &sqlx::PgPool, query: &str) -> i64 {
    sqlx::query_scalar(query).fetch_one(pool).await.expect("counted")
}

/// One run: fill a fresh database, drain it with `processes` children; the drain time.
async fn run(admin: &sqlx::PgPool, url: &str, events: u64, processes: usize) -> Duration {
    let (db, name) = fresh_database(admin, url).await;
    let store = PostgresStore::connect_with(&db, 4).await.expect("connects");
    fill(&store, events).await;
    let pool = store.pool().clone();
    let undelivered = "SELECT count(*) FROM protean_events WHERE NOT delivered";
    let total = (events.div_ceil(EVENTS_PER_STREAM) * EVENTS_PER_STREAM) as i64;
    assert_eq!(count(&pool, undelivered).await, total);

    let mut children: Vec<(Child, BufReader<std::process::ChildStdout>)> = (0..processes)
        .map(|_| {
            let mut child = Command::new(std::env::current_exe().expect("this binary"))
                .env(CHILD, &db)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("a child starts");
            let stdout = BufReader::new(child.stdout.take().expect("its stdout"));
            (child, stdout)
        })
        .collect();
    for (_, stdout) in &mut children {
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the child speaks");
        assert_eq!(line.trim(), "ready", "a child did not start");
    }
    let start = Instant::now();
    for (child, _) in &mut children {
        child.stdin.as_mut().expect("its stdin").write_all(b"go\n").expect("the word");
    }
    let deadline = start + Duration::from_secs(600);
    let any_left = "SELECT EXISTS (SELECT 1 FROM protean_events WHERE NOT delivered)";
    while sqlx::query_scalar::<_, bool>(any_left).fetch_one(&pool).await.expect("asked") {
        assert!(Instant::now() < deadline, "the outbox did not drain in 10 minutes");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = start.elapsed();
    for (child, _) in &mut children {
        child.stdin.as_mut().expect("its stdin").write_all(b"stop\n").expect("the word");
    }

    let mut worked = 0u64;
    for (child, mut stdout) in children {
        let mut report = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut report).expect("the child's report");
        let output = child.wait_with_output().expect("the child ends");
        assert!(output.status.success(), "a child failed: {report}");
        let field = |key: &str| -> u64 {
            let after = report.split(&format!("{key} ")).nth(1).expect("the report");
            after.split_whitespace().next().and_then(|n| n.parse().ok()).expect("a count")
        };
        assert_eq!(field("failed"), 0, "{report}");
        if field("store_errors") > 0 {
            eprintln!("  (a child met store errors: {})", report.trim());
        }
        worked += field("events");
    }
    assert_eq!(worked as i64, total, "each event worked once, by one of the processes");
    for handler in HANDLERS {
        let handled = count(&pool, &format!("SELECT count(*) FROM protean_handled WHERE handler = '{handler}'")).await;
        assert_eq!(handled, total, "{handler} handled each event once");
    }
    pool.close().await;
    drop(store);
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(admin).await.expect("dropped");
    elapsed
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// A bar chart: the median rate per process count, the spread as a whisker, each run as
/// a dot, and the dashed line of linear scaling from one process.
fn svg(events: u64, results: &[(usize, Vec<f64>)]) -> String {
    let (width, height, left, right, top, bottom) = (640.0, 400.0, 80.0, 20.0, 50.0, 60.0);
    let max_rate = results.iter().flat_map(|(_, r)| r.iter().copied()).fold(0.0, f64::max);
    let one = results.first().map_or(0.0, |(_, r)| median(r));
    let top_rate = (max_rate.max(one * 2.0) * 1.15 / 500.0).ceil() * 500.0;
    let plot_h = height - top - bottom;
    let plot_w = width - left - right;
    let y = |rate: f64| top + plot_h * (1.0 - rate / top_rate);
    let slot = plot_w / results.len() as f64;
    let mut out = format!(
        r##"<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">
<rect width="{width}" height="{height}" fill="#ffffff"/>
<text x="{cx}" y="24" text-anchor="middle" font-size="16">Outbox drain rate on PostgreSQL, {events} events, 2 handlers each</text>
<text x="18" y="{cy}" text-anchor="middle" font-size="12" transform="rotate(270, 18, {cy})">events delivered per second</text>
<text x="{cx}" y="{xl}" text-anchor="middle" font-size="12">worker processes (2 vCPUs shared with the server)</text>
<polyline fill="none" stroke="#000000" points="{left},{top} {left},{base} {r},{base}"/>
<clipPath id="plot"><rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/></clipPath>
"##,
        cx = left + plot_w / 2.0,
        cy = top + plot_h / 2.0,
        xl = height - 14.0,
        base = top + plot_h,
        r = width - right,
    );
    let steps = 5;
    for i in 0..=steps {
        let rate = top_rate * f64::from(i) / f64::from(steps);
        out += &format!(
            "<polyline fill=\"none\" stroke=\"#dddddd\" points=\"{left},{y0:.1} {r},{y0:.1}\"/>\n<text x=\"{tx}\" y=\"{y0:.1}\" dy=\"0.35em\" text-anchor=\"end\" font-size=\"11\">{rate:.0}</text>\n",
            y0 = y(rate),
            r = width - right,
            tx = left - 6.0,
        );
    }
    let mut ideal = String::new();
    for (i, (processes, rates)) in results.iter().enumerate() {
        let cx = left + slot * (i as f64 + 0.5);
        let med = median(rates);
        let (lo, hi) = rates.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        let bar = slot * 0.45;
        out += &format!(
            "<rect x=\"{x:.1}\" y=\"{y0:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"#4c78a8\"/>\n\
             <polyline fill=\"none\" stroke=\"#000000\" points=\"{cx:.1},{ylo:.1} {cx:.1},{yhi:.1}\"/>\n\
             <polyline fill=\"none\" stroke=\"#000000\" points=\"{a:.1},{ylo:.1} {b:.1},{ylo:.1}\"/>\n\
             <polyline fill=\"none\" stroke=\"#000000\" points=\"{a:.1},{yhi:.1} {b:.1},{yhi:.1}\"/>\n\
             <text x=\"{cx:.1}\" y=\"{yt:.1}\" text-anchor=\"middle\" font-size=\"11\">{med:.0}/s</text>\n\
             <text x=\"{cx:.1}\" y=\"{yb:.1}\" text-anchor=\"middle\" font-size=\"12\">{processes}</text>\n",
            x = cx - bar / 2.0,
            y0 = y(med),
            h = y(0.0) - y(med),
            ylo = y(lo),
            yhi = y(hi),
            a = cx - 6.0,
            b = cx + 6.0,
            yt = y(hi) - 6.0,
            yb = y(0.0) + 16.0,
        );
        for rate in rates {
            out += &format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#f58518\"/>\n",
                cx + bar / 2.0 + 8.0,
                y(*rate)
            );
        }
        ideal += &format!("{cx:.1},{:.1} ", y(one * *processes as f64));
    }
    out += &format!(
        "<polyline fill=\"none\" stroke=\"#888888\" stroke-dasharray=\"5,4\" clip-path=\"url(#plot)\" points=\"{ideal}\"/>\n\
         <text x=\"{lx}\" y=\"{ly}\" font-size=\"11\" fill=\"#555555\">bars: median of the runs; whiskers: min–max; dots: each run; dashed: linear scaling</text>\n</svg>\n",
        lx = left + 8.0,
        ly = top - 8.0,
    );
    out
}

fn main() {
    if let Ok(url) = std::env::var(CHILD) {
        runtime().block_on(child(url));
        return;
    }
    let Ok(url) = std::env::var("PROTEAN_POSTGRES_URL") else {
        eprintln!("background_drain: set PROTEAN_POSTGRES_URL to run it; nothing measured");
        return;
    };
    let full = std::env::args().any(|a| a == "--bench");
    let events = env("PROTEAN_BENCH_DRAIN_EVENTS", if full { 20_000 } else { 200 });
    let rounds = env("PROTEAN_BENCH_DRAIN_ROUNDS", if full { 3 } else { 1 }) as usize;
    let counts: Vec<usize> = if full { vec![1, 2, 4] } else { vec![1, 2] };
    let rt = runtime();
    let admin = rt.block_on(sqlx::PgPool::connect(&url)).expect("PROTEAN_POSTGRES_URL answers");
    let mut rates: Vec<(usize, Vec<f64>)> = counts.iter().map(|&k| (k, Vec::new())).collect();
    eprintln!("background_drain: {events} events, 2 handlers each, {rounds} round(s), K alternating");
    for round in 0..rounds {
        let order: Vec<usize> =
            if round % 2 == 0 { (0..counts.len()).collect() } else { (0..counts.len()).rev().collect() };
        for i in order {
            let processes = counts[i];
            let elapsed = rt.block_on(run(&admin, &url, events, processes));
            let rate = events as f64 / elapsed.as_secs_f64();
            eprintln!("  round {} K={processes}: {:.2} s, {rate:.0} events/s", round + 1, elapsed.as_secs_f64());
            rates[i].1.push(rate);
        }
    }
    eprintln!("\nprocesses  median events/s   spread (min–max)   vs 1 process");
    let one = median(&rates[0].1);
    for (processes, runs) in &rates {
        let (lo, hi) = runs.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        let med = median(runs);
        eprintln!("{processes:>9}  {med:>15.0}   {lo:>7.0} – {hi:<7.0}   {:>10.2}×", med / one);
    }
    if let Ok(path) = std::env::var("PROTEAN_BENCH_SVG") {
        std::fs::write(&path, svg(events, &rates)).expect("the chart is written");
        eprintln!("chart: {path}");
    }
}
