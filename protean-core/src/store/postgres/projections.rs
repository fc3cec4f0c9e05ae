//! What the PostgreSQL store keeps for projections and process managers: the rows of
//! projections in copies, their rebuilds, the log read by position, and scheduled
//! commands (schema version 6). The row changes, scheduled commands and cancellations of
//! a batch are written by the commit function (`schema/commit_batch.sql`); the rest is
//! here.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::{Acquire, Row as _};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{backend, envelope, PostgresStore, StoredTime, EVENT_COLUMNS};
use crate::store::envelope::StreamId;
use crate::store::sql::{stored_count, to_i64};
use crate::store::{
    BuildState, Cancel, FilterOp, Logged, ProjectionSpec, ProjectionState, Row, RowChange, RowQuery, RowRead,
    RowVersion, Scheduled, StoreError, VersionConflict,
};

/// Serializes registrations across processes (index creation above all): an arbitrary,
/// fixed key, beside the store's others.
const REGISTER_LOCK: i64 = 0x7072_6f74_6561_6e03;

/// The longest name PostgreSQL keeps for an index (longer ones are cut, silently).
const MAX_IDENTIFIER: usize = 63;

/// The columns a [`ProjectionState`] is read from.
const STATE_COLUMNS: &str = "name, version, generation, built_through, checkpoint, build_generation, build_version,
    build_position, build_heartbeat";

/// The columns a [`Scheduled`] is read from.
const SCHEDULED_COLUMNS: &str = "id, owner, owner_key, name, due_at, type_name, payload, correlation_id, causation_id";

/// The row changes of a batch (or of a group's batches, one after another), as the
/// commit functions' arrays.
#[derive(Default)]
pub(super) struct RowArrays<'a> {
    pub(super) projections: Vec<&'a str>,
    pub(super) generations: Vec<i64>,
    pub(super) keys: Vec<&'a str>,
    pub(super) expected: Vec<i64>,
    pub(super) json: Vec<Option<&'a str>>,
}

impl<'a> RowArrays<'a> {
    /// Appends `rows`.
    pub(super) fn push(&mut self, rows: &'a [RowChange]) {
        self.projections.extend(rows.iter().map(|r| &*r.projection));
        self.generations.extend(rows.iter().map(|r| to_i64(r.generation)));
        self.keys.extend(rows.iter().map(|r| r.key.as_str()));
        self.expected.extend(rows.iter().map(|r| to_i64(r.expected_version)));
        self.json.extend(rows.iter().map(|r| r.json.as_deref()));
    }
}

/// What a batch read (or a group's batches, one after another), as the commit functions'
/// arrays: the rows read by key, and the queries, each as the statement that checks it
/// and the rows it returned.
#[derive(Default)]
pub(super) struct ReadArrays<'a> {
    pub(super) projections: Vec<&'a str>,
    pub(super) keys: Vec<&'a str>,
    pub(super) generations: Vec<Option<i64>>,
    pub(super) versions: Vec<i64>,
    pub(super) query_projections: Vec<&'a str>,
    pub(super) query_sql: Vec<String>,
    pub(super) query_expected: Vec<String>,
}

impl<'a> ReadArrays<'a> {
    /// Appends `reads`; returns how many rows by key and how many queries it appended.
    /// On an error (a query the store cannot write) it stops part way: build into a new
    /// one and [`append`](Self::append) it once done.
    pub(super) fn push(&mut self, reads: &'a [RowRead]) -> Result<(usize, usize), StoreError> {
        let (mut keys, mut queries) = (0, 0);
        for read in reads {
            match read {
                RowRead::Key { projection, key, found } => {
                    self.projections.push(projection);
                    self.keys.push(key);
                    self.generations.push(found.as_ref().map(|f| to_i64(f.generation)));
                    self.versions.push(found.as_ref().map_or(0, |f| to_i64(f.version)));
                    keys += 1;
                }
                RowRead::Query { query, found } => {
                    self.query_sql.push(query_check_sql(query)?);
                    self.query_projections.push(&query.projection);
                    self.query_expected.push(query_check_expected(found));
                    queries += 1;
                }
            }
        }
        Ok((keys, queries))
    }

