//! `SqliteStore` commits the units of work waiting for its writer as one group, in one
//! transaction: many concurrent commits are grouped (the writer's `debug` event says how
//! many units each group had), each keeps its own outcome (of the tasks racing to create
//! one stream exactly one wins), and every answered success is in the file once the
//! store is dropped and opened again. With `group_commit(false)` every group has one unit
//! and the outcomes are the same.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use protean::store::{
    Batch, Commit, Committed, Envelope, OffsetDateTime, Outbox, Records, SqliteStore, StoreError, StreamId,
};
use tracing::field::{Field, Visit};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// How many tasks commit at once.
const TASKS: usize = 64;
/// How many of them race to create the one shared stream; the others each write their own.
const RACERS: usize = 16;

/// The unit counts of the groups the writers committed, from their `debug` events.
fn groups() -> &'static Mutex<Vec<u64>> {
    static GROUPS: OnceLock<Mutex<Vec<u64>>> = OnceLock::new();
    GROUPS.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(GroupSizes))
            .expect("the only global subscriber of this test binary");
        Mutex::new(Vec::new())
    })
}

/// Records the `units` field of the SQLite writer's group commit events.
struct GroupSizes;

struct Units(Option<u64>);

impl Visit for Units {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "units" {
            self.0 = Some(value);
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

impl<S: Subscriber> Layer<S> for GroupSizes {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if !event.metadata().target().starts_with("protean_core::store::sqlite") {
            return;
        }
        let mut units = Units(None);
        event.record(&mut units);
        if let Some(units) = units.0 {
            groups().lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(units);
        }
    }
}

/// One test at a time: they read the group sizes every writer reports.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    let guard = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    groups().lock().unwrap().clear();
    guard
}

fn scratch_db() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("protean-group-commit-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("store.db")
}

/// Task `n`'s unit of work: a new counter with one event, on the shared stream for the
/// first [`RACERS`] tasks, on a stream of its own for the others.
fn unit(n: usize) -> Batch {
    let id = if n < RACERS { "shared".to_owned() } else { format!("own-{n}") };
    let stream = StreamId::new("Counter", id);
    let payload = format!(r#"{{"task":{n}}}"#);
    let cause = uuid::Uuid::now_v7();
    let recorded_at = OffsetDateTime::now_utc();
    let event = Envelope::stored_event(
        uuid::Uuid::now_v7(),
        "Counter.Created".into(),
        1,
        stream.clone(),
        0,
        recorded_at,
        cause,
        cause,
        payload.clone().into(),
    );
    let commit = Commit {
        stream,
        expected_version: 0,
        advance: 1,
        state: Some(payload.into()),
        events: vec![event],
        snapshot: None,
    };
    Batch { commits: vec![commit], ..Batch::default() }
}

/// [`TASKS`] tasks on a multi-thread runtime each commit their unit at once, while
/// another connection holds SQLite's write lock, so that they all wait in the writer's
/// queue; then the lock is released. The outcomes, by task.
fn race(store: &SqliteStore, db: &Path) -> Vec<Result<Vec<Committed>, StoreError>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    let raw = rusqlite::Connection::open(db).unwrap();
    raw.execute_batch("BEGIN IMMEDIATE").unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|n| {
            let (store, sent) = (store.clone(), Arc::clone(&sent));
            runtime.spawn(async move {
                let answer = store.commit(unit(n));
                sent.fetch_add(1, Ordering::SeqCst);
                answer.await
            })
        })
        .collect();
    // Every commit is queued (the writer waits for the lock with the first of them).
    let started = Instant::now();
    while sent.load(Ordering::SeqCst) < TASKS {
        assert!(started.elapsed() < Duration::from_secs(5), "the tasks sent their commits");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(50));
    raw.execute_batch("ROLLBACK").unwrap();
    runtime.block_on(async {
        let mut outcomes = Vec::with_capacity(TASKS);
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        outcomes
    })
}

/// Exactly one racer created the shared stream, the others conflict (expected 0, found
/// 1), every other task committed; after reopening the file, each success is there.
fn check(db: &Path, outcomes: &[Result<Vec<Committed>, StoreError>]) {
    let winners: Vec<usize> = (0..RACERS).filter(|&n| outcomes[n].is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one task creates the shared stream: {outcomes:?}");
    for (n, outcome) in outcomes.iter().enumerate().take(RACERS).filter(|(n, _)| *n != winners[0]) {
        let Err(StoreError::Conflict(conflict)) = outcome else { panic!("task {n} conflicts: {outcome:?}") };
        assert_eq!((conflict.expected, conflict.actual), (0, 1));
    }
    for outcome in &outcomes[RACERS..] {
        let committed = outcome.as_ref().expect("a task on its own stream commits");
        assert_eq!((committed[0].version, committed[0].events[0].sequence), (1, 1));
    }

    let store = SqliteStore::open(db).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        for (n, outcome) in outcomes.iter().enumerate() {
            let Ok(committed) = outcome else { continue };
            let stream = &committed[0].stream;
            let record = store.load(stream).await.unwrap().expect("a success is in the file");
            assert_eq!((record.version, &*record.state), (1, &*format!(r#"{{"task":{n}}}"#)));
            let events = store.stream(stream).await.unwrap();
            assert_eq!(events.len(), 1, "{stream} has its one event");
            assert_eq!(events[0].id, committed[0].events[0].id);
        }
        let status = store.outbox_status().await.unwrap();
        assert_eq!(status.undelivered, (TASKS - RACERS + 1) as u64, "no conflicting unit wrote its event");
    });
}

#[test]
fn concurrent_commits_are_grouped_and_each_keeps_its_own_outcome() {
    let _serial = serial();
    let db = scratch_db();
    let store = SqliteStore::open(&db).unwrap();
    let outcomes = race(&store, &db);
    drop(store);
    let groups = groups().lock().unwrap().clone();
    assert_eq!(groups.iter().sum::<u64>(), TASKS as u64, "every unit was in one group: {groups:?}");
    assert!(groups.len() < TASKS / 2, "the queued commits were grouped: {groups:?}");
    check(&db, &outcomes);
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

#[test]
fn without_grouping_each_commit_is_its_own_transaction_with_the_same_outcomes() {
    let _serial = serial();
    let db = scratch_db();
    let store = SqliteStore::options().group_commit(false).open(&db).unwrap();
    let outcomes = race(&store, &db);
    drop(store);
    let groups = groups().lock().unwrap().clone();
    assert_eq!(groups, vec![1; TASKS], "one unit per transaction");
    check(&db, &outcomes);
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}
