//! Nothing is lost when a process dies: a child process processes commands against a
//! SQLite file and is killed with SIGKILL at random moments, again and again; after a
//! restart, every committed command's events are delivered, each effect happened once,
//! and nothing uncommitted is visible.

#[path = "support/lab.rs"]
#[allow(dead_code)]
mod lab;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use lab::*;
use protean::prelude::*;
use protean::store::SqliteStore;

const CHILD: &str = "PROTEAN_CRASH_CHILD_DB";
const CLAIM_CHILD: &str = "PROTEAN_CLAIM_CHILD_DB";

fn domain_on(path: &std::path::Path) -> Domain {
    let store = SqliteStore::open(path).expect("the database opens");
    Domain::builder()
        .module(module_path!().to_string() + "::lab")
        .store(store)
        .delivery_lease(Duration::ZERO)
        .build()
        .expect("the lab model is valid")
}

fn counter() -> Identifier<Counter> {
    Identifier::parse("crash-counter").expect("an identity")
}

/// The child: when started by the test below, processes `Bump`s until it is killed,
/// printing the id of each command once `process` has returned (so it was committed).
#[tokio::test]
async fn crash_child() {
    let Ok(path) = std::env::var(CHILD) else { return };
    let domain = domain_on(path.as_ref());
    // What the previous child committed and did not deliver goes out first.
    domain.deliver_pending().await.expect("pending events delivered").all_delivered().expect("delivered");
    loop {
        let command_id = uuid::Uuid::now_v7();
        let _ = domain.process_with(Bump { id: counter() }, command_id, None).await.expect("processed");
        println!("committed {command_id}");
    }
}

fn random_below(n: u64) -> u64 {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    u64::from(nanos ^ (nanos >> 7)) % n
}

#[tokio::test]
async fn killed_processes_lose_no_committed_event_and_show_no_uncommitted_change() {
    let dir = std::env::temp_dir().join(format!("protean-crash-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("crash.db");
    drop(domain_on(&path)); // the schema exists before the first child starts

    let mut confirmed = Vec::new();
    let rounds = 12;
    for _ in 0..rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the child starts");
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| {
                    // libtest's own "test crash_child ... " may share the first line.
                    line.split_once("committed ").map(|(_, id)| id.trim().to_owned())
                })
                .collect::<Vec<_>>()
        });
        // Let it start and commit a little, then kill it somewhere in the middle of its work.
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(150 + random_below(250)));
        child.kill().expect("SIGKILL"); // Unix: SIGKILL
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        assert!(started.elapsed() < Duration::from_secs(30));
        confirmed.extend(lines);
    }
    assert!(confirmed.len() > rounds, "the children committed commands before they were killed ({})", confirmed.len());

    // Restart: deliver what the last child left undelivered.
    let domain = domain_on(&path);
    let failures = domain.deliver_pending().await.unwrap().failures;
    assert!(failures.is_empty(), "{failures:?}");
    assert!(domain.deliver_pending().await.unwrap().events.is_empty(), "nothing is left undelivered");

    let count = domain.get(&counter()).await.unwrap().expect("the counter exists").count;
    let events = domain.events_of(&counter()).await.unwrap();
    // No uncommitted change: the state and the events agree, one event per commit, in sequence.
    assert_eq!(events.len() as u32, count);
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), (1..=u64::from(count)).collect::<Vec<_>>());
    assert_eq!(events.last().unwrap().event::<Bumped>().unwrap().count, count);
    // Every command a child saw committed is there; at most one more per kill (committed
    // but killed before it could say so).
    let committed_ids: std::collections::HashSet<String> = events.iter().map(|e| e.causation_id.to_string()).collect();
    for id in &confirmed {
        assert!(committed_ids.contains(id), "command {id} was confirmed but its event is missing");
    }
    assert!(
        count as usize >= confirmed.len() && count as usize <= confirmed.len() + rounds,
        "{count} commits, {} confirmed, {rounds} kills",
        confirmed.len()
    );
    // Every committed event was delivered, and its effect happened exactly once.
    assert_eq!(domain.get(&counter().cast::<Tally>()).await.unwrap().unwrap().seen, count);
    let store = SqliteStore::open(&path).unwrap();
    assert!(store.claim_undelivered(10, Duration::ZERO).await.unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The child of the test below: claims every undelivered event for the default 30 s
/// lease, says how many, and waits to be killed without delivering them.
#[tokio::test]
async fn claim_child() {
    let Ok(path) = std::env::var(CLAIM_CHILD) else { return };
    let store = SqliteStore::open(&path).expect("the database opens");
    let claimed = store.claim_undelivered(100, Duration::from_secs(30)).await.expect("claimed");
    println!("claimed {}", claimed.len());
    std::future::pending::<()>().await;
}

/// Starts `claim_child` on `path` and returns it once it has claimed, with the count.
fn claiming_child(path: &std::path::Path) -> (std::process::Child, usize) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "claim_child", "--nocapture", "--test-threads=1"])
        .env(CLAIM_CHILD, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the child starts");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let claimed = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.split_once("claimed ").and_then(|(_, n)| n.trim().parse().ok()))
        .expect("the child claimed before it stopped");
    (child, claimed)
}

/// A process that claimed events and was killed before delivering them does not hold
/// them up for its lease: a process opening the file afterwards, with the default 30 s
/// lease, delivers them at once.
#[tokio::test]
async fn a_restarted_process_delivers_a_killed_process_claims_at_once() {
    let dir = std::env::temp_dir().join(format!("protean-claims-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("claims.db");
    let id = counter();
    lab::undelivered_bumps(&SqliteStore::open(&path).unwrap(), &id).await;

    let (mut child, claimed) = claiming_child(&path);
    assert_eq!(claimed, 3);
    child.kill().expect("SIGKILL");
    child.wait().unwrap();

    let started = Instant::now();
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::lab")
        .store(SqliteStore::open(&path).unwrap())
        .build()
        .expect("the lab model is valid"); // the default lease: 30 s
    domain.deliver_pending().await.unwrap().all_delivered().unwrap();
    let tally = domain.get(&id.cast::<Tally>()).await.unwrap();
    assert_eq!(tally.map(|t| t.seen), Some(3), "the killed process's claims were taken over at once");
    assert!(started.elapsed() < Duration::from_secs(10));
    let raw = rusqlite::Connection::open(&path).unwrap();
    let undelivered: i64 =
        raw.query_row("SELECT count(*) FROM protean_events WHERE delivered = 0", [], |r| r.get(0)).unwrap();
    assert_eq!(undelivered, 0);
    let _ = std::fs::remove_dir_all(&dir);
}
