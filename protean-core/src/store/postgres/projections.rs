//! [`Projections`] in PostgreSQL: registration (with an index per declared field), the
//! rows of projections in copies, queries, rebuilds, and hand-written read models. Row
//! changes commit with their unit of work, in the commit function. See docs/storage.md,
//! "Projections and scheduled commands on PostgreSQL".

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::{Acquire, Row as _};

use super::query::{identifier, query_sql};
use super::rows::StoredTime;
use super::{backend, distinct, lease_micros, not_registered, PostgresStore};
use crate::store::envelope::StreamId;
use crate::store::sql::{stored_count, to_i64};
use crate::store::VersionConflict;
use crate::store::{BoxFuture, BuildState, ProjectionSpec, ProjectionState, Projections, Row, RowQuery, StoreError};

/// Serializes registrations across processes (index creation above all): an arbitrary,
/// fixed key, beside the store's others.
const REGISTER_LOCK: i64 = 0x7072_6f74_6561_6e03;

/// The longest name PostgreSQL keeps for an index (longer ones are cut, silently).
const MAX_IDENTIFIER: usize = 63;

/// The columns a [`ProjectionState`] is read from.
const STATE_COLUMNS: &str = "name, version, generation, built_through, checkpoint, build_generation, build_version,
    build_position, build_heartbeat";

/// FNV-1a, 64 bits: a hash that is the same in every process and build.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The name of the index of `field` of `projection` (both checked by [`identifier`]):
/// `protean_rows.Projection.field`, quoted when used; when that is longer than PostgreSQL
/// keeps, shortened parts and a hash of the whole, so two fields never share an index.
fn index_name(projection: &str, field: &str) -> String {
    let full = format!("protean_rows.{projection}.{field}");
    if full.len() <= MAX_IDENTIFIER {
        return full;
    }
    let hash = fnv1a(&[projection, field]);
    // ASCII only, so any byte is a character boundary.
    format!("protean_rows.{}.{}.{hash:016x}", &projection[..projection.len().min(16)], &field[..field.len().min(12)])
}

/// The stream a projection's own data is named by in errors.
fn state_stream(name: &str) -> StreamId {
    StreamId::new("protean_projections", name.to_owned())
}

/// A stored count of a projection that must not be negative.
fn stored_u64(row: &PgRow, column: &str, stream: &StreamId) -> Result<u64, StoreError> {
    let value: i64 = row.try_get(column).map_err(backend)?;
    stored_count(value, stream, column)
}

/// A stored projection version, which must fit a `u32`.
fn stored_version(value: i64, stream: &StreamId, column: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::corrupt(stream, 0, format!("the stored {column} is {value}")))
}

/// A [`ProjectionState`] from a row of [`STATE_COLUMNS`].
fn projection_state(row: &PgRow, created: bool) -> Result<ProjectionState, StoreError> {
    let name: String = row.try_get("name").map_err(backend)?;
    let stream = state_stream(&name);
    let version: i64 = row.try_get("version").map_err(backend)?;
    let build_generation: Option<i64> = row.try_get("build_generation").map_err(backend)?;
    let build = match build_generation {
        None => None,
        Some(generation) => {
            let version: Option<i64> = row.try_get("build_version").map_err(backend)?;
            let position: Option<i64> = row.try_get("build_position").map_err(backend)?;
            let heartbeat: Option<StoredTime> = row.try_get("build_heartbeat").map_err(backend)?;
            let missing = || StoreError::corrupt(&stream, 0, "a build without its version, position or heartbeat");
            let heartbeat = heartbeat.ok_or_else(missing)?.0.map_err(|micros| {
                StoreError::corrupt(&stream, 0, format!("the build's heartbeat {micros} µs is out of range"))
            })?;
            Some(BuildState {
                generation: stored_count(generation, &stream, "build generation")?,
                version: stored_version(version.ok_or_else(missing)?, &stream, "build version")?,
                position: stored_count(position.ok_or_else(missing)?, &stream, "build position")?,
                heartbeat,
            })
        }
    };
    Ok(ProjectionState {
        version: stored_version(version, &stream, "version")?,
        generation: stored_u64(row, "generation", &stream)?,
        built_through: stored_u64(row, "built_through", &stream)?,
        checkpoint: stored_u64(row, "checkpoint", &stream)?,
        build,
        created,
        name,
    })
}

