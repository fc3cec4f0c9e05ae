//! A projection's row and its checkpoint stay consistent when a process dies: a child
//! charges one account against a SQLite file (an async projector and an inline one
//! keep views of it) and is killed with SIGKILL at random moments, again and again;
//! then a child rebuilding the projection is killed mid-way. After a restart, every
//! charge is in each view exactly once, in order, and the rebuild resumes and finishes.

#[path = "support/books.rs"]
mod books;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use books::accounts::{Account, Charge};
use books::views::{AccountView, OwnerTotal};
use protean::prelude::*;
use protean::store::SqliteStore;

const CHARGER: &str = "PROTEAN_PROJECTION_CRASH_CHARGER";
const BUILDER: &str = "PROTEAN_PROJECTION_CRASH_BUILDER";

fn domain_on(path: &std::path::Path) -> Domain {
    let store = SqliteStore::open(path).expect("the database opens");
    Domain::builder()
        .module(module_path!().to_string() + "::books")
        .store(store)
        .delivery_lease(Duration::ZERO)
        .build()
        .expect("the books model is valid")
}

fn account() -> Identifier<Account> {
    Identifier::parse("crash-account").expect("an identity")
}

/// A child: charges the account until it is killed, saying each charge committed.
#[tokio::test]
async fn charging_child() {
    let Ok(path) = std::env::var(CHARGER) else { return };
    let domain = domain_on(path.as_ref());
    domain.deliver_pending().await.expect("pending events delivered").all_delivered().expect("delivered");
    loop {
        let _ = domain.process(Charge { id: account(), owner: "max".into(), cents: 1 }).await.expect("charged");
        println!("committed");
    }
}

/// A child: rebuilds the account view one event per batch, saying how far it got,
/// until it is killed.
#[tokio::test]
async fn rebuilding_child() {
    let Ok(path) = std::env::var(BUILDER) else { return };
    let domain = domain_on(path.as_ref());
    let _ = domain
        .rebuild::<AccountView>()
        .batch(1)
        .on_progress(|p| println!("applied {}", p.done))
        .run()
        .await
        .expect("rebuilt");
    println!("finished");
}

fn random_below(n: u64) -> u64 {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    u64::from(nanos ^ (nanos >> 7)) % n
}

/// Runs the child test `name` with `env` set to the database, kills it after `wait`,
/// and returns the lines it printed.
fn run_and_kill(name: &str, env: &str, path: &std::path::Path, wait: Duration) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(env, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the child starts");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>());
    let started = Instant::now();
    std::thread::sleep(wait);
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    reader.join().unwrap()
}

async fn check_views(domain: &Domain) -> u32 {
    let charges = domain.get(&account()).await.unwrap().expect("the account exists").charges;
    let view = domain.projection::<AccountView>(&account()).await.unwrap().expect("the async view");
    assert_eq!(view.numbers, (1..=charges).collect::<Vec<_>>(), "each charge once, in order");
    assert_eq!(view.balance, i64::from(charges));
    let total = domain.projection::<OwnerTotal>("max").await.unwrap().expect("the inline view");
    assert_eq!((total.charges, total.total), (charges, i64::from(charges)), "committed with each charge");
    charges
}

#[tokio::test]
async fn killed_processes_leave_rows_and_checkpoints_consistent() {
    let dir = std::env::temp_dir().join(format!("protean-projection-crash-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("crash.db");
    {
        // The schema and the projections exist before the first child starts.
        let domain = domain_on(&path);
        domain.projection_status::<AccountView>().await.unwrap();
        domain.projection_status::<OwnerTotal>().await.unwrap();
    }
    let mut confirmed = 0;
    let rounds = 8;
    for _ in 0..rounds {
        let lines = run_and_kill("charging_child", CHARGER, &path, Duration::from_millis(150 + random_below(250)));
        confirmed += lines.iter().filter(|l| l.contains("committed")).count();
    }
    assert!(confirmed > rounds, "the children committed charges before they were killed ({confirmed})");

    // Restart: what the last child left undelivered is delivered; each view holds every
    // charge once, whatever moment each kill hit.
    let domain = domain_on(&path);
    let failures = domain.deliver_pending().await.unwrap().failures;
    assert!(failures.is_empty(), "{failures:?}");
    let charges = check_views(&domain).await;
    assert!(charges as usize >= confirmed && charges as usize <= confirmed + rounds);
    let status = domain.projection_status::<AccountView>().await.unwrap();
    assert_eq!(status.lag, 0, "the checkpoint is at the last charge: {status:?}");

    // A rebuild killed mid-way leaves the serving copy as it was...
    let lines = run_and_kill("rebuilding_child", BUILDER, &path, Duration::from_millis(300 + random_below(200)));
    let applied = lines.iter().filter(|l| l.contains("applied")).count();
    let finished = lines.iter().any(|l| l.contains("finished"));
    let domain = domain_on(&path);
    assert_eq!(check_views(&domain).await, charges);
    let status = domain.projection_status::<AccountView>().await.unwrap();
    if finished {
        assert_eq!((status.generation, status.build), (2, None));
    } else {
        // ... and the next rebuild takes it over (its builder is gone) and resumes it.
        let build = status.build.expect("a rebuild under way");
        assert!(build.position > 0 || applied == 0, "{build:?} after {applied} batches");
        let report = domain.rebuild::<AccountView>().lease(Duration::ZERO).run().await.unwrap().expect("taken over");
        // A batch written just before the kill may not have been reported.
        let resumed = report.events as usize + applied;
        assert!(resumed == charges as usize || resumed + 1 == charges as usize, "resumed where it stopped: {resumed}");
    }
    assert_eq!(check_views(&domain).await, charges);
    let _ = std::fs::remove_dir_all(&dir);
}
