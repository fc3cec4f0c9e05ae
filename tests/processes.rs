//! Several processes on one PostgreSQL database: two processes processing commands for
//! the same aggregates never lose an update, and with two relays running, each outbox
//! event's effect happens once per handler. Needs the `postgres` feature and
//! `PROTEAN_POSTGRES_URL` (without it the tests are reported ignored, with the reason;
//! required in CI through `PROTEAN_REQUIRE_POSTGRES=1`).
//!
//! The binary is also the child processes the tests start: with `PROTEAN_PROCESSES_CHILD_URL`
//! or `PROTEAN_CLAIM_CHILD_URL` set, it runs that child instead of the tests.

#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "support/lab.rs"]
#[allow(dead_code)]
mod lab;

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lab::*;
use protean::prelude::*;
use protean::store::{Batch, Commit, PostgresStore};
use protean::store::{Cause, Envelope, StreamId};

const CHILD: &str = "PROTEAN_PROCESSES_CHILD_URL";
const CLAIM_CHILD: &str = "PROTEAN_CLAIM_CHILD_URL";
const COMMANDS_PER_CHILD: u32 = 150;
const COUNTERS: usize = 3;

fn counter(n: usize) -> Identifier<Counter> {
    Identifier::parse(&format!("shared-{n}")).expect("an identity")
}

async fn domain_on(url: &str) -> Domain {
    let store = PostgresStore::connect_with(url, 4).await.expect("connects");
    Domain::builder()
        .module(module_path!().to_string() + "::lab")
        .store(store)
        .conflict_retries(10_000)
        .build()
        .expect("the lab model is valid")
}

/// The child: a relay and a command processor at once, on the shared database. Prints
/// how many commands it committed.
async fn processes_child(url: String) {
    let domain = domain_on(&url).await;
    let relay = {
        let domain = domain.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                let _ = domain.deliver_pending().await.expect("relayed");
                tokio::task::yield_now().await;
            }
        })
    };
    let mut committed = 0;
    for n in 0..COMMANDS_PER_CHILD {
        if domain.process(Bump { id: counter(n as usize % COUNTERS) }).await.is_ok() {
            committed += 1;
        }
    }
    relay.await.unwrap();
    let _ = domain.deliver_pending().await.expect("relayed");
    println!("committed {committed}");
}

async fn two_processes_lose_no_update_and_handle_each_event_once(url: String) {
    let store = Arc::new(PostgresStore::connect(&url).await.unwrap());

    // Events a stopped process committed and never delivered: work for both relays.
    let backlog = 40u32;
    for n in 0..COUNTERS {
        let id = counter(n);
        let stream = StreamId::new("Counter", id.to_string());
        let events = (1..=backlog)
            .map(|count| {
                let event = Bumped { id: id.clone(), count };
                Envelope::new(event.into(), stream.clone(), Cause::command(uuid::Uuid::now_v7())).unwrap()
            })
            .collect();
        let state = format!(r#"{{"id":"{id}","count":{backlog}}}"#);
        let commit =
            Commit { stream, expected_version: 0, advance: 1, state: Some(state.into()), events, snapshot: None };
        store
            .commit(Batch { commits: vec![commit], handled: None, delivered: vec![], ..Batch::default() })
            .await
            .unwrap();
    }

    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .env(CHILD, &url)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("a child starts")
        })
        .collect();
    let mut committed = 0u32;
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "a child failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        let count = stdout.split("committed ").nth(1).and_then(|rest| rest.split_whitespace().next());
        committed += count.and_then(|c| c.parse::<u32>().ok()).expect("the child's count");
    }
    assert_eq!(committed, 2 * COMMANDS_PER_CHILD, "with retries every command gets through");

    let domain = domain_on(&url).await;
    assert!(domain.deliver_pending().await.unwrap().all_delivered().is_ok());
    let mut total = 0;
    for n in 0..COUNTERS {
        let id = counter(n);
        let count = domain.get(&id).await.unwrap().unwrap().count;
        let events = domain.events_of(&id).await.unwrap();
        assert_eq!(events.len() as u32, count, "state and events agree for {id}");
        assert_eq!(domain.get(&id.cast::<Tally>()).await.unwrap().unwrap().seen, count, "each event counted once");
        total += count;
    }
    assert_eq!(total, COUNTERS as u32 * backlog + committed, "no update lost");
    let handled: i64 = sqlx::query_scalar("SELECT count(*) FROM protean_handled WHERE handler = 'Tallying::count'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(handled, i64::from(total), "one handled record per event");
    let undelivered: i64 = sqlx::query_scalar("SELECT count(*) FROM protean_events WHERE NOT delivered")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(undelivered, 0);
}

