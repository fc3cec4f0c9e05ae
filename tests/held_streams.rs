//! A stream held behind a dead letter is released whole, even when the dead letter is
//! replayed while a worker in another process is parking the stream's next events: the
//! worker process is paused (SIGSTOP) in the middle of parking, the dead letters are
//! replayed meanwhile, and it goes on (SIGCONT); round after round, no event is left
//! held with no dead letter ahead of it, and the auditor sees every stream whole, in
//! order. On PostgreSQL (the store many processes share; needs the `postgres` feature
//! and `PROTEAN_POSTGRES_URL`, reported ignored, with the reason, without it) and on a
//! SQLite file shared by the two processes (the test needs the `sqlite` feature).
//!
//! The binary is also the worker process: with `PROTEAN_HELD_CHILD` set it runs that
//! child instead of the tests.

#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "support/relay.rs"]
#[allow(dead_code)]
mod relay;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use protean::prelude::*;
use protean::runtime::{DeliveryMode, RetryPolicy, WorkerConfig};
use protean::store::{FailureQuery, Store};
use relay::*;

/// The store the child works on: `postgres` or `sqlite`.
const CHILD: &str = "PROTEAN_HELD_CHILD";
/// The database URL or the SQLite file.
const TARGET: &str = "PROTEAN_HELD_TARGET";
const AUDIT: &str = "Auditing::audit";
/// Rounds on SQLite and on PostgreSQL (whose rounds take longer). Before the fix, a
/// round caught the race (left a stream held with no dead letter ahead) about every
/// second or third time on either store, so nine runs in ten failed with 10 and 6.
const SQLITE_ROUNDS: usize = 12;
const POSTGRES_ROUNDS: usize = 8;
const WALLETS: usize = 8;
const DEPOSITS: u64 = 6;

fn wallet(round: usize, n: usize) -> Identifier<Wallet> {
    Identifier::parse(&format!("held-{round}-{n}")).expect("an identity")
}

/// Background delivery with one attempt per delivery: a failure is a dead letter at once.
fn domain_on(store: Arc<dyn Store>) -> Domain {
    Domain::builder()
        .module(module_path!().to_string() + "::relay")
        .shared_store(store)
        .delivery(DeliveryMode::Background)
        .retry_policy(RetryPolicy::default().max_attempts(1))
        .conflict_retries(1_000)
        .build()
        .expect("the relay model is valid")
}

async fn open(kind: &str, target: &str) -> Arc<dyn Store> {
    match kind {
        #[cfg(feature = "postgres")]
        "postgres" => Arc::new(protean::store::PostgresStore::connect_with(target, 8).await.expect("connects")),
        "sqlite" => Arc::new(protean::store::SqliteStore::open(target).expect("opens")),
        other => panic!("no {other} store in this build ({target})"),
    }
}

/// The worker process: its auditor fails on the first deposit of every wallet of every
/// round (a dead letter, holding the rest of the wallet's stream); it works until its
/// stdin closes.
async fn worker_child(kind: String, target: String) {
    for round in 0..SQLITE_ROUNDS.max(POSTGRES_ROUNDS) {
        for n in 0..WALLETS {
            fail_audits(&wallet(round, n), 1);
        }
    }
    let domain = domain_on(open(&kind, &target).await);
    let config = WorkerConfig::default().concurrency(WALLETS).poll_interval(Duration::from_millis(5));
    let handle = domain.workers(config).start().expect("on a runtime");
    println!("ready");
    tokio::task::spawn_blocking(|| std::io::stdin().lines().count()).await.unwrap();
    let report = handle.shutdown().await;
    println!("held {} delivered {}", report.held, report.deliveries);
}

/// The worker process, paused and resumed by signals; stopped (resumed, then killed if
/// it is still there) when dropped, so a failing test leaves no process behind.
struct Worker {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Worker {
    fn start(kind: &str, target: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD, kind)
            .env(TARGET, target)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the worker process starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while line.trim() != "ready" {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "the worker process stopped before it was ready");
        }
        Worker { child, stdout }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().expect("kill runs");
        assert!(status.success(), "kill {signal} failed");
    }

    fn pause(&self) {
        self.signal("-STOP");
    }

    fn resume(&self) {
        self.signal("-CONT");
    }

    /// Closes its stdin (it shuts its workers down), waits for it to exit, and returns
    /// its report.
    fn finish(mut self) -> String {
        drop(self.child.stdin.take());
        let mut report = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut report).unwrap();
        assert!(self.child.wait().unwrap().success(), "the worker process failed: {report}");
        report.trim().to_owned()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.resume();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn random_below(n: u64) -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    u64::from(nanos ^ (nanos >> 7)) % n
}

/// The auditor's counts from `delivery_status`: (dead, held).
async fn audit_counts(domain: &Domain) -> (u64, u64) {
    let status = domain.delivery_status().await.unwrap();
    status.handlers.iter().find(|h| h.handler == AUDIT).map_or((0, 0), |h| (h.dead, h.held))
}

