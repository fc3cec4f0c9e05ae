//! The test binaries declared `harness = false`: their tests are libtest-mimic trials,
//! run and reported like libtest's (filters, `--list`, the `test result:` line), so a
//! test that needs PostgreSQL and finds no server is reported ignored, with the reason,
//! rather than passing without having run.

use std::future::Future;
use std::process::ExitCode;

pub use libtest_mimic::Trial;

/// Runs `trials` with the command line's arguments, as libtest would.
pub fn run(trials: Vec<Trial>) -> ExitCode {
    libtest_mimic::run(&libtest_mimic::Arguments::from_args(), trials).exit_code()
}

/// The runtime each async trial gets: what `#[tokio::test(flavor = "multi_thread",
/// worker_threads = 2)]` gives.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime")
}

/// An async test, run to completion on a runtime of its own; it fails if it panics.
pub fn test<F: Future<Output = ()>>(name: impl Into<String>, test: impl FnOnce() -> F + Send + 'static) -> Trial {
    Trial::test(name, move || {
        runtime().block_on(test());
        Ok(())
    })
}

/// A case run against one store.
pub type StoreCase = fn(std::sync::Arc<dyn protean::store::Store>) -> std::pin::Pin<Box<dyn Future<Output = ()>>>;

/// `cases` on every store the build has, named `store::case`: a new memory store; a new
/// SQLite file (under a temporary folder named after `tag`); a new PostgreSQL database
/// (with a pool of `connections`), ignored with the reason when there is no server.
pub fn every_store(tag: &str, cases: fn() -> Vec<(&'static str, StoreCase)>, connections: u32) -> Vec<Trial> {
    let _ = (tag, connections);
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(unused_mut))]
    let mut trials: Vec<Trial> = cases()
        .into_iter()
        .map(|(name, case)| {
            test(format!("memory::{name}"), move || case(std::sync::Arc::new(protean::store::MemoryStore::new())))
        })
        .collect();
    #[cfg(feature = "sqlite")]
    trials.extend(cases().into_iter().map(|(name, case)| {
        let dir = std::env::temp_dir().join(format!("protean-{tag}-{}", uuid::Uuid::now_v7()));
        test(format!("sqlite::{name}"), move || {
            std::fs::create_dir_all(&dir).unwrap();
            case(std::sync::Arc::new(protean::store::SqliteStore::open(dir.join("store.db")).unwrap()))
        })
    }));
    #[cfg(feature = "postgres")]
    trials.extend(cases().into_iter().map(|(name, case)| {
        postgres::test(format!("postgres::{name}"), move |url| async move {
            let store =
                protean::store::PostgresStore::connect_with(&url, connections).await.expect("connects and migrates");
            case(std::sync::Arc::new(store)).await;
        })
    }));
    trials
}

/// Tests on the PostgreSQL server named by `PROTEAN_POSTGRES_URL`: each gets a database
/// of its own on it, so they run side by side.
#[cfg(feature = "postgres")]
pub mod postgres {
    use std::future::Future;

    use libtest_mimic::{Completion, Trial};

    /// Why a PostgreSQL test did not run.
    pub const SKIPPED: &str = "no PostgreSQL server: PROTEAN_POSTGRES_URL (postgres://user@host:port/db) is not set";

    /// The URL of a new, empty database, or `None` when `PROTEAN_POSTGRES_URL` is not
    /// set. With `PROTEAN_REQUIRE_POSTGRES=1`, as in CI, a missing server panics (the
    /// test fails) instead; so does a server the URL names that does not answer.
    pub async fn fresh_database() -> Option<String> {
        let Ok(url) = std::env::var("PROTEAN_POSTGRES_URL") else {
            assert!(
                std::env::var("PROTEAN_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "PROTEAN_REQUIRE_POSTGRES=1 but PROTEAN_POSTGRES_URL is not set"
            );
            return None;
        };
        let admin = sqlx::PgPool::connect(&url).await.expect("PROTEAN_POSTGRES_URL answers");
        let name = format!("protean_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("a test database");
        admin.close().await;
        let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
        Some(format!("{base}/{name}"))
    }

    /// A test that needs PostgreSQL: `test` gets the runtime it runs on and the URL of
    /// a new database. Without a server the trial is ignored, and says why.
    pub fn blocking(
        name: impl Into<String>,
        test: impl FnOnce(&tokio::runtime::Runtime, String) + Send + 'static,
    ) -> Trial {
        Trial::ignorable_test(name, move || {
            let runtime = super::runtime();
            let Some(url) = runtime.block_on(fresh_database()) else { return Ok(Completion::ignored_with(SKIPPED)) };
            test(&runtime, url);
            Ok(Completion::Completed)
        })
    }

    /// An async test that needs PostgreSQL, given the URL of a new database; ignored,
    /// with the reason, without a server.
    pub fn test<F: Future<Output = ()>>(
        name: impl Into<String>,
        test: impl FnOnce(String) -> F + Send + 'static,
    ) -> Trial {
        blocking(name, move |runtime, url| runtime.block_on(test(url)))
    }
}