/// The child of the test below: claims every undelivered event for the default 30 s
/// lease, says how many, and waits, alive, without delivering them.
async fn claim_child(url: String) {
    let store = PostgresStore::connect_with(&url, 1).await.expect("connects");
    let claimed = store.claim_undelivered(100, Duration::from_secs(30)).await.expect("claimed");
    println!("claimed {}", claimed.len());
    std::future::pending::<()>().await;
}

/// How many of the counter's events the tally has seen (0 before any).
async fn seen(domain: &Domain, id: &Identifier<Counter>) -> u32 {
    domain.get(&id.cast::<Tally>()).await.unwrap().map_or(0, |t| t.seen)
}

/// A live process's claims are respected; once it is killed, another process takes them
/// over at once, not after their 30 s lease: a claim is free when its owner no longer
/// holds its advisory lock.
async fn a_killed_process_claims_are_free_at_once_and_a_live_process_claims_are_kept(url: String) {
    let store = PostgresStore::connect_with(&url, 2).await.unwrap();
    let id = counter(0);
    undelivered_bumps(&store, &id).await;

    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CLAIM_CHILD, &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the child starts");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let claimed: usize = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.split_once("claimed ").and_then(|(_, n)| n.trim().parse().ok()))
        .expect("the child claimed");
    assert_eq!(claimed, 3);

    // The child lives: its claims hold, for this process's relay and for a plain claim.
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::lab")
        .store(PostgresStore::connect_with(&url, 4).await.unwrap())
        .build()
        .expect("the lab model is valid"); // the default lease: 30 s
    let _ = domain.deliver_pending().await.unwrap();
    assert_eq!(seen(&domain, &id).await, 0, "a live process's claims are respected");
    assert!(store.claim_undelivered(10, Duration::from_secs(30)).await.unwrap().is_empty());

    // Killed: its connection closes and the server drops its lock (a moment later).
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let killed = Instant::now();
    while seen(&domain, &id).await < 3 && killed.elapsed() < Duration::from_secs(10) {
        let _ = domain.deliver_pending().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen(&domain, &id).await, 3, "the killed process's claims were taken over");
    assert!(killed.elapsed() < Duration::from_secs(10), "long before the 30 s lease ran out");
    let undelivered: i64 = sqlx::query_scalar("SELECT count(*) FROM protean_events WHERE NOT delivered")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(undelivered, 0);
}

fn main() -> ExitCode {
    if let Ok(url) = std::env::var(CHILD) {
        harness::runtime().block_on(processes_child(url));
        return ExitCode::SUCCESS;
    }
    if let Ok(url) = std::env::var(CLAIM_CHILD) {
        harness::runtime().block_on(claim_child(url));
        return ExitCode::SUCCESS;
    }
    harness::run(vec![
        harness::postgres::test(
            "two_processes_lose_no_update_and_handle_each_event_once",
            two_processes_lose_no_update_and_handle_each_event_once,
        ),
        harness::postgres::test(
            "a_killed_process_claims_are_free_at_once_and_a_live_process_claims_are_kept",
            a_killed_process_claims_are_free_at_once_and_a_live_process_claims_are_kept,
        ),
    ])
}
