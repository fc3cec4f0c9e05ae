//! `SqliteStore` runs SQLite on threads of its own: a commit waiting for SQLite's write
//! lock holds up no other task of the runtime, and reads answer meanwhile (WAL); the
//! threads end with the store. And a store opened without migrating requires the
//! current schema.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use protean::store::{
    Batch, Commit, Outbox, Records, SchemaVersion, SqliteStore, StoreError, StreamId, SQLITE_SCHEMA_VERSION,
};

/// The tests here count the store's threads: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A database file in a fresh directory (removed by the test at its end).
fn scratch_db() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("protean-threads-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("store.db")
}

fn remove(db: &std::path::Path) {
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

fn counter(stream: &StreamId, expected_version: u64, count: u32) -> Batch {
    let commit = Commit {
        stream: stream.clone(),
        expected_version,
        advance: 1,
        state: Some(format!(r#"{{"count":{count}}}"#).into()),
        events: vec![],
        snapshot: None,
    };
    Batch { commits: vec![commit], handled: None, delivered: vec![], ..Batch::default() }
}

/// Another connection holds SQLite's write lock; the store's commit waits for it, on the
/// store's writer thread. Meanwhile a ticker on the same (one-thread) runtime keeps
/// ticking, and a read through the store answers. Once the lock is released the commit
/// completes.
#[test]
fn a_commit_waiting_for_the_write_lock_holds_up_no_other_task() {
    let _serial = serial();
    let db = scratch_db();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&db).unwrap();
        let s = StreamId::new("Counter", "c-1");
        store.commit(counter(&s, 0, 1)).await.unwrap();

        let raw = rusqlite::Connection::open(&db).unwrap();
        raw.execute_batch("BEGIN IMMEDIATE").unwrap();

        let ticks = Arc::new(AtomicU32::new(0));
        let ticker = tokio::spawn({
            let ticks = Arc::clone(&ticks);
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let waiting = tokio::spawn({
            let (store, s) = (store.clone(), s.clone());
            async move { store.commit(counter(&s, 1, 2)).await }
        });

        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (elapsed, ticked) = (started.elapsed(), ticks.load(Ordering::Relaxed));
        assert!(elapsed < Duration::from_secs(2), "the runtime's thread was blocked: 500 ms took {elapsed:?}");
        assert!(ticked >= 20, "the ticker ticked {ticked} times in {elapsed:?}");
        assert!(!waiting.is_finished(), "the commit waits for the lock");

        // The writer thread is busy waiting; a reader connection answers (WAL).
        let read = tokio::time::timeout(Duration::from_secs(1), store.load(&s)).await;
        let record = read.expect("a read answers while the write lock is held").unwrap().unwrap();
        assert_eq!((record.version, &*record.state), (1, r#"{"count":1}"#));

        raw.execute_batch("COMMIT").unwrap();
        let committed = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        let committed = committed.expect("the commit completes once the lock is free").unwrap().unwrap();
        assert_eq!(committed[0].version, 2);
        assert_eq!(store.load(&s).await.unwrap().unwrap().version, 2);
        assert!(ticks.load(Ordering::Relaxed) > ticked);
        ticker.abort();
    });
    remove(&db);
}

/// The store's threads: those named `protean-sqlite…` (Linux shows the first 15 bytes).
#[cfg(target_os = "linux")]
fn sqlite_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("protean-sqlite"))
        .count()
}

#[cfg(target_os = "linux")]
fn eventually(what: &str, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < Duration::from_secs(5), "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A file store runs a writer and two readers, an in-memory one only a writer; they end
/// when the last clone of their store is dropped.
#[cfg(target_os = "linux")]
#[test]
fn the_threads_end_with_the_last_clone_of_the_store() {
    let _serial = serial();
    let db = scratch_db();
    eventually("no store threads are left from other tests", || sqlite_threads() == 0);
    let store = SqliteStore::open(&db).unwrap();
    eventually("a writer and two readers run", || sqlite_threads() == 3);
    let clone = store.clone();
    drop(store);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(sqlite_threads(), 3, "a clone keeps them");
    drop(clone);
    eventually("the threads end with the last clone", || sqlite_threads() == 0);

    let in_memory = SqliteStore::in_memory().unwrap();
    eventually("an in-memory store runs only a writer", || sqlite_threads() == 1);
    drop(in_memory);
    eventually("its writer ends", || sqlite_threads() == 0);
    remove(&db);
}

fn user_version(path: &std::path::Path) -> i64 {
    let raw = rusqlite::Connection::open(path).unwrap();
    raw.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap()
}

/// Opening without migrating needs a file of exactly the current schema: a missing file
/// is not created, and a file without the schema or of another version is refused with
/// both versions, untouched.
#[test]
fn opening_without_migrating_needs_the_current_schema() {
    let _serial = serial();
    let path = scratch_db();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();

    let missing = SqliteStore::open_without_migrating(&path).unwrap_err();
    assert!(matches!(missing, StoreError::Backend { backend: "sqlite", .. }), "{missing}");
    assert!(!path.exists(), "opening without migrating creates no file");

    // A file without protean's tables.
    rusqlite::Connection::open(&path).unwrap().execute_batch("CREATE TABLE other (n INTEGER)").unwrap();
    let error = SqliteStore::open_without_migrating(&path).unwrap_err();
    assert_eq!(
        error,
        StoreError::Schema { backend: "sqlite", found: SchemaVersion(0), supported: SQLITE_SCHEMA_VERSION }
    );
    assert!(error.to_string().contains("migrate it first"), "{error}");
    assert_eq!(user_version(&path), 0, "refused, the file is untouched");

    // Migrated apart (a role that may change tables), then opened without migrating.
    drop(SqliteStore::open(&path).unwrap());
    assert_eq!(user_version(&path), i64::from(SQLITE_SCHEMA_VERSION.0));
    let store = SqliteStore::open_without_migrating(&path).unwrap();
    let s = StreamId::new("Counter", "c-1");
    runtime.block_on(async {
        store.commit(counter(&s, 0, 1)).await.unwrap();
        store.migrate().await.unwrap(); // the explicit migration: nothing left to do
        assert_eq!(store.schema_version().await.unwrap(), SQLITE_SCHEMA_VERSION);
        assert_eq!(store.load(&s).await.unwrap().unwrap().version, 1);
    });
    drop(store);

    // A file a later protean wrote: refused both ways.
    let newer = SchemaVersion(SQLITE_SCHEMA_VERSION.0 + 1);
    rusqlite::Connection::open(&path).unwrap().pragma_update(None, "user_version", newer.0).unwrap();
    let expected = StoreError::Schema { backend: "sqlite", found: newer, supported: SQLITE_SCHEMA_VERSION };
    assert_eq!(SqliteStore::open_without_migrating(&path).unwrap_err(), expected);
    assert_eq!(SqliteStore::open(&path).unwrap_err(), expected);
    remove(&path);
}

/// The `-wal` and `-shm` files beside the database file `db`, with their sizes (`None`:
/// no such file).
fn wal_files(db: &std::path::Path) -> (Option<u64>, Option<u64>) {
    let size = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        std::fs::metadata(PathBuf::from(name)).ok().map(|m| m.len())
    };
    (size("-wal"), size("-shm"))
}

/// Commits sent before `close` are committed; `close` answers once the WAL is
/// checkpointed and the connections closed, which leaves no `-wal` or `-shm` file; from
/// then on every call, on any clone, is `StoreError::Closed`, and closing again answers
/// as the first close did. Reopening the file sees every commit.
#[test]
fn closing_commits_what_was_sent_and_leaves_no_wal_file() {
    let _serial = serial();
    let db = scratch_db();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    const COUNTERS: u32 = 200;
    runtime.block_on(async {
        let store = SqliteStore::open(&db).unwrap();
        let clone = store.clone();
        let stream = |n: u32| StreamId::new("Counter", format!("c-{n}"));
        // Sent (a commit is queued when called), not awaited yet.
        let sent: Vec<_> = (0..COUNTERS).map(|n| store.commit(counter(&stream(n), 0, n))).collect();
        let grouped = store.commit_group(vec![counter(&stream(COUNTERS), 0, 1), counter(&stream(0), 0, 2)]);
        assert_eq!(wal_files(&db).0.map(|size| size > 0), Some(true), "the store writes through its WAL");

        store.close().await.unwrap();
        for outcome in futures_all(sent).await {
            assert_eq!(outcome.unwrap()[0].version, 1, "a commit sent before close is committed");
        }
        let grouped = grouped.await;
        assert!(grouped[0].is_ok());
        assert!(matches!(grouped[1], Err(StoreError::Conflict(_))), "each unit keeps its own outcome");
        assert_eq!(wal_files(&db), (None, None), "closing removes the -wal and -shm files");

        let closed = StoreError::Closed { backend: "sqlite" };
        assert_eq!(clone.load(&stream(1)).await.unwrap_err(), closed);
        assert_eq!(clone.commit(counter(&stream(1), 1, 2)).await.unwrap_err(), closed);
        assert_eq!(store.commit_group(vec![counter(&stream(1), 1, 2)]).await[0].as_ref().unwrap_err(), &closed);
        assert_eq!(store.claim_undelivered(10, Duration::from_secs(1)).await.unwrap_err(), closed);
        assert_eq!(closed.to_string(), "the sqlite store is closed: open it again to use it");
        clone.close().await.unwrap();
        Records::close(&store).await.unwrap();
        drop((store, clone));

        let reopened = SqliteStore::open(&db).unwrap();
        for n in 0..=COUNTERS {
            assert_eq!(reopened.load(&stream(n)).await.unwrap().unwrap().version, 1, "counter {n}");
        }
        reopened.close().await.unwrap();
    });
    remove(&db);
}

/// Awaits every future, in order.
async fn futures_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut outputs = Vec::with_capacity(futures.len());
    for future in futures {
        outputs.push(future.await);
    }
    outputs
}

/// Closing ends the store's threads (a file store's writer and readers, an in-memory
/// store's writer), though clones of the store are still there.
#[cfg(target_os = "linux")]
#[test]
fn closing_ends_the_threads_while_clones_live() {
    let _serial = serial();
    let db = scratch_db();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    eventually("no store threads are left from other tests", || sqlite_threads() == 0);
    let store = SqliteStore::open(&db).unwrap();
    let clone = store.clone();
    eventually("a writer and two readers run", || sqlite_threads() == 3);
    runtime.block_on(store.close()).unwrap();
    eventually("closing ends them", || sqlite_threads() == 0);
    let in_memory = SqliteStore::in_memory().unwrap();
    eventually("an in-memory store runs a writer", || sqlite_threads() == 1);
    runtime.block_on(in_memory.close()).unwrap();
    eventually("closing ends it", || sqlite_threads() == 0);
    let s = StreamId::new("Counter", "c-1");
    let refused = runtime.block_on(in_memory.commit(counter(&s, 0, 1))).unwrap_err();
    assert_eq!(refused, StoreError::Closed { backend: "sqlite" });
    drop((store, clone, in_memory));
    remove(&db);
}

/// Dropping the last clone without closing does the same, unawaited: once the threads
/// have ended, the WAL is checkpointed and its files are gone.
#[cfg(target_os = "linux")]
#[test]
fn dropping_the_last_clone_checkpoints_the_wal() {
    let _serial = serial();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    eventually("no store threads are left from other tests", || sqlite_threads() == 0);
    // Several rounds: the readers and the writer end in whatever order their threads
    // run, and the writer's connection must close last for the files to go.
    for round in 0..10 {
        let db = scratch_db();
        let store = SqliteStore::open(&db).unwrap();
        let s = StreamId::new("Counter", "c-1");
        runtime.block_on(async {
            store.commit(counter(&s, 0, 1)).await.unwrap();
            store.load(&s).await.unwrap(); // every reader has read
            store.load(&s).await.unwrap();
        });
        drop(store);
        eventually("the threads end", || sqlite_threads() == 0);
        assert_eq!(wal_files(&db), (None, None), "round {round}: no -wal or -shm file is left");
        let reopened = SqliteStore::open(&db).unwrap();
        assert_eq!(runtime.block_on(reopened.load(&s)).unwrap().unwrap().version, 1);
        runtime.block_on(reopened.close()).unwrap();
        remove(&db);
    }
}

/// Reads and commits racing a close each get their answer or `StoreError::Closed`: never
/// another error, a panic, or no answer.
#[test]
fn work_racing_a_close_is_done_or_refused_as_closed() {
    let _serial = serial();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap();
    for round in 0..20 {
        let db = scratch_db();
        runtime.block_on(async {
            let store = SqliteStore::open(&db).unwrap();
            let s = StreamId::new("Counter", "c-0");
            store.commit(counter(&s, 0, 1)).await.unwrap();
            let workers: Vec<_> = (0..4)
                .map(|worker| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        let mine = StreamId::new("Counter", format!("w-{worker}"));
                        let mut version = 0;
                        for n in 0u32.. {
                            let outcome = if n % 2 == 0 {
                                store.load(&StreamId::new("Counter", "c-0")).await.map(|_| ())
                            } else {
                                store.commit(counter(&mine, version, n)).await.map(|_| version += 1)
                            };
                            match outcome {
                                Ok(()) => {}
                                Err(StoreError::Closed { backend: "sqlite" }) => return version,
                                Err(other) => panic!("round {round}: {other}"),
                            }
                        }
                        unreachable!()
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(5)).await;
            store.close().await.unwrap();
            let mut committed = Vec::new();
            for worker in workers {
                let answered = tokio::time::timeout(Duration::from_secs(5), worker).await;
                committed.push(answered.expect("every call answers").unwrap());
            }
            // What was answered committed is in the file.
            let reopened = SqliteStore::open(&db).unwrap();
            for (worker, version) in committed.into_iter().enumerate() {
                let stored = reopened.load(&StreamId::new("Counter", format!("w-{worker}"))).await.unwrap();
                assert_eq!(stored.map_or(0, |r| r.version), version, "round {round}, worker {worker}");
            }
            reopened.close().await.unwrap();
        });
        remove(&db);
    }
}
