//! A store's life as a user meets it: `store::connect` opens only the store a URL names
//! (an unknown scheme is an error that lists the ones this build has, and creates no
//! file), a store's failure says what failed in its message (through `process` too),
//! and `Domain::close` closes the store at the end of a run (SQLite: no `-wal` file
//! left; every store: what was committed is there when opened again, and a closed store
//! refuses work with a typed error). PostgreSQL's trials need `PROTEAN_POSTGRES_URL`.

#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::Trial;
use protean::prelude::*;
use protean::runtime::Domain;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use protean::runtime::ProcessError;
use protean::store::{Store, StoreError, UrlError};

pub mod tally {
    use protean::prelude::*;

    #[aggregate]
    pub struct Tally {
        pub count: u32,
    }

    #[command(part_of = Tally)]
    pub struct Bump {
        pub id: Identifier<Tally>,
    }

    #[event(part_of = Tally)]
    pub struct Bumped {
        pub id: Identifier<Tally>,
        pub count: u32,
    }

    pub struct Tallies;

    #[handler(part_of = Tally)]
    impl Tallies {
        async fn bump(ctx: &mut Context<Tally>, command: Bump) -> Result<(), DomainError> {
            let id = command.id.clone();
            let mut tally = ctx.load_or_add(&id, || Ok(Tally::builder().id(id.clone()).count(0u32).build()?)).await?;
            tally.count += 1;
            let count = tally.count;
            tally.raise(Bumped { id: command.id, count });
            Ok(())
        }
    }
}

use tally::{Bump, Tally};

fn domain(store: std::sync::Arc<dyn Store>) -> Domain {
    Domain::builder().module(concat!(module_path!(), "::tally")).shared_store(store).build().unwrap()
}

