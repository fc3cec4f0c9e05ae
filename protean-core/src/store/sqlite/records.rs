//! [`Records`] for SQLite: aggregates' records, event streams, snapshots and the
//! positioned log, read on the reader threads, and the records and events a commit
//! writes in its unit of work's transaction (`batch.rs`). See docs/storage.md.

use std::sync::Arc;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Params, Row};

use super::rows::{envelope, unreadable, EVENT_COLUMNS};
use super::{backend, type_filter, SqliteStore};
use crate::store::envelope::{Envelope, StreamId};
use crate::store::sql::{micros, stored_count, to_i64};
use crate::store::{Batch, BoxFuture, Commit, Committed, Logged, Record, Records, ReplayEvents, Snapshot};
use crate::store::{StoreError, StoredEvent, VersionConflict};

impl Records for SqliteStore {
    /// [`SqliteStore::migrate`].
    fn migrate(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(SqliteStore::migrate(self))
    }

    /// [`SqliteStore::close`].
    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.threads.close()
    }

    fn load<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        let stream = stream.clone();
        self.threads.read(move |c| load(c, &stream))
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, Result<Vec<Committed>, StoreError>> {
        self.threads.commit(batch)
    }

    /// The batches are written as one group, in one transaction (with the other commits
    /// waiting for the writer, if any), each in its own savepoint; see
    /// [`SqliteOptions::group_commit`](super::SqliteOptions::group_commit). With grouping off, one transaction each.
    fn commit_group(&self, batches: Vec<Batch>) -> BoxFuture<'_, Vec<Result<Vec<Committed>, StoreError>>> {
        self.threads.commit_group(batches)
    }

    fn stream<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        let stream = stream.clone();
        self.threads.read(move |c| stream_events(c, &stream))
    }

    fn stream_range<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        let stream = stream.clone();
        self.threads.read(move |c| stream_range(c, &stream, after, up_to))
    }

    fn replay_events<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<ReplayEvents, StoreError>> {
        let stream = stream.clone();
        self.threads.read(move |c| replay_events(c, &stream, after, up_to))
    }

    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
        at_most: Option<u64>,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        let stream = stream.clone();
        self.threads.read(move |c| load_snapshot(c, &stream, at_most))
    }

    fn events(&self, from: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        self.threads.read(move |c| events(c, from, limit))
    }

    fn log_after<'a>(
        &'a self,
        after: u64,
        limit: usize,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Logged>, StoreError>> {
        let types = types.to_vec();
        self.threads.read(move |c| log_after(c, after, limit, &types))
    }

    fn log_count<'a>(&'a self, after: u64, types: &'a [String]) -> BoxFuture<'a, Result<u64, StoreError>> {
        let types = types.to_vec();
        self.threads.read(move |c| log_count(c, after, &types))
    }
}

/// The events `SELECT {EVENT_COLUMNS} FROM protean_events {filter}` finds, in its order.
fn select_events(connection: &Connection, filter: &str, params: impl Params) -> Result<Vec<Envelope>, StoreError> {
    let mut select =
        connection.prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM protean_events {filter}")).map_err(backend)?;
    let mut rows = select.query(params).map_err(backend)?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        events.push(envelope(row)?);
    }
    Ok(events)
}