    /// Appends `other`'s arrays.
    pub(super) fn append(&mut self, other: ReadArrays<'a>) {
        self.projections.extend(other.projections);
        self.keys.extend(other.keys);
        self.generations.extend(other.generations);
        self.versions.extend(other.versions);
        self.query_projections.extend(other.query_projections);
        self.query_sql.extend(other.query_sql);
        self.query_expected.extend(other.query_expected);
    }
}

/// The scheduled commands and cancellations of a batch (or of a group's batches, one
/// after another), as the commit functions' arrays.
#[derive(Default)]
pub(super) struct ScheduleArrays<'a> {
    pub(super) ids: Vec<Uuid>,
    pub(super) owners: Vec<&'a str>,
    pub(super) keys: Vec<&'a str>,
    pub(super) names: Vec<Option<&'a str>>,
    pub(super) due: Vec<OffsetDateTime>,
    pub(super) types: Vec<&'a str>,
    pub(super) payloads: Vec<&'a str>,
    pub(super) correlations: Vec<Uuid>,
    pub(super) causations: Vec<Uuid>,
    pub(super) cancel_owners: Vec<&'a str>,
    pub(super) cancel_keys: Vec<&'a str>,
    pub(super) cancel_names: Vec<&'a str>,
}

impl<'a> ScheduleArrays<'a> {
    /// Appends `schedule` and `cancel`.
    pub(super) fn push(&mut self, schedule: &'a [Scheduled], cancel: &'a [Cancel]) {
        self.ids.extend(schedule.iter().map(|s| s.id));
        self.owners.extend(schedule.iter().map(|s| &*s.owner));
        self.keys.extend(schedule.iter().map(|s| s.owner_key.as_str()));
        self.names.extend(schedule.iter().map(|s| s.name.as_deref()));
        self.due.extend(schedule.iter().map(|s| s.due_at));
        self.types.extend(schedule.iter().map(|s| &*s.type_name));
        self.payloads.extend(schedule.iter().map(|s| &*s.payload));
        self.correlations.extend(schedule.iter().map(|s| s.correlation_id));
        self.causations.extend(schedule.iter().map(|s| s.causation_id));
        self.cancel_owners.extend(cancel.iter().map(|c| &*c.owner));
        self.cancel_keys.extend(cancel.iter().map(|c| c.owner_key.as_str()));
        self.cancel_names.extend(cancel.iter().map(|c| c.name.as_str()));
    }
}

/// The [`VersionConflict`] of a batch whose row change the commit function refused, from
/// the error's detail (`i:version`: the change's 1-based index and the row's version
/// found); `error`, the refusal as it came, when the detail says otherwise.
pub(super) fn row_conflict(rows: &[RowChange], detail: Option<&str>, error: StoreError) -> StoreError {
    let found = detail.and_then(|detail| {
        let (index, actual) = detail.split_once(':')?;
        let change = rows.get(index.parse::<usize>().ok()?.checked_sub(1)?)?;
        Some((change, actual.parse::<u64>().ok()?))
    });
    match found {
        Some((change, actual)) => VersionConflict {
            stream: StreamId::new(change.projection.clone(), change.key.as_str()),
            expected: change.expected_version,
            actual,
        }
        .into(),
        None => {
            tracing::warn!(detail, "postgres: a row version conflict's detail is not `index:version`");
            error
        }
    }
}

/// The [`VersionConflict`] of a batch the commit function refused for a stale read
/// (`error`), from its detail: `k:i:version` names the i-th row read by key (1-based, in
/// the order of the batch's reads by key) and the version found; `q:i` the i-th query,
/// whose rows are read again (`now`, outside the commit) to name the row that moved.
pub(super) async fn read_conflict(
    store: &PostgresStore,
    reads: &[RowRead],
    detail: Option<&str>,
    error: StoreError,
) -> StoreError {
    let by_key = || reads.iter().filter(|r| matches!(r, RowRead::Key { .. }));
    let queries = || reads.iter().filter(|r| matches!(r, RowRead::Query { .. }));
    let nth = |n: &str| n.parse::<usize>().ok()?.checked_sub(1);
    match detail.and_then(|d| d.split_once(':')) {
        Some(("k", rest)) => {
            let found = rest
                .split_once(':')
                .and_then(|(i, version)| Some((by_key().nth(nth(i)?)?, version.parse::<u64>().ok()?)));
            if let Some((RowRead::Key { projection, key, found }, actual)) = found {
                let expected = found.as_ref().map_or(0, |f| f.version);
                return VersionConflict { stream: StreamId::new(projection.clone(), key.as_str()), expected, actual }
                    .into();
            }
        }
        Some(("q", i)) => {
            if let Some(read @ RowRead::Query { query, .. }) = nth(i).and_then(|i| queries().nth(i)) {
                let now = match store.query_now(query.clone()).await {
                    Ok(rows) => rows.iter().map(RowVersion::of).collect(),
                    Err(e) => {
                        tracing::warn!(error = ?e, "postgres: could not read again the rows of a stale query");
                        Vec::new()
                    }
                };
                let stream = StreamId::new(query.projection.clone(), "?query");
                return read.stale(&now).unwrap_or(VersionConflict { stream, expected: 0, actual: 0 }).into();
            }
        }
        _ => {}
    }
    tracing::warn!(detail, "postgres: a stale read's detail is not `k:index:version` or `q:index`");
    error
}

