//! The store conformance suite: the same cases on every store the build has, one file
//! per port of `Store` (`records`, `outbox`, `deliveries`, `projections`, `schedule`) and
//! `domain` for the cases that run a domain on top of a store. Memory always runs; SQLite
//! with the `sqlite` feature; PostgreSQL with the `postgres` feature when
//! `PROTEAN_POSTGRES_URL` is set (reported ignored, with the reason, when it is not), and
//! is required (not skipped) when `PROTEAN_REQUIRE_POSTGRES=1`, as in CI. What only SQLite
//! has is in `tests/sqlite_store.rs`; what only PostgreSQL has, in `tests/postgres_store.rs`.
//!
//! Each case is a trial named `{store}::{port}::{case}`: `cargo test --test conformance
//! outbox::` runs one port's cases on every store.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use protean::prelude::*;
#[cfg(feature = "postgres")]
use protean::store::PostgresStore;
#[cfg(feature = "sqlite")]
use protean::store::SqliteStore;
use protean::store::{Batch, Cause, Commit, Envelope, MemoryStore, OffsetDateTime, Store, StreamId};
use uuid::Uuid;

#[path = "../support/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "../support/lab.rs"]
#[allow(dead_code)]
mod lab;

use harness::Trial;

use lab::*;

/// The module path of the lab model, for `DomainBuilder::module`.
fn lab_module() -> String {
    module_path!().to_string() + "::lab"
}

fn domain_on(store: Arc<dyn Store>) -> Domain {
    Domain::builder()
        .module(lab_module())
        .shared_store(store)
        .delivery_lease(Duration::ZERO)
        .conflict_retries(1_000)
        .build()
        .expect("the lab model is valid")
}

fn stream(aggregate: &'static str, id: &str) -> StreamId {
    StreamId::new(aggregate, id.to_owned())
}

fn state(json: &str) -> Option<Arc<str>> {
    Some(Arc::from(json))
}

fn batch(commits: Vec<Commit>) -> Batch {
    Batch { commits, handled: None, delivered: vec![], ..Batch::default() }
}

fn bumped(id: &Identifier<Counter>, count: u32, stream_id: &StreamId) -> Envelope {
    let event = Bumped { id: id.clone(), count };
    Envelope::new(event.into(), stream_id.clone(), Cause::command(Uuid::now_v7())).unwrap()
}

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + seconds).unwrap()
}

/// One case of the suite, run on the store it is given.
type Case = fn(Arc<dyn Store>) -> Pin<Box<dyn Future<Output = ()>>>;

/// The cases of one port, by name.
type Cases = fn() -> Vec<(&'static str, Case)>;

/// `fn cases()` in the module it is called in: every case listed, by name.
macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        /// Every case of this module, by name.
        pub fn cases() -> Vec<(&'static str, super::Case)> {
            vec![$((stringify!($case), |store| Box::pin($case(store)))),*]
        }
    };
}

mod deliveries;
mod domain;
mod outbox;
mod projections;
mod records;
mod schedule;

/// Every case of the suite, named `{port}::{case}`.
fn every_case() -> Vec<(String, Case)> {
    let ports: [(&str, Cases); 6] = [
        ("records", records::cases),
        ("outbox", outbox::cases),
        ("deliveries", deliveries::cases),
        ("projections", projections::cases),
        ("schedule", schedule::cases),
        ("domain", domain::cases),
    ];
    let named = |(port, cases): (&'static str, Cases)| {
        cases().into_iter().map(move |(name, case)| (format!("{port}::{name}"), case))
    };
    ports.into_iter().flat_map(named).collect()
}

/// The suite on the stores `open` makes, one new store per case, as trials named
/// `{store}::{port}::{case}`.
fn suite(store: &str, open: fn() -> Arc<dyn Store>) -> Vec<Trial> {
    every_case()
        .into_iter()
        .map(|(name, case)| harness::test(format!("{store}::{name}"), move || case(open())))
        .collect()
}

/// A SQLite store in a new file, not `:memory:`: the WAL and the file's schema version
/// are part of the test.
#[cfg(feature = "sqlite")]
fn sqlite_file(durability: protean::store::Durability) -> Arc<dyn Store> {
    let dir = std::env::temp_dir().join(format!("protean-conformance-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    Arc::new(SqliteStore::open_with(dir.join("store.db"), durability).unwrap())
}

/// The suite on PostgreSQL, each case on a new database; ignored, with the reason,
/// without a server.
#[cfg(feature = "postgres")]
fn postgres_suite() -> Vec<Trial> {
    let trials = every_case().into_iter().map(|(name, case)| {
        harness::postgres::test(format!("postgres::{name}"), move |url| async move {
            let store = PostgresStore::connect_with(&url, 8).await.expect("connects and migrates");
            case(Arc::new(store)).await;
        })
    });
    trials.collect()
}

fn main() -> ExitCode {
    #[cfg(feature = "sqlite")]
    use protean::store::Durability;
    let trials = [
        suite("memory", || Arc::new(MemoryStore::new())),
        #[cfg(feature = "sqlite")]
        suite("sqlite", || sqlite_file(Durability::default())),
        #[cfg(feature = "sqlite")]
        suite("sqlite_full_durability", || sqlite_file(Durability::Full)),
        // In memory no reader connection can see the database: its reads run on the writer.
        #[cfg(feature = "sqlite")]
        suite("sqlite_in_memory", || Arc::new(SqliteStore::in_memory().unwrap())),
        #[cfg(feature = "postgres")]
        postgres_suite(),
    ];
    harness::run(trials.into_iter().flatten().collect())
}