/// Polls `done` every millisecond until it holds; panics after 60 s, saying `what`.
async fn until<F: std::future::Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn deposits(domain: &Domain, round: usize, numbers: std::ops::RangeInclusive<u64>) {
    let tasks: Vec<_> = (0..WALLETS)
        .map(|n| {
            let (domain, numbers) = (domain.clone(), numbers.clone());
            tokio::spawn(async move {
                for _ in numbers {
                    let _ = domain.process(Deposit { id: wallet(round, n), amount: 1 }).await.expect("committed");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// One round: every wallet's first audit dies in the worker process; then, while the
/// worker parks the wallets' next deposits behind those dead letters, it is paused, the
/// dead letters are replayed here (releasing what is held so far), and it is resumed.
/// Returns whether the worker was paused with events still to work (undelivered).
async fn round(domain: &Domain, worker: &Worker, round: usize) -> bool {
    deposits(domain, round, 1..=1).await;
    until("the first deposits are dead letters", || async move { audit_counts(domain).await.0 == WALLETS as u64 })
        .await;
    let rest = {
        let domain = domain.clone();
        tokio::spawn(async move { deposits(&domain, round, 2..=DEPOSITS).await })
    };
    // In the middle of parking: once it has held some, a moment later.
    until("the worker parks deposits", || async move { audit_counts(domain).await.1 > 0 }).await;
    tokio::time::sleep(Duration::from_micros(random_below(3_000))).await;
    worker.pause();
    let mid_parking = domain.delivery_status().await.unwrap().undelivered > 0;
    // Resumed once the replay is done, or after a while (a SQLite worker paused inside
    // its write transaction holds the file's write lock; the replay waits for it).
    let replay = tokio::spawn({
        let domain = domain.clone();
        async move { domain.redeliver_all().await }
    });
    tokio::pin!(replay);
    let replayed = tokio::select! {
        replayed = &mut replay => { worker.resume(); replayed }
        () = tokio::time::sleep(Duration::from_millis(300)) => { worker.resume(); replay.await }
    };
    let replayed = replayed.unwrap().expect("replayed");
    assert!(replayed.failed.is_empty(), "the auditor works in this process: {replayed:?}");
    rest.await.unwrap();
    until("everything is delivered", || async move { domain.delivery_status().await.unwrap().undelivered == 0 }).await;
    mid_parking
}

async fn replays_while_a_paused_worker_parks_leave_no_stream_held(kind: &str, target: String, rounds: usize) {
    let store = open(kind, &target).await;
    let domain = domain_on(store);
    let worker = Worker::start(kind, &target);
    let started = Instant::now();
    let mut mid_parking = 0;
    for r in 0..rounds {
        mid_parking += usize::from(round(&domain, &worker, r).await);
        let stranded = domain.delivery_failures(FailureQuery::default()).await.unwrap();
        let stranded: Vec<String> =
            stranded.iter().map(|f| format!("{} #{} {}", f.event.stream, f.event.sequence, f.status)).collect();
        assert!(stranded.is_empty(), "round {r}: held with no dead letter ahead: {stranded:?}");
        let whole: Vec<u64> = (1..=DEPOSITS).collect();
        for n in 0..WALLETS {
            let audit = domain.get(&wallet(r, n).cast::<Audit>()).await.unwrap().map(|a| a.numbers);
            assert_eq!(audit.as_deref(), Some(&whole[..]), "round {r}: wallet {n} audited whole, in order");
        }
    }
    let report = worker.finish();
    eprintln!("{kind}: {rounds} rounds in {:?}, {mid_parking} paused mid-parking; worker: {report}", started.elapsed());
    assert!(mid_parking > 0, "the worker was paused with events still to park");
}

fn main() -> ExitCode {
    if let Ok(kind) = std::env::var(CHILD) {
        // The worker dead-letters deposits on purpose, hundreds of them: a subscriber
        // that records nothing keeps them off stderr (see `Workers`, seeing failures).
        tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default()).unwrap();
        let target = std::env::var(TARGET).expect("the store's URL or file");
        harness::runtime().block_on(worker_child(kind, target));
        std::io::stdout().flush().unwrap();
        return ExitCode::SUCCESS;
    }
    #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
    let mut trials = Vec::new();
    trials.push(harness::test("sqlite::replays_while_a_paused_worker_parks_leave_no_stream_held", || async {
        let dir = std::env::temp_dir().join(format!("protean-held-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("held.db").to_string_lossy().into_owned();
        replays_while_a_paused_worker_parks_leave_no_stream_held("sqlite", path, SQLITE_ROUNDS).await;
        let _ = std::fs::remove_dir_all(&dir);
    }));
    #[cfg(feature = "postgres")]
    trials.push(harness::postgres::test("postgres::replays_while_a_paused_worker_parks_leave_no_stream_held", |url| {
        replays_while_a_paused_worker_parks_leave_no_stream_held("postgres", url, POSTGRES_ROUNDS)
    }));
    harness::run(trials)
}