/// Writes `commit`'s record, events and snapshot in the transaction open on `tx`, if the
/// stored version is the one it expects; what it committed, its events numbered.
pub(super) fn write(tx: &Connection, commit: Commit) -> Result<Committed, StoreError> {
    let Commit { stream, expected_version, advance, state, mut events, snapshot } = commit;
    let row: Option<(i64, bool, i64)> = tx
        .prepare_cached(
            "SELECT version, state IS NOT NULL AS present, last_sequence FROM protean_aggregates
             WHERE aggregate = ?1 AND id = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![&*stream.aggregate, &*stream.id], |r| {
                Ok((r.get("version")?, r.get("present")?, r.get("last_sequence")?))
            })
            .optional()
        })
        .map_err(backend)?;
    let (actual, stored, mut last_sequence) = match row {
        Some((version, present, last)) => {
            let stored = stored_count(version, &stream, "version")?;
            (if present { stored } else { 0 }, stored, stored_count(last, &stream, "last sequence")?)
        }
        None => (0, 0, 0),
    };
    if actual != expected_version {
        return Err(VersionConflict { stream, expected: expected_version, actual }.into());
    }
    // Versions keep rising across a removal (a stale writer of the removed one is refused).
    let version = stored.saturating_add(advance);
    let last_after = last_sequence.saturating_add(u64::try_from(events.len()).unwrap_or(u64::MAX));
    tx.prepare_cached(
        "INSERT INTO protean_aggregates (aggregate, id, version, state, last_sequence) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (aggregate, id) DO UPDATE SET version = excluded.version, state = excluded.state,
             last_sequence = excluded.last_sequence",
    )
    .and_then(|mut s| {
        s.execute(params![&*stream.aggregate, &*stream.id, to_i64(version), state.as_deref(), to_i64(last_after)])
    })
    .map_err(backend)?;
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload, recorded_at,
                 correlation_id, causation_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(backend)?;
    for event in &mut events {
        last_sequence += 1;
        event.sequence = last_sequence;
        insert
            .execute(params![
                event.id.to_string(),
                &*stream.aggregate,
                &*stream.id,
                to_i64(last_sequence),
                &*event.type_name,
                event.version,
                &*event.payload,
                micros(event.recorded_at),
                event.correlation_id.to_string(),
                event.causation_id.to_string(),
            ])
            .map_err(backend)?;
    }
    if let Some(snapshot) = snapshot {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO protean_snapshots (aggregate, id, sequence, state) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| s.execute(params![&*stream.aggregate, &*stream.id, to_i64(last_sequence), &*snapshot]))
        .map_err(backend)?;
    }
    Ok(Committed { stream, version, events })
}

/// The row of `stream` that `sql` selects, if any: a count (a version, a sequence) as
/// `at`, and the JSON kept at it as `json`. A negative count or unreadable text is
/// [`StoreError::Corrupt`], naming what it is (the count's and the JSON's `whats`).
fn counted_json(
    connection: &Connection,
    sql: &str,
    params: impl Params,
    stream: &StreamId,
    [count_what, json_what]: [&str; 2],
) -> Result<Option<(u64, String)>, StoreError> {
    let row = connection
        .prepare_cached(sql)
        .and_then(|mut s| s.query_row(params, |r| Ok((r.get::<_, i64>("at")?, r.get::<_, String>("json")))).optional())
        .map_err(backend)?;
    let Some((at, json)) = row else { return Ok(None) };
    let at = stored_count(at, stream, count_what)?;
    let json = json.map_err(|e| unreadable(e, stream, at, json_what))?;
    Ok(Some((at, json)))
}

fn load(connection: &Connection, stream: &StreamId) -> Result<Option<Record>, StoreError> {
    let row = counted_json(
        connection,
        "SELECT version AS at, state AS json FROM protean_aggregates
         WHERE aggregate = ?1 AND id = ?2 AND state IS NOT NULL",
        params![&*stream.aggregate, &*stream.id],
        stream,
        ["version", "aggregate's state"],
    )?;
    Ok(row.map(|(version, state)| Record { version, state: state.into() }))
}

fn stream_events(connection: &Connection, stream: &StreamId) -> Result<Vec<Envelope>, StoreError> {
    select_events(
        connection,
        "WHERE aggregate = ?1 AND stream_id = ?2 ORDER BY sequence",
        params![&*stream.aggregate, &*stream.id],
    )
}

fn stream_range(
    connection: &Connection,
    stream: &StreamId,
    after: u64,
    up_to: Option<u64>,
) -> Result<Vec<Envelope>, StoreError> {
    let up_to = up_to.map_or(i64::MAX, to_i64);
    select_events(
        connection,
        "WHERE aggregate = ?1 AND stream_id = ?2 AND sequence > ?3 AND sequence <= ?4 ORDER BY sequence",
        params![&*stream.aggregate, &*stream.id, to_i64(after), up_to],
    )
}

/// The text of column `index` of a row of `stream` at `position`, borrowed from the row;
/// text that is not valid UTF-8, or a value that is not text, is [`StoreError::Corrupt`]
/// (as [`unreadable`] words it).
fn borrowed_text<'r>(
    row: &'r Row<'_>,
    index: usize,
    stream: &StreamId,
    position: u64,
    what: &str,
) -> Result<&'r str, StoreError> {
    match row.get_ref(index).map_err(backend)? {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes)
            .map_err(|e| StoreError::corrupt(stream, position, format!("the {what} does not read as text: {e}"))),
        other => Err(StoreError::corrupt(
            stream,
            position,
            format!("the {what} is stored as {}, not as text", other.data_type()),
        )),
    }
}