/// A [`Row`] of `projection` from a row with `key`, `generation`, `version` and `json` (as text).
fn projection_row(projection: &str, row: &PgRow) -> Result<Row, StoreError> {
    let key: String = row.try_get("key").map_err(backend)?;
    let stream = StreamId::new(projection.to_owned(), key.as_str());
    let json: String = row.try_get("json").map_err(backend)?;
    Ok(Row {
        generation: stored_u64(row, "generation", &stream)?,
        version: stored_u64(row, "version", &stream)?,
        json: json.into(),
        key,
    })
}

/// The [`VersionConflict`] of a build of copy `generation` of `name` that is no longer
/// under way: `actual` is the copy being built now (0: none).
fn build_conflict(name: &str, generation: u64, actual: Option<i64>) -> StoreError {
    let actual = actual.and_then(|a| u64::try_from(a).ok()).unwrap_or(0);
    VersionConflict { stream: StreamId::new(name.to_owned(), ""), expected: generation, actual }.into()
}

impl Projections for PostgresStore {
    fn register_projection(&self, spec: ProjectionSpec) -> BoxFuture<'_, Result<ProjectionState, StoreError>> {
        Box::pin(async move {
            let name = identifier("projection", &spec.name)?;
            let fields = spec.indexed.iter().map(|f| identifier("field", f)).collect::<Result<Vec<_>, _>>()?;
            let mut tx = self.pool.begin().await.map_err(backend)?;
            // One registration at a time: `CREATE INDEX IF NOT EXISTS` of two sessions at once
            // may both try to create it.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(REGISTER_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            let created = sqlx::query(
                "INSERT INTO protean_projections (name, version, generation) VALUES ($1, $2, 1) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(i64::from(spec.version))
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected()
                == 1;
            for field in fields {
                let index = index_name(name, field);
                // An existing index is not created again: `CREATE INDEX` locks the rows
                // against writes even when the index exists.
                let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                    .bind(format!("\"{index}\""))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(backend)?;
                if exists {
                    continue;
                }
                let mut savepoint = tx.begin().await.map_err(backend)?;
                // Partial on the projection, so not keyed by it: PostgreSQL drops a condition
                // the predicate implies, and an index led by `projection` would then be
                // scanned whole.
                let statement = format!(
                    "CREATE INDEX IF NOT EXISTS \"{index}\" ON protean_projection_rows (generation, (json->'{field}')) \
                     WHERE projection = '{name}'"
                );
                match sqlx::query(&statement).execute(&mut *savepoint).await {
                    Ok(_) => savepoint.commit().await.map_err(backend)?,
                    // A role that may not create indexes still keeps the projection; its
                    // queries read without the index.
                    Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => {
                        tracing::warn!(projection = name, field, error = %e,
                            "postgres: no index for a projection's field (this role may not create one)");
                        savepoint.rollback().await.map_err(backend)?;
                    }
                    Err(e) => return Err(backend(e)),
                }
            }
            let row = sqlx::query(&format!("SELECT {STATE_COLUMNS} FROM protean_projections WHERE name = $1"))
                .bind(name)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            projection_state(&row, created)
        })
    }

    fn projection_state<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<ProjectionState>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(&format!("SELECT {STATE_COLUMNS} FROM protean_projections WHERE name = $1"))
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
            row.map(|row| projection_state(&row, false)).transpose()
        })
    }

    fn projection_row<'a>(
        &'a self,
        name: &'a str,
        generation: Option<u64>,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Row>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT key, generation, version, json::text AS json FROM protean_projection_rows
                 WHERE projection = $1 AND key = $3
                 AND generation = coalesce($2, (SELECT generation FROM protean_projections WHERE name = $1))",
            )
            .bind(name)
            .bind(generation.map(to_i64))
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
            row.map(|row| projection_row(name, &row)).transpose()
        })
    }

    fn query_projection(&self, query: RowQuery) -> BoxFuture<'_, Result<Vec<Row>, StoreError>> {
        Box::pin(async move {
            let (sql, values) = query_sql(&query)?;
            let mut statement = sqlx::query(&sql);
            for value in &values {
                statement = statement.bind(value);
            }
            let rows = statement.fetch_all(&self.pool).await.map_err(backend)?;
            rows.iter().map(|row| projection_row(&query.projection, row)).collect()
        })
    }

    fn begin_build<'a>(
        &'a self,
        name: &'a str,
        version: u32,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<BuildState>, StoreError>> {
        Box::pin(async move {
            let stream = state_stream(name);
            let mut tx = self.pool.begin().await.map_err(backend)?;
            // Under the state row's lock: two builders never both start, nor both take over.
            let row = sqlx::query(
                "SELECT generation, build_generation, build_version,
                     coalesce(build_heartbeat < now() - $2 * interval '1 microsecond', TRUE) AS silent
                 FROM protean_projections WHERE name = $1 FOR UPDATE",
            )
            .bind(name)
            .bind(lease_micros(lease))
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
            let Some(row) = row else { return Err(not_registered(name)) };
            let serving: i64 = row.try_get("generation").map_err(backend)?;
            let building: Option<i64> = row.try_get("build_generation").map_err(backend)?;
            let build_version: Option<i64> = row.try_get("build_version").map_err(backend)?;
            let silent: bool = row.try_get("silent").map_err(backend)?;
            if building.is_some() && !silent {
                return Ok(None);
            }
            // A new copy, past every one used.
            let generation = serving.max(building.unwrap_or(0)).checked_add(1).ok_or_else(|| {
                StoreError::corrupt(&stream, 0, format!("the stored generation {serving} leaves no next one"))
            })?;
            if let (Some(building), true) = (building, build_version == Some(i64::from(version))) {
                // Taken over: its rows move to the new copy, so the silent builder's writes are
                // refused from now on, and it resumes where its builder stopped.
                sqlx::query(
                    "UPDATE protean_projection_rows SET generation = $3 WHERE projection = $1 AND generation = $2",
                )
                .bind(name)
                .bind(building)
                .bind(generation)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
                let row = sqlx::query(&format!(
                    "UPDATE protean_projections SET build_generation = $2, build_heartbeat = now()
                     WHERE name = $1 RETURNING {STATE_COLUMNS}"
                ))
                .bind(name)
                .bind(generation)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
                tx.commit().await.map_err(backend)?;
                return Ok(projection_state(&row, false)?.build);
            }
            // A silent build of another version is dropped; rows of copies other than the
            // serving one are leftovers.
            sqlx::query(
                "DELETE FROM protean_projection_rows WHERE projection = $1 AND (generation < $2 OR generation > $2)",
            )
            .bind(name)
            .bind(serving)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            let row = sqlx::query(&format!(
                "UPDATE protean_projections SET build_generation = $2, build_version = $3, build_position = 0,
                     build_heartbeat = now()
                 WHERE name = $1 RETURNING {STATE_COLUMNS}"
            ))
            .bind(name)
            .bind(generation)
            .bind(i64::from(version))
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            Ok(projection_state(&row, false)?.build)
        })
    }

    fn write_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        rows: Vec<(String, Option<Arc<str>>)>,
        position: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            // The last change of each key is the one that stands.
            let mut seen = foldhash::HashSet::default();
            let (mut written, mut json, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
            for (key, row) in rows.iter().rev() {
                if !seen.insert(key.as_str()) {
                    continue;
                }
                match row {
                    Some(row) => {
                        written.push(key.as_str());
                        json.push(&**row);
                    }
                    None => deleted.push(key.as_str()),
                }
            }
            let mut tx = self.pool.begin().await.map_err(backend)?;
            let building: Option<Option<i64>> =
                sqlx::query_scalar("SELECT build_generation FROM protean_projections WHERE name = $1 FOR UPDATE")
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend)?;
            let Some(building) = building else { return Err(not_registered(name)) };
            if building != Some(to_i64(generation)) {
                return Err(build_conflict(name, generation, building));
            }
            if !written.is_empty() {
                sqlx::query(
                    "INSERT INTO protean_projection_rows (projection, generation, key, version, json)
                     SELECT $1, $2, u.key, 1, u.json::jsonb FROM unnest($3::text[], $4::text[]) AS u(key, json)
                     ON CONFLICT (projection, generation, key)
                         DO UPDATE SET version = protean_projection_rows.version + 1, json = excluded.json",
                )
                .bind(name)
                .bind(to_i64(generation))
                .bind(&written)
                .bind(&json)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            }
            if !deleted.is_empty() {
                sqlx::query(
                    "DELETE FROM protean_projection_rows WHERE projection = $1 AND generation = $2 AND key = ANY($3)",
                )
                .bind(name)
                .bind(to_i64(generation))
                .bind(&deleted)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            }
            sqlx::query("UPDATE protean_projections SET build_position = $2, build_heartbeat = now() WHERE name = $1")
                .bind(name)
                .bind(to_i64(position))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            tx.commit().await.map_err(backend)
        })
    }

    fn finish_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        position: u64,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let types = distinct(types);
            let mut tx = self.pool.begin().await.map_err(backend)?;
            // Every insert of an event before now has committed (or rolled back), and none
            // starts until this commits: what the log holds is what it holds.
            sqlx::query("LOCK TABLE protean_events IN EXCLUSIVE MODE").execute(&mut *tx).await.map_err(backend)?;
            let row =
                sqlx::query("SELECT generation, build_generation FROM protean_projections WHERE name = $1 FOR UPDATE")
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend)?;
            let Some(row) = row else { return Err(not_registered(name)) };
            let old: i64 = row.try_get("generation").map_err(backend)?;
            let building: Option<i64> = row.try_get("build_generation").map_err(backend)?;
            if building != Some(to_i64(generation)) {
                return Err(build_conflict(name, generation, building));
            }
            let pending: bool = if types.is_empty() {
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM protean_events WHERE position > $1)")
                    .bind(to_i64(position))
                    .fetch_one(&mut *tx)
                    .await
            } else {
                sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM unnest($2::text[]) AS t(name)
                         WHERE EXISTS (SELECT 1 FROM protean_events e WHERE e.type_name = t.name AND e.position > $1))",
                )
                .bind(to_i64(position))
                .bind(&types)
                .fetch_one(&mut *tx)
                .await
            }
            .map_err(backend)?;
            if pending {
                return Ok(false);
            }
            let last: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM protean_events")
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
            sqlx::query(
                "UPDATE protean_projections SET generation = build_generation, version = build_version,
                     built_through = $2, checkpoint = $2, build_generation = NULL, build_version = NULL,
                     build_position = NULL, build_heartbeat = NULL
                 WHERE name = $1",
            )
            .bind(name)
            .bind(last)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            // Outside the lock: the old copy serves no one now. Should this fail, the next
            // rebuild's start drops what is left.
            if let Err(error) =
                sqlx::query("DELETE FROM protean_projection_rows WHERE projection = $1 AND generation = $2")
                    .bind(name)
                    .bind(old)
                    .execute(&self.pool)
                    .await
            {
                tracing::warn!(projection = name, generation = old, %error,
                    "postgres: could not drop the rows of a projection's old copy");
            }
            Ok(true)
        })
    }

    fn read_model<'a>(&'a self, name: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(async move {
            sqlx::query_scalar::<_, String>("SELECT json FROM protean_read_models WHERE name = $1 AND key = $2")
                .bind(name)
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)
        })
    }

    fn put_read_model<'a>(
        &'a self,
        name: &'a str,
        key: &'a str,
        json: String,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO protean_read_models (name, key, json) VALUES ($1, $2, $3)
                 ON CONFLICT (name, key) DO UPDATE SET json = excluded.json",
            )
            .bind(name)
            .bind(key)
            .bind(json)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_are_kept_whole_or_hashed_apart() {
        assert_eq!(index_name("CustomerCredit", "limit"), "protean_rows.CustomerCredit.limit");
        let long = "A".repeat(60);
        let (a, b) = (index_name(&long, "field_one"), index_name(&long, "field_two"));
        assert!(a.len() <= MAX_IDENTIFIER && b.len() <= MAX_IDENTIFIER, "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(a, index_name(&long, "field_one"), "the same in every process");
        // The separator keeps `a_b`.`c` and `a`.`b_c` apart.
        assert_ne!(index_name("a_b", "c"), index_name("a", "b_c"));
    }
}
