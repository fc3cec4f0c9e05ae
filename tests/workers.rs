//! Delivery workers in several processes on one PostgreSQL database: three worker
//! processes, one killed mid-run with SIGKILL, deliver the reactions to 2,000 commands,
//! each event handled once per handler and each stream in order, with nothing left
//! undelivered or claimed; and one command id sent by two processes at the same moment
//! changes state once. Needs the `postgres` feature and `PROTEAN_POSTGRES_URL` (reported
//! ignored, with the reason, without it; required in CI).
//!
//! The binary is also the child processes: with `PROTEAN_WORKERS_CHILD` set it runs that
//! child instead of the tests.

#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "support/relay.rs"]
#[allow(dead_code)]
mod relay;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use protean::prelude::*;
use protean::runtime::{DeliveryMode, RetryPolicy, WorkerConfig};
use protean::store::PostgresStore;
use relay::*;

const CHILD: &str = "PROTEAN_WORKERS_CHILD";
const URL: &str = "PROTEAN_WORKERS_URL";
const START_AT: &str = "PROTEAN_WORKERS_START_AT";
const WALLETS: usize = 50;
const COMMANDS: usize = 2_000;

async fn domain_on(url: &str) -> Domain {
    let store = PostgresStore::connect_with(url, 8).await.expect("connects");
    Domain::builder()
        .module(module_path!().to_string() + "::relay")
        .store(store)
        .delivery(DeliveryMode::Background)
        .retry_policy(RetryPolicy::default().initial_backoff(Duration::from_millis(5)))
        .conflict_retries(10_000)
        .build()
        .expect("the relay model is valid")
}

fn wallet(n: usize) -> Identifier<Wallet> {
    Identifier::parse(&format!("wallet-{n}")).expect("an identity")
}

/// A worker process: runs delivery workers (30 s leases) until its stdin closes, then
/// shuts them down and prints its report.
async fn worker_child(url: String) {
    let domain = domain_on(&url).await;
    let handle = domain.workers(WorkerConfig::default().concurrency(8)).start().expect("on a runtime");
    println!("ready");
    tokio::task::spawn_blocking(|| std::io::stdin().lines().count()).await.unwrap();
    let report = handle.shutdown().await;
    println!("delivered {} released {}", report.events, report.released);
}

/// A process sending the same 50 commands, with the same ids, as its twin, at the same moment.
async fn duplicate_child(url: String) {
    let domain = domain_on(&url).await;
    let start: u128 = std::env::var(START_AT).unwrap().parse().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
    tokio::time::sleep(Duration::from_millis(u64::try_from(start.saturating_sub(now)).unwrap())).await;
    let tasks: Vec<_> = (0..50u128)
        .map(|k| {
            let domain = domain.clone();
            tokio::spawn(async move {
                let id = Uuid::from_u128(0x5eed_0000 + k);
                let command = Deposit { id: wallet(k as usize % 5), amount: 1 };
                let processed = domain.process_with(command, id, None).await.expect("processed");
                format!("reply {id} {}", processed.reply)
            })
        })
        .collect();
    for task in tasks {
        println!("{}", task.await.unwrap());
    }
}

fn spawn_child(kind: &str, url: &str, start_at: Option<u128>) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.env(CHILD, kind).env(URL, url).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    if let Some(at) = start_at {
        command.env(START_AT, at.to_string());
    }
    command.spawn().expect("a child starts")
}

/// Reads the child's stdout up to its `ready` line.
fn await_ready(child: &mut Child) -> BufReader<std::process::ChildStdout> {
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        if line.trim() == "ready" {
            return stdout;
        }
        line.clear();
    }
    panic!("the child stopped before it was ready");
}

async fn scalar(store: &PostgresStore, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(store.pool()).await.unwrap()
}

