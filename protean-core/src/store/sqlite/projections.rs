//! [`Projections`] for SQLite: projections' state, the rows of their copies (the changes
//! a commit brings, applied in its transaction), queries (their SQL in `row_query.rs`),
//! blue/green rebuilds and read models. See docs/storage.md, "Projections and scheduled
//! commands on SQLite".

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::TransactionBehavior;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row as SqlRow};
use time::OffsetDateTime;
use uuid::Uuid;

use super::row_query::{chosen_field, field_expression, index_name, name_literal, query_sql, safe_field, ROW_COLUMNS};
use super::rows::{lease_micros, text, unreadable};
use super::{backend, type_filter, SqliteStore};
use crate::store::envelope::StreamId;
use crate::store::sql::{from_micros, micros, stored_count, to_i64};
use crate::store::{BoxFuture, BuildState, ProjectionSpec, ProjectionState, Projections, Row, RowChange, RowQuery};
use crate::store::{RowRead, StoreError, VersionConflict};

impl Projections for SqliteStore {
    fn register_projection(&self, spec: ProjectionSpec) -> BoxFuture<'_, Result<ProjectionState, StoreError>> {
        self.threads.write(move |c| register(c, &spec))
    }

    fn projection_state<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<ProjectionState>, StoreError>> {
        let name = name.to_owned();
        self.threads.read(move |c| state(c, &name))
    }

    fn projection_row<'a>(
        &'a self,
        name: &'a str,
        generation: Option<u64>,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Row>, StoreError>> {
        let (name, key) = (name.to_owned(), key.to_owned());
        self.threads.read(move |c| row(c, &name, generation, &key))
    }

    fn query_projection(&self, query: RowQuery) -> BoxFuture<'_, Result<Vec<Row>, StoreError>> {
        self.threads.read(move |c| query_rows(c, &query))
    }

    fn begin_build<'a>(
        &'a self,
        name: &'a str,
        version: u32,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<BuildState>, StoreError>> {
        let name = name.to_owned();
        self.threads.write(move |c| begin_build(c, &name, version, lease))
    }

    fn write_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        rows: Vec<(String, Option<Arc<str>>)>,
        position: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let name = name.to_owned();
        self.threads.write(move |c| write_build(c, &name, generation, &rows, position))
    }

    fn finish_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        position: u64,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let (name, types) = (name.to_owned(), types.to_vec());
        self.threads.write(move |c| finish_build(c, &name, generation, position, &types))
    }

    fn read_model<'a>(&'a self, name: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        let (name, key) = (name.to_owned(), key.to_owned());
        self.threads.read(move |c| read_model(c, &name, &key))
    }

    fn put_read_model<'a>(
        &'a self,
        name: &'a str,
        key: &'a str,
        json: String,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (name, key) = (name.to_owned(), key.to_owned());
        self.threads.write(move |c| put_read_model(c, &name, &key, &json))
    }
}

/// The columns a [`ProjectionState`] is read from (by [`state_of`], by name).
const STATE_COLUMNS: &str =
    "name, version, generation, built_through, checkpoint, build_generation, build_version, build_position,
     build_heartbeat";

/// What a corrupt projection state is reported as: the "stream" `projection/<name>`.
fn state_stream(name: &str) -> StreamId {
    StreamId::new("projection", name)
}

/// What a row, and a conflict on it, is named as: the stream `(projection, key)`.
fn row_stream(projection: &str, key: &str) -> StreamId {
    StreamId::new(projection.to_owned(), key)
}

/// A stored count of a projection's state (a generation, a position); a negative one is
/// [`StoreError::Corrupt`].
fn state_count(row: &SqlRow<'_>, column: &str, name: &str) -> Result<u64, StoreError> {
    let value: i64 = row.get(column).map_err(|e| unreadable(e, &state_stream(name), 0, column))?;
    stored_count(value, &state_stream(name), &format!("projection {column}"))
}

