//! Group commit on PostgreSQL: several units of work's batches in one statement and one
//! transaction, each in a subtransaction of its own, so that a batch that conflicts, was
//! already handled or fails otherwise fails alone and writes nothing, while the others
//! commit; and concurrent `commit`s, grouped by the store's writers, keep every check a
//! commit alone makes. Needs `PROTEAN_POSTGRES_URL` (required in CI through
//! `PROTEAN_REQUIRE_POSTGRES=1`).

#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "support/lab.rs"]
#[allow(dead_code)]
mod lab;

use std::collections::HashMap;

use lab::*;
use protean::prelude::*;
use protean::store::{
    Batch, Cause, Commit, Committed, Envelope, Handled, PostgresStore, ProjectionSpec, RowChange, StoreError, StreamId,
    VersionConflict,
};
use uuid::Uuid;

fn stream(id: &str) -> StreamId {
    StreamId::new("Counter", id.to_owned())
}

/// A commit of counter `id` expected at `expected`, with one event per count.
fn commit(id: &str, expected: u64, counts: &[u32]) -> Commit {
    let s = stream(id);
    let identifier = Identifier::<Counter>::parse(id).unwrap();
    let events = counts
        .iter()
        .map(|&count| {
            let bumped = Bumped { id: identifier.clone(), count };
            Envelope::new(bumped.into(), s.clone(), Cause::command(Uuid::now_v7())).unwrap()
        })
        .collect();
    let state = format!(r#"{{"at":{expected}}}"#);
    Commit { stream: s, expected_version: expected, advance: 1, state: Some(state.into()), events, snapshot: None }
}

fn batch(commits: Vec<Commit>) -> Batch {
    Batch { commits, ..Batch::default() }
}

fn row(key: &str, expected: u64, json: Option<&str>) -> RowChange {
    RowChange {
        projection: "Tally".into(),
        generation: 1,
        key: key.to_owned(),
        expected_version: expected,
        json: json.map(Into::into),
    }
}

/// A committed aggregate's id, its version and its events' (id, sequence).
type Written = (String, u64, Vec<(Uuid, u64)>);

/// What each committed aggregate wrote.
fn written(committed: &[Committed]) -> Vec<Written> {
    committed
        .iter()
        .map(|c| (c.stream.id.to_string(), c.version, c.events.iter().map(|e| (e.id, e.sequence)).collect()))
        .collect()
}

fn ids(commit: &Commit) -> Vec<Uuid> {
    commit.events.iter().map(|e| e.id).collect()
}

async fn count(store: &PostgresStore, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(store.pool()).await.unwrap()
}

/// A group of six: two commit, one conflicts on an aggregate's version, one was already
/// handled, one conflicts on a row's version, one fails in the database (bad JSON). Each
/// failure is the error a commit alone gets, and writes nothing (no events, no rows, no
/// handled record); the two committed are durable, as another connection reads them.
async fn a_group_answers_each_batch_alone(url: String) {
    let store = PostgresStore::connect_with(&url, 4).await.unwrap();
    store.register_projection(ProjectionSpec { name: "Tally".into(), version: 1, indexed: vec![] }).await.unwrap();
    // Counter b at version 1, and a message handled already.
    store.commit(batch(vec![commit("b", 0, &[1])])).await.unwrap();
    let handled = Handled::event("Tallying::count", Uuid::now_v7());
    store.commit(Batch { handled: Some(handled.clone()), ..Batch::default() }).await.unwrap();
    let events_before = count(&store, "SELECT count(*) FROM protean_events").await;

    let a = commit("a", 0, &[1, 2]);
    let b = commit("b", 3, &[5]);
    let c = commit("c", 0, &[7]);
    let d = commit("d", 0, &[9]);
    let e = commit("e", 0, &[11]);
    let f = commit("f", 0, &[13]);
    let (a_ids, d_ids) = (ids(&a), ids(&d));
    let a_batch = Batch {
        commits: vec![a],
        rows: vec![row("a", 0, Some(r#"{"n":1}"#))],
        handled: Some(Handled::event("Tallying::count", Uuid::now_v7())),
        ..Batch::default()
    };
    let b_batch = Batch { commits: vec![b], rows: vec![row("b", 0, Some("{}"))], ..Batch::default() };
    let c_batch = Batch {
        commits: vec![c],
        rows: vec![row("c", 0, Some("{}"))],
        handled: Some(handled.clone()),
        ..Batch::default()
    };
    let d_batch = Batch { commits: vec![d], rows: vec![row("d", 0, Some(r#"{"n":4}"#))], ..Batch::default() };
    let e_batch = Batch { commits: vec![e], rows: vec![row("e", 2, Some("{}"))], ..Batch::default() };
    let f_batch = Batch { commits: vec![f], rows: vec![row("f", 0, Some("not json"))], ..Batch::default() };

    let mut outcomes = store.commit_group(vec![a_batch, b_batch, c_batch, d_batch, e_batch, f_batch]).await.into_iter();
    let a_out = outcomes.next().unwrap().unwrap();
    assert_eq!(written(&a_out), [("a".to_owned(), 1, vec![(a_ids[0], 1), (a_ids[1], 2)])]);
    let b_out = outcomes.next().unwrap().unwrap_err();
    assert_eq!(b_out, StoreError::Conflict(VersionConflict { stream: stream("b"), expected: 3, actual: 1 }));
    let c_out = outcomes.next().unwrap().unwrap_err();
    assert_eq!(c_out, StoreError::AlreadyHandled { handler: "Tallying::count".into(), message_id: handled.message_id });
    let d_out = outcomes.next().unwrap().unwrap();
    assert_eq!(written(&d_out), [("d".to_owned(), 1, vec![(d_ids[0], 1)])]);
    let e_out = outcomes.next().unwrap().unwrap_err();
    assert_eq!(
        e_out,
        StoreError::Conflict(VersionConflict { stream: StreamId::new("Tally", "e"), expected: 2, actual: 0 })
    );
    let f_out = outcomes.next().unwrap().unwrap_err();
    assert!(matches!(&f_out, StoreError::Backend { backend: "postgres", .. }), "{f_out:?}");
    assert!(f_out.to_string().contains("22P02") || format!("{f_out:?}").contains("22P02"), "{f_out:?}");
    assert!(outcomes.next().is_none());

    // The refused wrote nothing: no events, no rows, no aggregates, no handled records.
    assert_eq!(count(&store, "SELECT count(*) FROM protean_events").await, events_before + 3);
    for id in ["c", "e", "f"] {
        assert_eq!(store.load(&stream(id)).await.unwrap(), None, "{id}");
        assert!(store.stream(&stream(id)).await.unwrap().is_empty(), "{id}");
    }
    assert_eq!(store.load(&stream("b")).await.unwrap().unwrap().version, 1);
    assert_eq!(store.stream(&stream("b")).await.unwrap().len(), 1);
    for key in ["b", "c", "e", "f"] {
        assert_eq!(store.projection_row("Tally", None, key).await.unwrap(), None, "{key}");
    }
    assert_eq!(count(&store, "SELECT count(*) FROM protean_handled").await, 2, "the old one and a's");

    // The committed are durable: a new connection reads them.
    drop(store);
    let other = PostgresStore::connect_with(&url, 2).await.unwrap();
    assert_eq!(other.load(&stream("a")).await.unwrap().unwrap().version, 1);
    assert_eq!(
        other.stream(&stream("a")).await.unwrap().iter().map(|e| (e.id, e.sequence)).collect::<Vec<_>>(),
        [(a_ids[0], 1), (a_ids[1], 2)]
    );
    assert_eq!(other.stream(&stream("d")).await.unwrap().iter().map(|e| e.id).collect::<Vec<_>>(), d_ids);
    assert_eq!(other.projection_row("Tally", None, "a").await.unwrap().unwrap().json.as_ref(), r#"{"n": 1}"#);
    assert_eq!(other.projection_row("Tally", None, "d").await.unwrap().unwrap().json.as_ref(), r#"{"n": 4}"#);
}

/// Two batches of one stream in one group commit one after the other: the second sees the
/// first's version and continues its sequence; a third, expecting what the first expected,
/// conflicts with it.
async fn batches_of_one_stream_in_a_group_commit_in_order(url: String) {
    let store = PostgresStore::connect_with(&url, 2).await.unwrap();
    let first = commit("s", 0, &[1]);
    let second = commit("s", 1, &[2, 3]);
    let stale = commit("s", 1, &[4]);
    let (first_ids, second_ids) = (ids(&first), ids(&second));
    let outcomes = store.commit_group(vec![batch(vec![first]), batch(vec![second]), batch(vec![stale])]).await;
    let mut outcomes = outcomes.into_iter();
    assert_eq!(written(&outcomes.next().unwrap().unwrap()), [("s".to_owned(), 1, vec![(first_ids[0], 1)])]);
    assert_eq!(
        written(&outcomes.next().unwrap().unwrap()),
        [("s".to_owned(), 2, vec![(second_ids[0], 2), (second_ids[1], 3)])]
    );
    assert_eq!(
        outcomes.next().unwrap().unwrap_err(),
        StoreError::Conflict(VersionConflict { stream: stream("s"), expected: 1, actual: 2 })
    );
    let stored: Vec<Uuid> = store.stream(&stream("s")).await.unwrap().iter().map(|e| e.id).collect();
    assert_eq!(stored, [first_ids, second_ids].concat());
    assert!(store.commit_group(vec![]).await.is_empty());
}

/// 64 tasks commit at once, through the store's group commit (or, `grouped` false, each
/// alone): eight streams contested by four tasks each, eight handled messages by two
/// tasks each, and the rest alone. Each contested stream and each message has exactly one
/// winner, the losers get the conflict and the repeated message; every success reads back,
/// and nothing of a loser does.
async fn concurrent_commits_keep_every_check(url: String, grouped: bool) {
    let store = PostgresStore::options().max_connections(8).group_commit(grouped).connect(&url).await.unwrap();
    let messages: Vec<Uuid> = (0..8).map(|_| Uuid::now_v7()).collect();
    let tasks: Vec<_> = (0..64usize)
        .map(|n| {
            let store = store.clone();
            let (id, handled) = match n {
                0..32 => (format!("contested-{}", n % 8), None),
                32..48 => (format!("handled-{n}"), Some(Handled::event("Racing::run", messages[n % 8]))),
                _ => (format!("alone-{n}"), None),
            };
            let commit = commit(&id, 0, &[u32::try_from(n).unwrap()]);
            let event = commit.events[0].id;
            tokio::spawn(async move {
                let outcome = store.commit(Batch { commits: vec![commit], handled, ..Batch::default() }).await;
                (id, event, outcome)
            })
        })
        .collect();
    let mut winners: HashMap<String, Uuid> = HashMap::new();
    let (mut conflicts, mut repeated) = (0, 0);
    for task in tasks {
        let (id, event, outcome) = task.await.unwrap();
        match outcome {
            Ok(committed) => {
                assert_eq!(written(&committed), [(id.clone(), 1, vec![(event, 1)])]);
                assert!(winners.insert(id, event).is_none(), "one winner per stream");
            }
            Err(StoreError::Conflict(conflict)) => {
                assert!(id.starts_with("contested-"), "{id}: {conflict:?}");
                assert_eq!((conflict.expected, conflict.actual), (0, 1));
                conflicts += 1;
            }
            Err(StoreError::AlreadyHandled { handler, .. }) => {
                assert_eq!(handler, "Racing::run");
                repeated += 1;
            }
            Err(error) => panic!("{id}: {error:?}"),
        }
    }
    assert_eq!((conflicts, repeated), (24, 8));
    assert_eq!(winners.len(), 8 + 8 + 16);
    for (id, event) in &winners {
        let stored: Vec<Uuid> = store.stream(&stream(id)).await.unwrap().iter().map(|e| e.id).collect();
        assert_eq!(stored, [*event], "{id}");
        assert_eq!(store.load(&stream(id)).await.unwrap().unwrap().version, 1);
    }
    // The handled-message losers wrote nothing either.
    assert_eq!(count(&store, "SELECT count(*) FROM protean_events").await, 32);
    assert_eq!(count(&store, "SELECT count(*) FROM protean_aggregates").await, 32);
    assert_eq!(count(&store, "SELECT count(*) FROM protean_handled").await, 8);
}

/// Callers that stop waiting (their tasks aborted) change nothing for the others: every
/// commit still waited for is answered, and right.
async fn a_caller_that_stops_waiting_does_not_disturb_the_others(url: String) {
    let store = PostgresStore::options().max_connections(4).groups_in_flight(1).connect(&url).await.unwrap();
    let tasks: Vec<_> = (0..48)
        .map(|n| {
            let store = store.clone();
            let commit = commit(&format!("k-{n}"), 0, &[1]);
            let event = commit.events[0].id;
            (n, event, tokio::spawn(async move { store.commit(batch(vec![commit])).await }))
        })
        .collect();
    let mut kept = Vec::new();
    for (n, event, task) in tasks {
        if n % 3 == 0 {
            task.abort();
        } else {
            kept.push((n, event, task));
        }
    }
    for (n, event, task) in kept {
        let committed = task.await.unwrap().unwrap();
        assert_eq!(written(&committed), [(format!("k-{n}"), 1, vec![(event, 1)])]);
        assert_eq!(store.stream(&stream(&format!("k-{n}"))).await.unwrap()[0].id, event);
    }
    // The store goes on committing afterwards.
    store.commit(batch(vec![commit("after", 0, &[1])])).await.unwrap();
}

fn main() -> std::process::ExitCode {
    harness::run(vec![
        harness::postgres::test("a_group_answers_each_batch_alone", a_group_answers_each_batch_alone),
        harness::postgres::test(
            "batches_of_one_stream_in_a_group_commit_in_order",
            batches_of_one_stream_in_a_group_commit_in_order,
        ),
        harness::postgres::test("concurrent_commits_keep_every_check_grouped", |url| {
            concurrent_commits_keep_every_check(url, true)
        }),
        harness::postgres::test("concurrent_commits_keep_every_check_ungrouped", |url| {
            concurrent_commits_keep_every_check(url, false)
        }),
        harness::postgres::test(
            "a_caller_that_stops_waiting_does_not_disturb_the_others",
            a_caller_that_stops_waiting_does_not_disturb_the_others,
        ),
    ])
}
