//! The PostgreSQL server the tests run on, from `PROTEAN_POSTGRES_URL`: each test gets a
//! database of its own on it, so tests run side by side.

/// The URL of a new, empty database, or `None` (the test is skipped, and says so) when
/// `PROTEAN_POSTGRES_URL` is not set. With `PROTEAN_REQUIRE_POSTGRES=1`, as in CI, a
/// missing server fails the test instead.
pub async fn fresh_database() -> Option<String> {
    let Ok(url) = std::env::var("PROTEAN_POSTGRES_URL") else {
        assert!(
            std::env::var("PROTEAN_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "PROTEAN_REQUIRE_POSTGRES=1 but PROTEAN_POSTGRES_URL is not set"
        );
        eprintln!("skipped: set PROTEAN_POSTGRES_URL=postgres://user@host:port/db to run it on PostgreSQL");
        return None;
    };
    let admin = sqlx::PgPool::connect(&url).await.expect("PROTEAN_POSTGRES_URL answers");
    let name = format!("protean_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("a test database");
    admin.close().await;
    let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
    Some(format!("{base}/{name}"))
}
