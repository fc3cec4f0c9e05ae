//! What the store benchmarks share: their runtime, scratch folders for SQLite files, and
//! the backends of a run (SQLite always; PostgreSQL with the `postgres` feature and
//! `PROTEAN_POSTGRES_URL`), each opened on a fresh, empty database.

use std::path::PathBuf;
use std::sync::Arc;

use protean::store::{SqliteStore, Store};

/// The runtime of a benchmark: two worker threads, as the machine has two cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime")
}

/// A fresh folder for a SQLite file, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A new, empty folder under the temporary directory.
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("protean-bench-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }

    /// Bytes in the folder: the database file, its WAL and shared memory.
    pub fn size(&self) -> u64 {
        std::fs::read_dir(&self.0)
            .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where a case stores.
#[derive(Clone)]
pub enum Backend {
    /// A SQLite file in a scratch folder.
    Sqlite,
    /// A new database on the PostgreSQL server of this URL.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres(String),
}

/// A store on a fresh database, and what must live as long as it.
pub struct Opened {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The SQLite file's folder.
    pub scratch: Option<Scratch>,
    /// The PostgreSQL database: its URL and its name.
    pub database: Option<(String, String)>,
}

impl Backend {
    /// "SQLite" or "PostgreSQL".
    pub fn label(&self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres(_) => "PostgreSQL",
        }
    }

    /// A store on a fresh database (PostgreSQL: a pool of 8 connections).
    pub async fn fresh_store(&self) -> Opened {
        match self {
            Backend::Sqlite => {
                let scratch = Scratch::new();
                let store = SqliteStore::open(scratch.0.join("bench.db")).expect("opens");
                Opened { store: Arc::new(store), scratch: Some(scratch), database: None }
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(url) => {
                let (db, name) = fresh_database(url).await;
                let store = protean::store::PostgresStore::connect_with(&db, 8).await.expect("connects");
                Opened { store: Arc::new(store), scratch: None, database: Some((db, name)) }
            }
            #[cfg(not(feature = "postgres"))]
            Backend::Postgres(_) => unreachable!("PostgreSQL cases exist with the postgres feature only"),
        }
    }
}

/// A new database on the server of `url`: (its URL, its name).
#[cfg(feature = "postgres")]
pub async fn fresh_database(url: &str) -> (String, String) {
    let admin = sqlx::PgPool::connect(url).await.expect("PROTEAN_POSTGRES_URL answers");
    let name = format!("bench_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("a database");
    admin.close().await;
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    (format!("{base}/{name}"), name)
}

/// The backends of this run of `bench`: SQLite always; PostgreSQL with the feature and
/// the URL (else it says it skips them).
pub fn backends(bench: &str) -> Vec<Backend> {
    let _ = bench;
    #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
    let mut backends = vec![Backend::Sqlite];
    #[cfg(feature = "postgres")]
    match std::env::var("PROTEAN_POSTGRES_URL") {
        Ok(url) => backends.push(Backend::Postgres(url)),
        Err(_) => eprintln!("{bench}: set PROTEAN_POSTGRES_URL to run the PostgreSQL cases too; skipped"),
    }
    #[cfg(not(feature = "postgres"))]
    eprintln!("{bench}: built without the postgres feature; the PostgreSQL cases are skipped");
    backends
}