/// A stored projection version: one outside `u32` is [`StoreError::Corrupt`].
fn stored_version(value: i64, name: &str, column: &str) -> Result<u32, StoreError> {
    u32::try_from(value)
        .map_err(|_| StoreError::corrupt(&state_stream(name), 0, format!("the stored projection {column} is {value}")))
}

/// A projection's state from a row selected with [`STATE_COLUMNS`].
fn state_of(row: &SqlRow<'_>, name: &str) -> Result<ProjectionState, StoreError> {
    let stream = state_stream(name);
    let get = |column: &str| -> Result<Option<i64>, StoreError> {
        row.get(column).map_err(|e| unreadable(e, &stream, 0, column))
    };
    let version = stored_version(row.get("version").map_err(backend)?, name, "version")?;
    let build = match (get("build_generation")?, get("build_version")?, get("build_position")?, get("build_heartbeat")?)
    {
        (None, _, _, _) => None,
        (Some(generation), Some(version), Some(position), Some(heartbeat)) => Some(BuildState {
            generation: stored_count(generation, &stream, "build generation")?,
            version: stored_version(version, name, "build version")?,
            position: stored_count(position, &stream, "build position")?,
            heartbeat: from_micros(heartbeat, &stream, 0)?,
        }),
        _ => {
            return Err(StoreError::corrupt(
                &stream,
                0,
                "a rebuild is recorded without its version, position or heartbeat",
            ))
        }
    };
    Ok(ProjectionState {
        name: text(row, "name", &stream, 0, "projection name")?,
        version,
        generation: state_count(row, "generation", name)?,
        built_through: state_count(row, "built_through", name)?,
        checkpoint: state_count(row, "checkpoint", name)?,
        build,
        created: false,
    })
}

/// Where projection `name` stands, if the store keeps it.
fn state(connection: &Connection, name: &str) -> Result<Option<ProjectionState>, StoreError> {
    let mut select = connection
        .prepare_cached(&format!("SELECT {STATE_COLUMNS} FROM protean_projections WHERE name = ?1"))
        .map_err(backend)?;
    let mut rows = select.query([name]).map_err(backend)?;
    match rows.next().map_err(backend)? {
        Some(row) => state_of(row, name).map(Some),
        None => Ok(None),
    }
}

/// What changing rows of a projection the store does not keep is.
fn not_registered(name: &str) -> StoreError {
    StoreError::Unsupported(format!("the projection `{name}` is not registered with this store"))
}

/// Creates projection `spec.name`'s state when missing (serving copy 1 at `spec.version`,
/// never built) and the expression index of each declared field; returns its state.
pub(super) fn register(connection: &mut Connection, spec: &ProjectionSpec) -> Result<ProjectionState, StoreError> {
    let name = &*spec.name;
    let literal = name_literal(name)?;
    let fields = spec.indexed.iter().map(|field| safe_field(field)).collect::<Result<Vec<_>, _>>()?;
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    let created = tx
        .prepare_cached(
            "INSERT INTO protean_projections (name, version, generation, built_through, checkpoint)
             VALUES (?1, ?2, 1, 0, 0) ON CONFLICT (name) DO NOTHING",
        )
        .and_then(|mut s| s.execute(params![name, spec.version]))
        .map_err(backend)?
        == 1;
    for field in fields {
        tx.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS {} ON protean_projection_rows (projection, generation, {})
             WHERE projection = {literal}",
            index_name(name, field),
            field_expression(field),
        ))
        .map_err(backend)?;
    }
    let state = state(&tx, name)?.ok_or_else(|| not_registered(name))?;
    tx.commit().map_err(backend)?;
    Ok(ProjectionState { created, ..state })
}

/// A row of projection `projection` selected with [`ROW_COLUMNS`].
fn row_of(row: &SqlRow<'_>, projection: &str) -> Result<Row, StoreError> {
    let key = text(row, "key", &state_stream(projection), 0, "projection row's key")?;
    let stream = row_stream(projection, &key);
    let version = stored_count(row.get("version").map_err(backend)?, &stream, "row version")?;
    let generation = stored_count(row.get("generation").map_err(backend)?, &stream, "row generation")?;
    let json = text(row, "json", &stream, version, "projection row's JSON")?;
    Ok(Row { key, generation, version, json: Arc::from(json) })
}