async fn three_worker_processes_one_killed_deliver_every_event_once_in_order(url: String) {
    let producer = domain_on(&url).await;
    let mut children: Vec<Child> = (0..3).map(|_| spawn_child("worker", &url, None)).collect();
    let mut outputs: Vec<_> = children.iter_mut().map(await_ready).collect();

    let started = Instant::now();
    for n in 0..COMMANDS {
        let processed = producer.process(Deposit { id: wallet(n % WALLETS), amount: 1 }).await.unwrap();
        assert!(processed.failures.is_empty());
        if n == COMMANDS / 3 {
            children[0].kill().expect("SIGKILL");
            children[0].wait().unwrap();
        }
    }
    let committed = started.elapsed();
    // The two live processes finish the work, the killed one's claims included.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = producer.delivery_status().await.unwrap();
        if status.undelivered == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "not delivered in time: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = started.elapsed();
    let mut delivered_by_survivors = 0;
    for (i, mut child) in children.into_iter().enumerate().skip(1) {
        drop(child.stdin.take()); // closes its stdin: it shuts down
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut outputs[i], &mut rest).unwrap();
        assert!(child.wait().unwrap().success(), "a worker process failed: {rest}");
        let count = rest.split("delivered ").nth(1).and_then(|r| r.split_whitespace().next());
        delivered_by_survivors += count.and_then(|c| c.parse::<u64>().ok()).expect("its report");
    }
    eprintln!("2,000 commands committed in {committed:?}, all delivered after {drained:?}; the survivors delivered {delivered_by_survivors} events");

    let per_wallet: Vec<u64> = (1..=(COMMANDS / WALLETS) as u64).collect();
    for n in 0..WALLETS {
        let id = wallet(n);
        let ledger = producer.get(&id.cast::<Ledger>()).await.unwrap().unwrap();
        assert_eq!(ledger.numbers, per_wallet, "{id}: every deposit booked once, in order");
        let audit = producer.get(&id.cast::<Audit>()).await.unwrap().unwrap();
        assert_eq!(audit.numbers, per_wallet, "{id}: every deposit audited once, in order");
    }
    let store = PostgresStore::connect_with(&url, 1).await.unwrap();
    for handler in ["Bookkeeping::book", "Auditing::audit"] {
        let sql = format!("SELECT count(*) FROM protean_handled WHERE handler = '{handler}'");
        assert_eq!(scalar(&store, &sql).await, COMMANDS as i64, "one handled record per event for {handler}");
    }
    assert_eq!(scalar(&store, "SELECT count(*) FROM protean_events WHERE NOT delivered").await, 0);
    assert_eq!(scalar(&store, "SELECT count(*) FROM protean_failures").await, 0, "no dead letter, no retry");
    let claimed = "SELECT count(*) FROM protean_events WHERE NOT delivered AND claimed_by IS NOT NULL";
    assert_eq!(scalar(&store, claimed).await, 0, "no claim left behind");
}

async fn one_command_id_from_two_processes_at_once_changes_state_once(url: String) {
    let _ = domain_on(&url).await; // migrates before the race
    let start_at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() + 1_500;
    let children: Vec<Child> = (0..2).map(|_| spawn_child("duplicates", &url, Some(start_at))).collect();
    let mut replies = Vec::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "a child failed: {stdout}");
        let mut lines: Vec<String> = stdout.lines().filter(|l| l.starts_with("reply ")).map(str::to_owned).collect();
        lines.sort();
        assert_eq!(lines.len(), 50);
        replies.push(lines);
    }
    assert_eq!(replies[0], replies[1], "both copies of each command got the first outcome");
    let domain = domain_on(&url).await;
    for n in 0..5 {
        let wallet = domain.get(&wallet(n)).await.unwrap().unwrap();
        assert_eq!((wallet.deposits, wallet.balance), (10, 10), "each of its 10 commands ran once");
    }
}

fn main() -> ExitCode {
    if let Ok(kind) = std::env::var(CHILD) {
        let url = std::env::var(URL).expect("the database URL");
        match kind.as_str() {
            "worker" => harness::runtime().block_on(worker_child(url)),
            _ => harness::runtime().block_on(duplicate_child(url)),
        }
        std::io::stdout().flush().unwrap();
        return ExitCode::SUCCESS;
    }
    harness::run(vec![
        harness::postgres::test(
            "three_worker_processes_one_killed_deliver_every_event_once_in_order",
            three_worker_processes_one_killed_deliver_every_event_once_in_order,
        ),
        harness::postgres::test(
            "one_command_id_from_two_processes_at_once_changes_state_once",
            one_command_id_from_two_processes_at_once_changes_state_once,
        ),
    ])
}