/// A fresh, empty directory.
fn scratch_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("protean-lifecycle-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Unknown schemes are refused with an error that lists what this build opens, and
/// `memory` in any spelling is the memory store: none of them creates a file. Schemes
/// are read whatever their case; a bare path is a SQLite file.
async fn connect_opens_only_the_store_a_url_names() {
    let dir = scratch_dir();
    // Relative paths land in the working directory: this trial is the only one here that
    // uses any.
    let before = std::env::current_dir().unwrap();
    std::env::set_current_dir(&dir).unwrap();
    for url in ["mysql://x", "MySQL://db.internal/shop", "weird:name.db", "sqlite3:app.db"] {
        let error = protean::store::connect(url).await.err().expect("refused");
        let scheme = url.split_once(':').unwrap().0;
        assert_eq!(error, StoreError::Url(UrlError::UnknownScheme { scheme: scheme.into() }), "{url}");
        let message = error.to_string();
        assert!(message.starts_with(&format!("no store has the URL scheme `{scheme}:`")), "{message}");
        assert!(message.contains("`memory:`"), "{message}");
        if cfg!(feature = "sqlite") {
            assert!(message.contains("`sqlite:PATH` (or a bare path)"), "{message}");
        } else {
            assert!(message.contains("`sqlite:` with the `sqlite` feature"), "{message}");
        }
        if cfg!(feature = "postgres") {
            assert!(message.contains("`postgres://…`"), "{message}");
        } else {
            assert!(message.contains("`postgres://…` with the `postgres` feature"), "{message}");
        }
        assert!(!message.contains("db.internal"), "the rest of the URL (a password, say) is not repeated");
    }
    for url in ["memory", "memory:", "MEMORY:", "Memory://"] {
        let store = protean::store::connect(url).await.unwrap();
        domain(store).process(Bump { id: Identifier::<Tally>::generate() }).await.unwrap().all_delivered().unwrap();
    }
    let refused = protean::store::connect("memory:app.db").await.err();
    assert_eq!(refused, Some(StoreError::Url(UrlError::MemoryWithPath { rest: "app.db".into() })));
    for url in ["sqlite:", "SQLITE://"] {
        let refused = protean::store::connect(url).await.err();
        assert_eq!(refused, Some(StoreError::Url(UrlError::NoPath { url: url.into() })));
    }
    assert_eq!(files_in(&dir), Vec::<String>::new(), "no URL above made a file");

    #[cfg(feature = "sqlite")]
    for (url, file) in [("Sqlite:a.db", "a.db"), ("SQLITE://b.db", "b.db"), ("c.db", "c.db")] {
        let store = protean::store::connect(url).await.unwrap();
        assert!(dir.join(file).exists(), "{url} is the SQLite file {file}");
        store.close().await.unwrap();
    }
    #[cfg(not(feature = "sqlite"))]
    for url in ["sqlite:a.db", "a.db"] {
        let error = protean::store::connect(url).await.err().expect("no SQLite in this build");
        assert!(matches!(error, StoreError::Url(UrlError::NotCompiled { feature: "sqlite", .. })), "{error:?}");
        assert!(error.to_string().contains("enable protean's `sqlite` feature"), "{error}");
    }
    #[cfg(not(feature = "postgres"))]
    {
        let error = protean::store::connect("Postgres://app:secret@db/shop").await.err().expect("no PostgreSQL");
        assert_eq!(
            error.to_string(),
            "`Postgres:` names the PostgreSQL store, which this build does not have: enable protean's `postgres` feature"
        );
    }
    std::env::set_current_dir(before).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A SQLite file that cannot be opened says why in its message, and keeps the driver's
/// error as the source.
#[cfg(feature = "sqlite")]
async fn a_sqlite_failure_says_why() {
    let error = protean::store::SqliteStore::open("/no/such/directory/app.db").unwrap_err();
    let cause = "unable to open database file: /no/such/directory/app.db";
    assert_eq!(error.to_string(), format!("the sqlite store failed: {cause}"));
    let source = std::error::Error::source(&error).expect("the driver's error");
    assert_eq!(source.to_string(), cause);
    let domain_error = DomainError::from(error);
    assert_eq!(domain_error.to_string(), format!("the sqlite store failed: {cause}"));
}

/// A commit the database refuses (here a trigger's error) fails `process` with a message
/// that holds the database's own words, on every store that has a database.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn a_failed_commit_shows_the_cause_through_process(store: std::sync::Arc<dyn Store>, refuse: impl AsyncFnOnce()) {
    let domain = domain(store);
    let id = Identifier::<Tally>::generate();
    domain.process(Bump { id: id.clone() }).await.unwrap().all_delivered().unwrap();
    refuse().await;
    let error = domain.process(Bump { id }).await.unwrap_err();
    assert!(matches!(error, ProcessError::Store(StoreError::Backend { .. })), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("store failed: ") && message.contains("refused by a trigger"), "{message}");
    let source = std::error::Error::source(&error).expect("the driver's error is still the source");
    assert!(source.to_string().contains("refused by a trigger"), "{source}");
}

#[cfg(feature = "sqlite")]
async fn sqlite_commit_failure() {
    let dir = scratch_dir();
    let path = dir.join("app.db");
    let store = std::sync::Arc::new(protean::store::SqliteStore::open(&path).unwrap());
    a_failed_commit_shows_the_cause_through_process(store, async || {
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON protean_events BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END",
        )
        .unwrap();
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "postgres")]
async fn postgres_commit_failure(url: String) {
    let store = std::sync::Arc::new(protean::store::PostgresStore::connect(&url).await.unwrap());
    let pool = store.pool().clone();
    a_failed_commit_shows_the_cause_through_process(store, async move || {
        sqlx::raw_sql(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN RAISE EXCEPTION 'refused by a trigger'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON protean_events FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .execute(&pool)
        .await
        .unwrap();
    })
    .await;
}

/// `Domain::close` at the end of a run: the SQLite file is left without its `-wal` and
/// `-shm` files, a later `process` (on any clone of the domain) fails with
/// `StoreError::Closed`, saying so, and a domain on the file opened again finds every
/// commit.
#[cfg(feature = "sqlite")]
async fn closing_a_sqlite_domain_leaves_the_file_complete() {
    let dir = scratch_dir();
    let url = format!("sqlite:{}", dir.join("app.db").display());
    let domain = domain(protean::store::connect(&url).await.unwrap());
    let id = Identifier::<Tally>::generate();
    for _ in 0..20 {
        domain.process(Bump { id: id.clone() }).await.unwrap().all_delivered().unwrap();
    }
    assert!(files_in(&dir).contains(&"app.db-wal".to_owned()), "{:?}", files_in(&dir));
    let clone = domain.clone();
    domain.close().await.unwrap();
    assert_eq!(files_in(&dir), ["app.db"], "no -wal or -shm file is left");

    let error = clone.process(Bump { id: id.clone() }).await.unwrap_err();
    assert_eq!(error, ProcessError::Store(StoreError::Closed { backend: "sqlite" }));
    assert_eq!(error.to_string(), "the sqlite store is closed: open it again to use it");
    assert_eq!(clone.get(&id).await.unwrap_err(), ProcessError::Store(StoreError::Closed { backend: "sqlite" }));
    clone.close().await.unwrap();
    drop((domain, clone));

    let reopened = self::domain(protean::store::connect(&url).await.unwrap());
    assert_eq!(reopened.get(&id).await.unwrap().unwrap().count, 20);
    assert_eq!(reopened.events_of(&id).await.unwrap().len(), 20);
    reopened.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `Domain::close` on PostgreSQL: later calls fail with `StoreError::Closed`; another
/// store finds every commit.
#[cfg(feature = "postgres")]
async fn closing_a_postgres_domain(url: String) {
    let domain = domain(protean::store::connect(&url).await.unwrap());
    let id = Identifier::<Tally>::generate();
    for _ in 0..5 {
        domain.process(Bump { id: id.clone() }).await.unwrap().all_delivered().unwrap();
    }
    domain.close().await.unwrap();
    let error = domain.process(Bump { id: id.clone() }).await.unwrap_err();
    assert_eq!(error, ProcessError::Store(StoreError::Closed { backend: "postgres" }));
    assert_eq!(error.to_string(), "the postgres store is closed: open it again to use it");
    let other = self::domain(protean::store::connect(&url).await.unwrap());
    assert_eq!(other.get(&id).await.unwrap().unwrap().count, 5);
    other.close().await.unwrap();
}

/// The memory store has nothing to release: closing it changes nothing, and it stays
/// usable (as `Store::close` documents).
async fn closing_a_memory_domain_keeps_it_usable() {
    let domain = domain(protean::store::connect("memory:").await.unwrap());
    let id = Identifier::<Tally>::generate();
    domain.process(Bump { id: id.clone() }).await.unwrap().all_delivered().unwrap();
    domain.close().await.unwrap();
    domain.process(Bump { id: id.clone() }).await.unwrap().all_delivered().unwrap();
    assert_eq!(domain.get(&id).await.unwrap().unwrap().count, 2);
}

fn main() -> std::process::ExitCode {
    #[allow(unused_mut)]
    let mut trials: Vec<Trial> = vec![
        harness::test("connect_opens_only_the_store_a_url_names", connect_opens_only_the_store_a_url_names),
        harness::test("memory::closing_a_domain_keeps_it_usable", closing_a_memory_domain_keeps_it_usable),
    ];
    #[cfg(feature = "sqlite")]
    trials.extend([
        harness::test("sqlite::a_failure_says_why", a_sqlite_failure_says_why),
        harness::test("sqlite::a_failed_commit_shows_the_cause_through_process", sqlite_commit_failure),
        harness::test(
            "sqlite::closing_a_domain_leaves_the_file_complete",
            closing_a_sqlite_domain_leaves_the_file_complete,
        ),
    ]);
    #[cfg(feature = "postgres")]
    trials.extend([
        harness::postgres::test("postgres::a_failed_commit_shows_the_cause_through_process", postgres_commit_failure),
        harness::postgres::test("postgres::closing_a_domain", closing_a_postgres_domain),
    ]);
    harness::run(trials)
}