/// The rows `sql` selects (with [`ROW_COLUMNS`]) of projection `projection`.
fn select_rows(
    connection: &Connection,
    sql: &str,
    values: impl rusqlite::Params,
    projection: &str,
) -> Result<Vec<Row>, StoreError> {
    let mut select = connection.prepare_cached(sql).map_err(backend)?;
    let mut rows = select.query(values).map_err(backend)?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        found.push(row_of(row, projection)?);
    }
    Ok(found)
}

/// One row of projection `name`: of copy `generation`, or of the serving copy.
fn row(connection: &Connection, name: &str, generation: Option<u64>, key: &str) -> Result<Option<Row>, StoreError> {
    let rows = match generation {
        Some(generation) => select_rows(
            connection,
            &format!(
                "SELECT {ROW_COLUMNS} FROM protean_projection_rows AS r
                 WHERE r.projection = ?1 AND r.generation = ?2 AND r.key = ?3"
            ),
            params![name, to_i64(generation), key],
            name,
        )?,
        None => select_rows(
            connection,
            &format!(
                "SELECT {ROW_COLUMNS} FROM protean_projections AS p
                 JOIN protean_projection_rows AS r
                     ON r.projection = p.name AND r.generation = p.generation AND r.key = ?2
                 WHERE p.name = ?1"
            ),
            params![name, key],
            name,
        )?,
    };
    Ok(rows.into_iter().next())
}

/// Refuses a batch whose reads ([`Batch::reads`](crate::store::Batch::reads)) no
/// longer hold: each row read by key is read again from the serving copy, each query
/// run again, in the write transaction open on `connection`.
pub(super) fn check_reads(connection: &Connection, reads: &[RowRead]) -> Result<(), StoreError> {
    crate::store::ports::check_reads(reads, |name, key| row(connection, name, None, key), |q| query_rows(connection, q))
}

/// The rows of the serving copy of `query.projection` that match it, by SQL on the
/// declared fields' expression indexes.
fn query_rows(connection: &Connection, query: &RowQuery) -> Result<Vec<Row>, StoreError> {
    let index = match chosen_field(query) {
        Some(field) => {
            let index = index_name(&query.projection, safe_field(field)?);
            let exists = connection
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?1)")
                .and_then(|mut s| s.query_row([&index], |r| r.get::<_, bool>(0)))
                .map_err(backend)?;
            exists.then_some(index)
        }
        None => None,
    };
    let (sql, values) = query_sql(query, index.as_deref())?;
    select_rows(connection, &sql, params_from_iter(values), &query.projection)
}

