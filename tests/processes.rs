//! Several processes on one PostgreSQL database: two processes processing commands for
//! the same aggregates never lose an update, and with two relays running, each outbox
//! event's effect happens once per handler. Needs `PROTEAN_POSTGRES_URL` (required in
//! CI through `PROTEAN_REQUIRE_POSTGRES=1`).

#[path = "support/lab.rs"]
#[allow(dead_code)]
mod lab;
#[path = "support/postgres.rs"]
mod pg;

use std::process::{Command, Stdio};
use std::sync::Arc;

use lab::*;
use protean::envelope::{Cause, Envelope, StreamId};
use protean::prelude::*;
use protean::store::{Batch, Commit, PostgresStore, Store};

const CHILD: &str = "PROTEAN_PROCESSES_CHILD_URL";
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_child() {
    let Ok(url) = std::env::var(CHILD) else { return };
    let domain = domain_on(&url).await;
    let relay = {
        let domain = domain.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                domain.deliver_pending().await.expect("relayed");
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
    domain.deliver_pending().await.expect("relayed");
    println!("committed {committed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_lose_no_update_and_handle_each_event_once() {
    let Some(url) = pg::fresh_database().await else { return };
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
        store.commit(Batch { commits: vec![commit], handled: None, delivered: vec![] }).await.unwrap();
    }

    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "processes_child", "--nocapture", "--test-threads=1"])
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
    domain.deliver_pending().await.unwrap();
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
