//! The PostgreSQL schema: the migration steps (`v1.sql` … in this folder), the commit
//! functions (`commit_batch.sql`, `commit_group.sql`), and the migration that applies
//! them. See docs/storage.md, "Schema and migrations".

use sqlx::postgres::{PgConnection, PgPool};

use super::backend;
use crate::store::{SchemaVersion, StoreError};

/// The schema version this code works with: [`PostgresStore::migrate`](super::PostgresStore::migrate) brings older
/// databases up to it, and a store opened without migrating
/// ([`PostgresStore::connect_without_migrating`](super::PostgresStore::connect_without_migrating)) requires it.
pub const SCHEMA_VERSION: SchemaVersion = SchemaVersion(9);

/// The migration steps: step `n` (from `schema/vn.sql`) brings a database at version
/// `n - 1` to version `n`. A file may hold several statements; it runs as one simple
/// query, in the migration's transaction.
const MIGRATIONS: [&str; SCHEMA_VERSION.0 as usize] = [
    include_str!("v1.sql"),
    include_str!("v2.sql"),
    include_str!("v3.sql"),
    include_str!("v4.sql"),
    include_str!("v5.sql"),
    include_str!("v6.sql"),
    include_str!("v7.sql"),
    include_str!("v8.sql"),
    include_str!("v9.sql"),
];

/// A unit of work's whole batch in one statement (see the file): created, or replaced,
/// by every migration after the versioned steps.
const COMMIT_FUNCTION: &str = include_str!("commit_batch.sql");

/// Several units of work's batches in one statement, each in a subtransaction of its own
/// (see the file): created, or replaced, by every migration after the commit function,
/// which it calls.
const GROUP_FUNCTION: &str = include_str!("commit_group.sql");

/// Serializes migrations across processes (an arbitrary, fixed key, beside the store's
/// others).
const MIGRATION_LOCK: i64 = 0x7072_6f74_6561_6e01;

/// Creates the schema in the database of `pool`, or upgrades it to [`SCHEMA_VERSION`], in
/// one transaction (see [`PostgresStore::migrate`](super::PostgresStore::migrate)).
pub(super) async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(MIGRATION_LOCK).execute(&mut *tx).await.map_err(backend)?;
    let found = stored_version(&mut tx).await?;
    if found > SCHEMA_VERSION {
        return Err(schema_error(found));
    }
    for (version, step) in (1..).zip(MIGRATIONS) {
        if version > found.0 {
            sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(step)).await.map_err(backend)?;
            tracing::info!(version, "postgres: migrated the schema");
        }
    }
    sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(COMMIT_FUNCTION)).await.map_err(backend)?;
    sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(GROUP_FUNCTION)).await.map_err(backend)?;
    if found != SCHEMA_VERSION {
        sqlx::query("DELETE FROM protean_schema").execute(&mut *tx).await.map_err(backend)?;
        sqlx::query("INSERT INTO protean_schema (version) VALUES ($1)")
            .bind(i32::try_from(SCHEMA_VERSION.0).unwrap_or(i32::MAX))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)
}

/// The database is at `found`, not at [`SCHEMA_VERSION`].
pub(super) fn schema_error(found: SchemaVersion) -> StoreError {
    StoreError::Schema { backend: "postgres", found, supported: SCHEMA_VERSION }
}

/// The schema version a database is at: 0 when it has no protean schema.
pub(super) async fn stored_version(connection: &mut PgConnection) -> Result<SchemaVersion, StoreError> {
    // `to_regclass` finds the table as the queries do (on the search path), or is NULL.
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('protean_schema') IS NOT NULL")
        .fetch_one(&mut *connection)
        .await
        .map_err(backend)?;
    if !exists {
        return Ok(SchemaVersion(0));
    }
    let version: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM protean_schema")
        .fetch_one(&mut *connection)
        .await
        .map_err(backend)?;
    let version = version.unwrap_or(0);
    u32::try_from(version).map(SchemaVersion).map_err(|_| {
        StoreError::Unsupported(format!("postgres: protean_schema holds version {version}, not a version"))
    })
}

/// The schema version of the database `url` names, read on one connection of its own
/// without migrating or checking it (0 when it has no protean schema).
pub(crate) async fn database_version(url: &str) -> Result<SchemaVersion, StoreError> {
    use sqlx::{postgres::PgConnectOptions, ConnectOptions, Connection};
    let options: PgConnectOptions = url.parse().map_err(backend)?;
    let mut connection = options.connect().await.map_err(backend)?;
    let version = stored_version(&mut connection).await;
    let _ = connection.close().await;
    version
}