/// A row change, build or query of a projection the store does not keep.
pub(super) fn not_registered(name: &str) -> StoreError {
    StoreError::Unsupported(format!("postgres: projection `{name}` is not registered: register it first"))
}

/// `name` when it is a projection's or field's name the store may write into SQL: ASCII
/// letters, digits and `_`; else [`StoreError::Unsupported`].
fn identifier<'n>(what: &str, name: &'n str) -> Result<&'n str, StoreError> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(name)
    } else {
        Err(StoreError::Unsupported(format!(
            "postgres: {what} `{name}` may hold only ASCII letters, digits and `_` (it is written into SQL and \
             index names)"
        )))
    }
}

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
pub(super) fn index_name(projection: &str, field: &str) -> String {
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

/// A time of `row` that `time` represents; else corrupt data of `stream`.
fn stored_time(row: &PgRow, column: &str, stream: &StreamId) -> Result<OffsetDateTime, StoreError> {
    let StoredTime(time) = row.try_get(column).map_err(backend)?;
    time.map_err(|micros| {
        StoreError::corrupt(stream, 0, format!("the stored {column} {micros} µs after the Unix epoch is out of range"))
    })
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

/// A [`Scheduled`] from a row of [`SCHEDULED_COLUMNS`].
fn scheduled(row: &PgRow) -> Result<Scheduled, StoreError> {
    let owner: String = row.try_get("owner").map_err(backend)?;
    let owner_key: String = row.try_get("owner_key").map_err(backend)?;
    let stream = StreamId::new(owner.clone(), owner_key.as_str());
    let type_name: String = row.try_get("type_name").map_err(backend)?;
    let payload: String = row.try_get("payload").map_err(backend)?;
    Ok(Scheduled {
        id: row.try_get("id").map_err(backend)?,
        name: row.try_get("name").map_err(backend)?,
        due_at: stored_time(row, "due_at", &stream)?,
        type_name: Cow::Owned(type_name),
        payload: payload.into(),
        correlation_id: row.try_get("correlation_id").map_err(backend)?,
        causation_id: row.try_get("causation_id").map_err(backend)?,
        owner: Cow::Owned(owner),
        owner_key,
    })
}

/// A lease as whole microseconds, at most [`MAX_LEASE`](crate::store::MAX_LEASE).
fn lease_micros(lease: Duration) -> i64 {
    i64::try_from(lease.min(crate::store::MAX_LEASE).as_micros()).unwrap_or(i64::MAX)
}

/// The type names to read, each once (a type named twice would read its events twice).
fn distinct(types: &[String]) -> Vec<&str> {
    let mut types: Vec<&str> = types.iter().map(String::as_str).collect();
    types.sort_unstable();
    types.dedup();
    types
}

/// The SQL of a [`RowQuery`] and the JSON values it binds (`$1`…; the limit and offset
/// follow them).
fn query_sql(query: &RowQuery) -> Result<(String, Vec<String>), StoreError> {
    let mut values = Vec::new();
    let sql = query_text(query, &mut |value| {
        values.push(value);
        format!("${}", values.len())
    })?;
    Ok((sql, values))
}

/// The statement the commit function runs to check a query a unit of work read (see
/// `schema/commit_batch.sql`): the query with its values written in as literals, giving
/// its rows' keys, copies and versions as one JSON array in key order.
fn query_check_sql(query: &RowQuery) -> Result<String, StoreError> {
    // Standard strings (PostgreSQL's default since 9.1): a quote is the only character
    // to double.
    let sql = query_text(query, &mut |value| format!("'{}'", value.replace('\'', "''")))?;
    Ok(format!(
        "SELECT coalesce(jsonb_agg(jsonb_build_array(q.key, q.generation, q.version) ORDER BY q.key COLLATE \"C\"), \
         '[]'::jsonb) FROM ({sql}) AS q"
    ))
}

/// What [`query_check_sql`] is compared with: the rows read, as the same JSON array.
fn query_check_expected(found: &[RowVersion]) -> String {
    let mut found: Vec<&RowVersion> = found.iter().collect();
    found.sort_by(|a, b| a.key.cmp(&b.key));
    let rows: Vec<serde_json::Value> =
        found.iter().map(|r| serde_json::json!([r.key, r.generation, r.version])).collect();
    serde_json::Value::Array(rows).to_string()
}

/// The SQL of a [`RowQuery`], with each value (a JSON text; the limit and the offset as
/// numbers) written as what `param` gives for it.
fn query_text(query: &RowQuery, param: &mut dyn FnMut(String) -> String) -> Result<String, StoreError> {
    let name = identifier("projection", &query.projection)?;
    // The projection is written in, not bound: the partial indexes' predicate
    // (`projection = '…'`) must be seen to hold, whatever plan the statement gets.
    let mut sql = format!(
        "SELECT key, generation, version, json::text AS json FROM protean_projection_rows
         WHERE projection = '{name}'
         AND generation = (SELECT generation FROM protean_projections WHERE name = '{name}')"
    );
    for filter in &query.filters {
        let field = identifier("field", &filter.field)?;
        let column = format!("(json->'{field}')");
        let kind = match &filter.value {
            serde_json::Value::Null => {
                let condition = match filter.op {
                    FilterOp::Eq => format!("({column} IS NULL OR {column} = 'null'::jsonb)"),
                    FilterOp::Ne => format!("({column} IS NOT NULL AND {column} <> 'null'::jsonb)"),
                    op => {
                        return Err(StoreError::Unsupported(format!(
                            "postgres: a filter on `{field}` compares null with `{}`: only `=` and `<>` take null",
                            op.sql()
                        )))
                    }
                };
                let _ = write!(sql, " AND {condition}");
                continue;
            }
            serde_json::Value::Bool(_) => "boolean",
            serde_json::Value::Number(_) => "number",
            serde_json::Value::String(_) => "string",
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                return Err(StoreError::Unsupported(format!(
                    "postgres: a filter on `{field}` compares it with {}: only JSON scalars compare",
                    filter.value
                )))
            }
        };
        let value = param(filter.value.to_string());
        // jsonb orders values of different kinds too (null < string < number < boolean):
        // the kind is checked, so they never match.
        let _ = write!(sql, " AND {column} {} {value}::jsonb AND jsonb_typeof({column}) = '{kind}'", filter.op.sql());
    }
    sql.push_str(" ORDER BY ");
    for order in &query.order {
        let field = identifier("field", &order.field)?;
        // JSON null and a missing field are one and the same: first ascending, last descending.
        let direction = if order.descending { "DESC NULLS LAST" } else { "ASC NULLS FIRST" };
        let _ = write!(sql, "nullif(json->'{field}', 'null'::jsonb) {direction}, ");
    }
    let limit = param(i64::try_from(query.limit).unwrap_or(i64::MAX).to_string());
    let offset = param(i64::try_from(query.offset).unwrap_or(i64::MAX).to_string());
    let _ = write!(sql, "key COLLATE \"C\" LIMIT {limit}::bigint OFFSET {offset}::bigint");
    Ok(sql)
}

impl PostgresStore {
    pub(super) async fn register_now(&self, spec: ProjectionSpec) -> Result<ProjectionState, StoreError> {
        let name = identifier("projection", &spec.name)?;
        let fields = spec.indexed.iter().map(|f| identifier("field", f)).collect::<Result<Vec<_>, _>>()?;
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // One registration at a time: `CREATE INDEX IF NOT EXISTS` of two sessions at once
        // may both try to create it.
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(REGISTER_LOCK).execute(&mut *tx).await.map_err(backend)?;
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
    }

    pub(super) async fn state_now(&self, name: &str) -> Result<Option<ProjectionState>, StoreError> {
        let row = sqlx::query(&format!("SELECT {STATE_COLUMNS} FROM protean_projections WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|row| projection_state(&row, false)).transpose()
    }

    pub(super) async fn row_now(
        &self,
        name: &str,
        generation: Option<u64>,
        key: &str,
    ) -> Result<Option<Row>, StoreError> {
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
    }

    pub(super) async fn query_now(&self, query: RowQuery) -> Result<Vec<Row>, StoreError> {
        let (sql, values) = query_sql(&query)?;
        let mut statement = sqlx::query(&sql);
        for value in &values {
            statement = statement.bind(value);
        }
        let rows = statement.fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(|row| projection_row(&query.projection, row)).collect()
    }

    /// The plan PostgreSQL makes for [`query_projection`](crate::store::Projections::query_projection)
    /// of `query` (`EXPLAIN`, one line per row of its output): to see whether a query reads
    /// the index of a declared field. The same SQL and values, only explained.
    pub async fn explain_query(&self, query: RowQuery) -> Result<String, StoreError> {
        let (sql, values) = query_sql(&query)?;
        let sql = format!("EXPLAIN {sql}");
        let mut statement = sqlx::query_scalar::<_, String>(&sql);
        for value in &values {
            statement = statement.bind(value);
        }
        let lines = statement.fetch_all(&self.pool).await.map_err(backend)?;
        Ok(lines.join("\n"))
    }

    pub(super) async fn begin_build_now(
        &self,
        name: &str,
        version: u32,
        lease: Duration,
    ) -> Result<Option<BuildState>, StoreError> {
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
            sqlx::query("UPDATE protean_projection_rows SET generation = $3 WHERE projection = $1 AND generation = $2")
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
    }

    /// The [`VersionConflict`] of a build of copy `generation` of `name` that is no longer
    /// under way: `actual` is the copy being built now (0: none).
    fn build_conflict(name: &str, generation: u64, actual: Option<i64>) -> StoreError {
        let actual = actual.and_then(|a| u64::try_from(a).ok()).unwrap_or(0);
        VersionConflict { stream: StreamId::new(name.to_owned(), ""), expected: generation, actual }.into()
    }

    pub(super) async fn write_build_now(
        &self,
        name: &str,
        generation: u64,
        rows: Vec<(String, Option<std::sync::Arc<str>>)>,
        position: u64,
    ) -> Result<(), StoreError> {
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
            return Err(Self::build_conflict(name, generation, building));
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
    }

    pub(super) async fn finish_build_now(
        &self,
        name: &str,
        generation: u64,
        position: u64,
        types: &[String],
    ) -> Result<bool, StoreError> {
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
            return Err(Self::build_conflict(name, generation, building));
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
        if let Err(error) = sqlx::query("DELETE FROM protean_projection_rows WHERE projection = $1 AND generation = $2")
            .bind(name)
            .bind(old)
            .execute(&self.pool)
            .await
        {
            tracing::warn!(projection = name, generation = old, %error,
                "postgres: could not drop the rows of a projection's old copy");
        }
        Ok(true)
    }

    /// Up to `limit` events of `types` (any, when empty) after `after` and at most
    /// `up_to`, in position order, as the log holds them now.
    async fn read_log(&self, after: u64, limit: i64, types: &[&str], up_to: i64) -> Result<Vec<Logged>, StoreError> {
        let rows = if types.is_empty() {
            sqlx::query(&format!(
                "SELECT {EVENT_COLUMNS}, position FROM protean_events WHERE position > $1 AND position <= $3
                 ORDER BY position LIMIT $2"
            ))
            .bind(to_i64(after))
            .bind(limit)
            .bind(up_to)
            .fetch_all(&self.pool)
            .await
        } else {
            // Each type's next events from the index of (type, position), then the first
            // of them all: a page reads no more than `limit` events per type.
            sqlx::query(&format!(
                "SELECT e.* FROM unnest($4::text[]) AS t(name) CROSS JOIN LATERAL (
                     SELECT {EVENT_COLUMNS}, position FROM protean_events
                     WHERE type_name = t.name AND position > $1 AND position <= $3 ORDER BY position LIMIT $2) AS e
                 ORDER BY e.position LIMIT $2"
            ))
            .bind(to_i64(after))
            .bind(limit)
            .bind(up_to)
            .bind(types)
            .fetch_all(&self.pool)
            .await
        }
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let event = envelope(row)?;
                let position: i64 = row.try_get("position").map_err(backend)?;
                Ok(Logged { position: stored_count(position, &event.stream, "log position")?, event })
            })
            .collect()
    }

    /// Events after `after`, as [`Records::log_after`](crate::store::Records::log_after).
    ///
    /// Positions come from a sequence when an event is inserted, so a transaction may
    /// commit a later position before another commits an earlier one: a reader that
    /// went past the later one would never see the earlier. So a page whose positions
    /// are not all there (after `after`, up to its last) waits for the writers in flight
    /// (it takes the events table's `SHARE` lock, and lets it go at once), then is read
    /// again up to the same last position: what it returns then is settled. Every
    /// position up to the log's end at that moment is settled too, for good: pages below
    /// it are not checked again (the store remembers it), so a rebuild over a log with
    /// gaps (positions of rolled-back commits) waits about once, not once per page.
    pub(super) async fn log_after_now(
        &self,
        after: u64,
        limit: usize,
        types: &[String],
    ) -> Result<Vec<Logged>, StoreError> {
        let types = distinct(types);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let page = self.read_log(after, limit, &types, i64::MAX).await?;
        let Some(last) = page.last().map(|logged| logged.position) else { return Ok(page) };
        if last <= self.settled.load(Ordering::Acquire) {
            return Ok(page);
        }
        let span = last.saturating_sub(after);
        let present = if types.is_empty() {
            u64::try_from(page.len()).unwrap_or(u64::MAX)
        } else {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM protean_events WHERE position > $1 AND position <= $2")
                    .bind(to_i64(after))
                    .bind(to_i64(last))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(backend)?;
            u64::try_from(n).unwrap_or(0)
        };
        if present == span {
            // Every position after `after` up to `last` is committed; with those up to
            // `after` known settled, all up to `last` are.
            if after <= self.settled.load(Ordering::Acquire) {
                self.settled.fetch_max(last, Ordering::AcqRel);
            }
            return Ok(page);
        }
        // A gap: a rolled-back insert, or one in flight. Wait for the writers in flight:
        // once the lock is granted none is, and the log's end is settled.
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("LOCK TABLE protean_events IN SHARE MODE").execute(&mut *tx).await.map_err(backend)?;
        let end: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM protean_events")
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        self.settled.fetch_max(u64::try_from(end).unwrap_or(0), Ordering::AcqRel);
        self.read_log(after, limit, &types, to_i64(last)).await
    }

    pub(super) async fn log_count_now(&self, after: u64, types: &[String]) -> Result<u64, StoreError> {
        let types = distinct(types);
        let n: i64 = if types.is_empty() {
            sqlx::query_scalar("SELECT count(*) FROM protean_events WHERE position > $1")
                .bind(to_i64(after))
                .fetch_one(&self.pool)
                .await
        } else {
            sqlx::query_scalar("SELECT count(*) FROM protean_events WHERE type_name = ANY($2) AND position > $1")
                .bind(to_i64(after))
                .bind(&types)
                .fetch_one(&self.pool)
                .await
        }
        .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(super) async fn claim_due_now(
        &self,
        now: OffsetDateTime,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Scheduled>, StoreError> {
        // The lease is added on the server, whose times reach far past `time`'s.
        let rows = sqlx::query(&format!(
            "UPDATE protean_scheduled s SET claimed_until = $1 + $3 * interval '1 microsecond', claimed_by = $4
             FROM (SELECT id FROM protean_scheduled
                   WHERE due_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1)
                   ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) AS due
             WHERE s.id = due.id
             RETURNING {}",
            SCHEDULED_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ")
        ))
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(lease_micros(lease))
        .bind(self.owner)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut claimed = rows.iter().map(scheduled).collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|s| (s.due_at, s.id));
        Ok(claimed)
    }

    pub(super) async fn complete_scheduled_now(&self, id: Uuid) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM protean_scheduled WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
    }

    pub(super) async fn release_scheduled_now(&self, ids: Vec<Uuid>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE protean_scheduled SET claimed_until = NULL, claimed_by = NULL WHERE id = ANY($1) AND claimed_by = $2",
        )
        .bind(&ids)
        .bind(self.owner)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(backend)
    }

    pub(super) async fn next_due_now(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let row = sqlx::query("SELECT owner, owner_key, due_at FROM protean_scheduled ORDER BY due_at LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        let owner: String = row.try_get("owner").map_err(backend)?;
        let owner_key: String = row.try_get("owner_key").map_err(backend)?;
        stored_time(&row, "due_at", &StreamId::new(owner, owner_key)).map(Some)
    }

    pub(super) async fn scheduled_of_now(&self, owner: &str, owner_key: &str) -> Result<Vec<Scheduled>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SCHEDULED_COLUMNS} FROM protean_scheduled WHERE owner = $1 AND owner_key = $2 ORDER BY due_at, id"
        ))
        .bind(owner)
        .bind(owner_key)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(scheduled).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RowFilter, RowOrder};

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

    #[test]
    fn names_outside_letters_digits_and_underscores_are_refused() {
        for bad in ["", "a-b", "a'b", "a b", "é", "a.b", "a\"b"] {
            assert!(matches!(identifier("field", bad), Err(StoreError::Unsupported(_))), "{bad:?}");
        }
        assert!(identifier("field", "Credit_limit2").is_ok());
    }

    #[test]
    fn queries_filter_by_kind_and_refuse_what_does_not_compare() {
        let query = |value: serde_json::Value, op: FilterOp| RowQuery {
            projection: "View".into(),
            filters: vec![RowFilter { field: "f".into(), op, value }],
            order: vec![RowOrder { field: "g".into(), descending: true }],
            limit: 10,
            offset: 0,
        };
        let (sql, values) = query_sql(&query(serde_json::json!(5), FilterOp::Ge)).unwrap();
        assert!(sql.contains("(json->'f') >= $1::jsonb AND jsonb_typeof((json->'f')) = 'number'"), "{sql}");
        assert!(
            sql.ends_with(
                "ORDER BY nullif(json->'g', 'null'::jsonb) DESC NULLS LAST, key COLLATE \"C\" LIMIT $2::bigint OFFSET $3::bigint"
            ),
            "{sql}"
        );
        assert_eq!(values, ["5", "10", "0"]);
        let (sql, values) = query_sql(&query(serde_json::Value::Null, FilterOp::Eq)).unwrap();
        assert!(sql.contains("IS NULL OR"), "{sql}");
        assert_eq!(values, ["10", "0"]);
        for (value, op) in [
            (serde_json::Value::Null, FilterOp::Lt),
            (serde_json::json!([1]), FilterOp::Eq),
            (serde_json::json!({"a": 1}), FilterOp::Eq),
        ] {
            assert!(matches!(query_sql(&query(value, op)), Err(StoreError::Unsupported(_))));
        }
        let mut bad = query(serde_json::json!(1), FilterOp::Eq);
        bad.filters[0].field = "f'; DROP TABLE x; --".into();
        assert!(matches!(query_sql(&bad), Err(StoreError::Unsupported(_))));
        assert!(matches!(query_check_sql(&bad), Err(StoreError::Unsupported(_))));
    }

    #[test]
    fn a_query_checked_at_commit_has_its_values_written_in_quoted() {
        let query = RowQuery {
            projection: "View".into(),
            filters: vec![RowFilter { field: "f".into(), op: FilterOp::Eq, value: serde_json::json!("it's") }],
            order: vec![],
            limit: 10,
            offset: 2,
        };
        let sql = query_check_sql(&query).unwrap();
        assert!(sql.contains("(json->'f') = '\"it''s\"'::jsonb"), "{sql}");
        assert!(sql.contains("LIMIT '10'::bigint OFFSET '2'::bigint"), "{sql}");
        assert!(!sql.contains('$'), "{sql}");
        let found = [
            RowVersion { key: "b".into(), generation: 1, version: 2 },
            RowVersion { key: "a".into(), generation: 1, version: 7 },
        ];
        assert_eq!(query_check_expected(&found), r#"[["a",1,7],["b",1,2]]"#);
    }
}