/// What a replay of `stream` after `after` (up to `up_to`) reads: only the sequence, type
/// name, version and payload of each event, by column index, copied straight from the
/// rows into one [`ReplayEvents`].
fn replay_events(
    connection: &Connection,
    stream: &StreamId,
    after: u64,
    up_to: Option<u64>,
) -> Result<ReplayEvents, StoreError> {
    let mut select = connection
        .prepare_cached(
            "SELECT sequence, type_name, version, payload FROM protean_events
             WHERE aggregate = ?1 AND stream_id = ?2 AND sequence > ?3 AND sequence <= ?4 ORDER BY sequence",
        )
        .map_err(backend)?;
    let up_to = up_to.map_or(i64::MAX, to_i64);
    let mut rows = select.query(params![&*stream.aggregate, &*stream.id, to_i64(after), up_to]).map_err(backend)?;
    let mut events = ReplayEvents::new();
    while let Some(row) = rows.next().map_err(backend)? {
        let sequence: i64 = row.get(0).map_err(backend)?;
        let sequence = stored_count(sequence, stream, "event sequence")?;
        let type_name = borrowed_text(row, 1, stream, sequence, "event type name")?;
        let version: i64 = row.get(2).map_err(backend)?;
        let version = u32::try_from(version)
            .map_err(|_| StoreError::corrupt(stream, sequence, format!("event version {version} is out of range")))?;
        let payload = borrowed_text(row, 3, stream, sequence, "event payload")?;
        events.push(StoredEvent { sequence, type_name, version, payload });
    }
    Ok(events)
}

fn events(connection: &Connection, from: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    select_events(connection, "ORDER BY position LIMIT ?1 OFFSET ?2", params![limit, to_i64(from)])
}

fn load_snapshot(
    connection: &Connection,
    stream: &StreamId,
    at_most: Option<u64>,
) -> Result<Option<Snapshot>, StoreError> {
    let row = counted_json(
        connection,
        "SELECT sequence AS at, state AS json FROM protean_snapshots
         WHERE aggregate = ?1 AND id = ?2 AND sequence <= ?3 ORDER BY sequence DESC LIMIT 1",
        params![&*stream.aggregate, &*stream.id, at_most.map_or(i64::MAX, to_i64)],
        stream,
        ["snapshot sequence", "snapshot"],
    )?;
    Ok(row.map(|(sequence, state)| Snapshot { sequence, state: Arc::from(state) }))
}

/// Up to `limit` events of `types` (all when empty) after log position `after`, in log
/// order, with their positions.
fn log_after(connection: &Connection, after: u64, limit: usize, types: &[String]) -> Result<Vec<Logged>, StoreError> {
    let (filter, types) = type_filter(types, 3);
    let mut values = vec![Value::Integer(to_i64(after)), Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX))];
    values.extend(types);
    let mut select = connection
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS}, position FROM protean_events WHERE position > ?1{filter}
             ORDER BY position LIMIT ?2"
        ))
        .map_err(backend)?;
    let mut rows = select.query(params_from_iter(values)).map_err(backend)?;
    let mut logged = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        let event = envelope(row)?;
        // A rowid is never negative: SQLite assigns them from 1.
        let position = u64::try_from(row.get::<_, i64>("position").map_err(backend)?).unwrap_or(0);
        logged.push(Logged { position, event });
    }
    Ok(logged)
}

/// How many events of `types` (all when empty) are stored after log position `after`.
fn log_count(connection: &Connection, after: u64, types: &[String]) -> Result<u64, StoreError> {
    let (filter, types) = type_filter(types, 2);
    let mut values = vec![Value::Integer(to_i64(after))];
    values.extend(types);
    let count: i64 = connection
        .prepare_cached(&format!("SELECT count(*) FROM protean_events WHERE position > ?1{filter}"))
        .and_then(|mut s| s.query_row(params_from_iter(values), |r| r.get(0)))
        .map_err(backend)?;
    // A count is never negative.
    Ok(u64::try_from(count).unwrap_or(0))
}