/// The position of event `id` in the log, if it is there.
fn event_position(tx: &Connection, id: Uuid) -> Result<Option<u64>, StoreError> {
    let position: Option<i64> = tx
        .prepare_cached("SELECT position FROM protean_events WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.to_string()], |r| r.get(0)).optional())
        .map_err(backend)?;
    // A rowid is never negative: SQLite assigns them from 1.
    Ok(position.map(|p| u64::try_from(p).unwrap_or(0)))
}

/// The last position of the log (0 when it is empty).
fn last_position(connection: &Connection) -> Result<u64, StoreError> {
    let last: i64 = connection
        .prepare_cached("SELECT coalesce(max(position), 0) FROM protean_events")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(backend)?;
    Ok(u64::try_from(last).unwrap_or(0))
}

/// Applies the row changes of a batch by the rule of
/// [`projection`](crate::store::ProjectionState)'s module, per projection: skipped while
/// it is rebuilt, or when `rows_from`'s event is at or before its `built_through`;
/// otherwise each change is checked against the serving copy and the row's version (a
/// [`StoreError::Conflict`] on `(projection, key)` fails the whole batch) and written,
/// and the projection's checkpoint moves to the position the changes come from:
/// `rows_from`'s, or the last of this batch's own events (`wrote_events`). A change to
/// a projection the store does not keep is [`StoreError::Unsupported`]; changes from an
/// event the log does not have are applied and move no checkpoint.
pub(super) fn apply_rows(
    tx: &Connection,
    rows: Vec<RowChange>,
    rows_from: Option<Uuid>,
    wrote_events: bool,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let position = match rows_from {
        Some(id) => event_position(tx, id)?,
        // This batch's events were appended last, in this transaction.
        None if wrote_events => Some(last_position(tx)?),
        None => None,
    };
    let mut by_projection: Vec<(Cow<'static, str>, Vec<RowChange>)> = Vec::new();
    for change in rows {
        match by_projection.iter_mut().find(|(name, _)| *name == change.projection) {
            Some((_, changes)) => changes.push(change),
            None => by_projection.push((change.projection.clone(), vec![change])),
        }
    }
    for (name, changes) in by_projection {
        let state = state(tx, &name)?.ok_or_else(|| not_registered(&name))?;
        if state.build.is_some() {
            continue; // the rebuild covers these events
        }
        if rows_from.is_some() && position.is_some_and(|position| position <= state.built_through) {
            continue; // the rebuild applied this event
        }
        for change in changes {
            apply_change(tx, &state, change)?;
        }
        if let Some(position) = position {
            tx.prepare_cached("UPDATE protean_projections SET checkpoint = max(checkpoint, ?2) WHERE name = ?1")
                .and_then(|mut s| s.execute(params![&*name, to_i64(position)]))
                .map_err(backend)?;
        }
    }
    Ok(())
}

/// The version of row `key` of copy `generation` of `projection` (0: no such row).
fn row_version(tx: &Connection, projection: &str, generation: u64, key: &str) -> Result<u64, StoreError> {
    let version: Option<i64> = tx
        .prepare_cached(
            "SELECT version FROM protean_projection_rows WHERE projection = ?1 AND generation = ?2 AND key = ?3",
        )
        .and_then(|mut s| s.query_row(params![projection, to_i64(generation), key], |r| r.get(0)).optional())
        .map_err(backend)?;
    version.map_or(Ok(0), |version| stored_count(version, &row_stream(projection, key), "row version"))
}

/// Writes row `key` of copy `generation` (its version one more than before, 1 when new),
/// or with `None` deletes it. JSON that is not valid is [`StoreError::Serialize`].
fn put_row(
    tx: &Connection,
    projection: &str,
    generation: u64,
    key: &str,
    json: Option<&str>,
) -> Result<(), StoreError> {
    let generation = to_i64(generation);
    let Some(json) = json else {
        return tx
            .prepare_cached(
                "DELETE FROM protean_projection_rows WHERE projection = ?1 AND generation = ?2 AND key = ?3",
            )
            .and_then(|mut s| s.execute(params![projection, generation, key]))
            .map(drop)
            .map_err(backend);
    };
    // Only valid JSON is written: the expression indexes and queries read it.
    let written = tx
        .prepare_cached(
            "INSERT INTO protean_projection_rows (projection, generation, key, version, json)
             SELECT ?1, ?2, ?3, 1, ?4 WHERE json_valid(?4)
             ON CONFLICT (projection, generation, key) DO UPDATE SET version = version + 1, json = excluded.json",
        )
        .and_then(|mut s| s.execute(params![projection, generation, key, json]))
        .map_err(backend)?;
    if written == 0 {
        return Err(StoreError::Serialize {
            what: format!("the row `{key}` of projection `{projection}`"),
            reason: "it is not valid JSON".into(),
        });
    }
    Ok(())
}

/// Checks one live change against the serving copy and writes it.
fn apply_change(tx: &Connection, state: &ProjectionState, change: RowChange) -> Result<(), StoreError> {
    let actual = row_version(tx, &change.projection, state.generation, &change.key)?;
    if change.generation != state.generation || change.expected_version != actual {
        let stream = row_stream(&change.projection, &change.key);
        return Err(VersionConflict { stream, expected: change.expected_version, actual }.into());
    }
    put_row(tx, &change.projection, state.generation, &change.key, change.json.as_deref())
}

/// The time now, as stored (to the microsecond) and as read back.
fn now() -> (i64, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    let stored = micros(now);
    // Truncating a valid time to the microsecond keeps it valid.
    (stored, OffsetDateTime::from_unix_timestamp_nanos(i128::from(stored) * 1_000).unwrap_or(now))
}

/// The conflict of a builder whose copy is no longer being built: on the stream
/// `(name, "build")`, expecting its generation, finding the one being built (0: none).
fn build_conflict(name: &str, generation: u64, state: Option<&ProjectionState>) -> StoreError {
    let actual = state.and_then(|s| s.build.as_ref()).map_or(0, |b| b.generation);
    VersionConflict { stream: StreamId::new(name.to_owned(), "build"), expected: generation, actual }.into()
}

/// Starts a rebuild of `name` at `version` into a new copy, or takes over one whose
/// builder has been silent for `lease` (see [`Projections::begin_build`]); `None` when another
/// builder is at work. A silent build of another version is abandoned (its rows
/// dropped) and a new one started: its rows were made by other projectors.
///
/// [`Projections::begin_build`]: crate::store::Projections::begin_build
fn begin_build(
    connection: &mut Connection,
    name: &str,
    version: u32,
    lease: Duration,
) -> Result<Option<BuildState>, StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    let state = state(&tx, name)?.ok_or_else(|| not_registered(name))?;
    let (now_us, now) = now();
    if let Some(build) = &state.build {
        let silent = now_us.saturating_sub(micros(build.heartbeat));
        if silent < lease_micros(lease) {
            return Ok(None); // its builder is at work
        }
        if build.version == version {
            // Taken over into a new copy holding the rows written so far, so that the
            // silent builder's writes, should it wake, are refused.
            let generation = next_generation(&tx, name, &state)?;
            tx.prepare_cached(
                "UPDATE protean_projection_rows SET generation = ?3 WHERE projection = ?1 AND generation = ?2",
            )
            .and_then(|mut s| s.execute(params![name, to_i64(build.generation), to_i64(generation)]))
            .map_err(backend)?;
            tx.prepare_cached(
                "UPDATE protean_projections SET build_generation = ?2, build_heartbeat = ?3 WHERE name = ?1",
            )
            .and_then(|mut s| s.execute(params![name, to_i64(generation), now_us]))
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            return Ok(Some(BuildState { generation, heartbeat: now, ..build.clone() }));
        }
        tx.prepare_cached("DELETE FROM protean_projection_rows WHERE projection = ?1 AND generation = ?2")
            .and_then(|mut s| s.execute(params![name, to_i64(build.generation)]))
            .map_err(backend)?;
    }
    let generation = next_generation(&tx, name, &state)?;
    tx.prepare_cached("DELETE FROM protean_projection_rows WHERE projection = ?1 AND generation = ?2")
        .and_then(|mut s| s.execute(params![name, to_i64(generation)]))
        .map_err(backend)?;
    tx.prepare_cached(
        "UPDATE protean_projections SET build_generation = ?2, build_version = ?3, build_position = 0,
             build_heartbeat = ?4 WHERE name = ?1",
    )
    .and_then(|mut s| s.execute(params![name, to_i64(generation), version, now_us]))
    .map_err(backend)?;
    tx.commit().map_err(backend)?;
    Ok(Some(BuildState { generation, version, position: 0, heartbeat: now }))
}

/// A generation no copy of the projection has used.
fn next_generation(tx: &rusqlite::Transaction<'_>, name: &str, state: &ProjectionState) -> Result<u64, StoreError> {
    let highest: i64 = tx
        .prepare_cached("SELECT coalesce(max(generation), 0) FROM protean_projection_rows WHERE projection = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)))
        .map_err(backend)?;
    let highest = stored_count(highest, &state_stream(name), "row generation")?;
    Ok(highest.max(state.generation).max(state.build.as_ref().map_or(0, |b| b.generation)) + 1)
}

/// Writes rows into the copy a rebuild fills, records its position and heartbeat (see
/// [`Projections::write_build`](crate::store::Projections::write_build)).
fn write_build(
    connection: &mut Connection,
    name: &str,
    generation: u64,
    rows: &[(String, Option<Arc<str>>)],
    position: u64,
) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    let state = state(&tx, name)?;
    if state.as_ref().and_then(|s| s.build.as_ref()).is_none_or(|b| b.generation != generation) {
        return Err(build_conflict(name, generation, state.as_ref()));
    }
    for (key, json) in rows {
        put_row(&tx, name, generation, key, json.as_deref())?;
    }
    tx.prepare_cached("UPDATE protean_projections SET build_position = ?2, build_heartbeat = ?3 WHERE name = ?1")
        .and_then(|mut s| s.execute(params![name, to_i64(position), now().0]))
        .map_err(backend)?;
    tx.commit().map_err(backend)
}

/// Finishes a rebuild in one transaction on the writer (see
/// [`Projections::finish_build`](crate::store::Projections::finish_build)): the write lock it takes
/// keeps every commit, of any process, out until it is done.
fn finish_build(
    connection: &mut Connection,
    name: &str,
    generation: u64,
    position: u64,
    types: &[String],
) -> Result<bool, StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    let state = state(&tx, name)?;
    if state.as_ref().and_then(|s| s.build.as_ref()).is_none_or(|b| b.generation != generation) {
        return Err(build_conflict(name, generation, state.as_ref()));
    }
    let (filter, mut values) = type_filter(types, 2);
    values.insert(0, Value::Integer(to_i64(position)));
    let pending = tx
        .prepare_cached(&format!("SELECT EXISTS (SELECT 1 FROM protean_events WHERE position > ?1{filter})"))
        .and_then(|mut s| s.query_row(params_from_iter(values), |r| r.get::<_, bool>(0)))
        .map_err(backend)?;
    if pending {
        return Ok(false); // rolled back: nothing changed
    }
    let last = to_i64(last_position(&tx)?);
    tx.prepare_cached(
        "UPDATE protean_projections SET generation = build_generation, version = build_version,
             built_through = ?2, checkpoint = ?2, build_generation = NULL, build_version = NULL,
             build_position = NULL, build_heartbeat = NULL WHERE name = ?1",
    )
    .and_then(|mut s| s.execute(params![name, last]))
    .map_err(backend)?;
    // Every other copy goes: the one that served, and any left by an abandoned rebuild.
    tx.prepare_cached("DELETE FROM protean_projection_rows WHERE projection = ?1 AND generation <> ?2")
        .and_then(|mut s| s.execute(params![name, to_i64(generation)]))
        .map_err(backend)?;
    tx.commit().map_err(backend)?;
    Ok(true)
}

fn read_model(connection: &Connection, name: &str, key: &str) -> Result<Option<String>, StoreError> {
    let row = connection
        .prepare_cached("SELECT json FROM protean_read_models WHERE name = ?1 AND key = ?2")
        .and_then(|mut s| s.query_row(params![name, key], |r| Ok(r.get::<_, String>("json"))).optional())
        .map_err(backend)?;
    // A read model is named like a stream: its name and key.
    row.map(|json| json.map_err(|e| unreadable(e, &StreamId::new(name.to_owned(), key), 0, "read model's JSON")))
        .transpose()
}

fn put_read_model(connection: &Connection, name: &str, key: &str, json: &str) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO protean_read_models (name, key, json) VALUES (?1, ?2, ?3)
             ON CONFLICT (name, key) DO UPDATE SET json = excluded.json",
        )
        .and_then(|mut s| s.execute(params![name, key, json]))
        .map(drop)
        .map_err(backend)
}
