//! What each store operation runs on its connection, and how rows read back: by column
//! name, with bad stored values as typed errors.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension, Params, Row, Transaction, TransactionBehavior};
use time::OffsetDateTime;
use uuid::Uuid;

use super::backend;
use crate::store::envelope::{Envelope, StreamId};
use crate::store::sql::{from_micros, micros, stored_count, to_i64};
use crate::store::{Batch, ClaimOrder, Commit, Committed, Record, Snapshot, StoreError, VersionConflict, MAX_LEASE};

/// The columns an [`Envelope`] is read from (by [`envelope`], by name).
const EVENT_COLUMNS: &str =
    "id, aggregate, stream_id, sequence, type_name, version, payload, recorded_at, correlation_id, causation_id";

/// A stored value that does not read as the type asked for (text that is not valid
/// UTF-8, a blob or a number where text belongs) is corrupt data of `stream` at
/// `position`; any other error is the backend's.
fn unreadable(e: rusqlite::Error, stream: &StreamId, position: u64, what: &str) -> StoreError {
    match e {
        rusqlite::Error::FromSqlConversionFailure(_, _, cause) => {
            StoreError::corrupt(stream, position, format!("the {what} does not read as text: {cause}"))
        }
        rusqlite::Error::InvalidColumnType(_, _, found) => {
            StoreError::corrupt(stream, position, format!("the {what} is stored as {found}, not as text"))
        }
        e => backend(e),
    }
}

/// The text `column` of a row of `stream` at `position`; unreadable text is
/// [`StoreError::Corrupt`].
fn text(row: &Row<'_>, column: &str, stream: &StreamId, position: u64, what: &str) -> Result<String, StoreError> {
    row.get(column).map_err(|e| unreadable(e, stream, position, what))
}

/// The stream of an event row selected with [`EVENT_COLUMNS`]. When its aggregate or id
/// is not valid UTF-8 the error names the stream as well as it can (lossily).
fn event_stream(row: &Row<'_>) -> Result<StreamId, StoreError> {
    let (aggregate, id) = (row.get_ref("aggregate").map_err(backend)?, row.get_ref("stream_id").map_err(backend)?);
    if let (Ok(aggregate), Ok(id)) = (aggregate.as_str(), id.as_str()) {
        return Ok(StreamId::new(aggregate.to_owned(), id));
    }
    let lossy = |value: ValueRef<'_>| match value {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => format!("{other:?}"),
    };
    let stream = StreamId::new(lossy(aggregate), lossy(id));
    // The position only locates the damage; when it is unreadable too, 0 says so.
    let sequence = match row.get::<_, i64>("sequence") {
        Ok(sequence) => u64::try_from(sequence).unwrap_or(0),
        Err(error) => {
            tracing::warn!(%stream, %error, "the sequence of an event with an unreadable stream is unreadable too");
            0
        }
    };
    Err(StoreError::corrupt(&stream, sequence, "the event's aggregate or stream id is not valid UTF-8 text"))
}

/// An envelope from a row selected with [`EVENT_COLUMNS`]; bad stored values are typed errors.
fn envelope(row: &Row<'_>) -> Result<Envelope, StoreError> {
    let stream = event_stream(row)?;
    let sequence: i64 = row.get("sequence").map_err(backend)?;
    let position = stored_count(sequence, &stream, "event sequence")?;
    let uuid = |column: &str, what: &str| -> Result<Uuid, StoreError> {
        let text = text(row, column, &stream, position, what)?;
        Uuid::parse_str(&text).map_err(|e| StoreError::corrupt(&stream, position, format!("{what} `{text}`: {e}")))
    };
    let id = uuid("id", "event id")?;
    let correlation_id = uuid("correlation_id", "correlation id")?;
    let causation_id = uuid("causation_id", "causation id")?;
    let type_name = text(row, "type_name", &stream, position, "event type name")?;
    let version: i64 = row.get("version").map_err(backend)?;
    let version = u32::try_from(version)
        .map_err(|_| StoreError::corrupt(&stream, position, format!("event version {version} is out of range")))?;
    let payload = text(row, "payload", &stream, position, "event payload")?;
    let recorded: i64 = row.get("recorded_at").map_err(backend)?;
    let recorded_at = from_micros(recorded, &stream, position)?;
    Ok(Envelope::stored_event(
        id,
        Cow::Owned(type_name),
        version,
        stream,
        position,
        recorded_at,
        correlation_id,
        causation_id,
        payload.into(),
    ))
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

/// Frees the claims of every owner but `owner`: one process per file, so they were made
/// by a process that is gone.
pub(super) fn release_stale_claims(connection: &Connection, owner: Uuid) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "UPDATE protean_events SET claimed_until = NULL, claimed_by = NULL
             WHERE delivered = 0 AND claimed_until IS NOT NULL AND claimed_by IS NOT ?1",
        )
        .and_then(|mut s| s.execute([owner.to_string()]))
        .map(drop)
        .map_err(backend)
}

pub(super) fn commit(connection: &mut Connection, batch: Batch) -> Result<Vec<Committed>, StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    if let Some(handled) = &batch.handled {
        let inserted = tx
            .prepare_cached("INSERT OR IGNORE INTO protean_handled (handler, message_id) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![&*handled.handler, handled.message_id.to_string()]))
            .map_err(backend)?;
        if inserted == 0 {
            return Err(StoreError::AlreadyHandled {
                handler: handled.handler.to_string(),
                message_id: handled.message_id,
            });
        }
    }
    let mut committed = Vec::with_capacity(batch.commits.len());
    for commit in batch.commits {
        committed.push(write(&tx, commit)?);
    }
    mark(&tx, &batch.delivered)?;
    tx.commit().map_err(backend)?;
    Ok(committed)
}

fn mark(tx: &Transaction<'_>, delivered: &[Uuid]) -> Result<(), StoreError> {
    if delivered.is_empty() {
        return Ok(());
    }
    let mut mark = tx.prepare_cached("UPDATE protean_events SET delivered = 1 WHERE id = ?1").map_err(backend)?;
    for id in delivered {
        mark.execute([id.to_string()]).map_err(backend)?;
    }
    Ok(())
}

fn write(tx: &Transaction<'_>, commit: Commit) -> Result<Committed, StoreError> {
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

/// Claims up to `limit` undelivered events for `owner` (see [`ClaimOrder`]).
pub(super) fn claim(
    connection: &mut Connection,
    owner: Uuid,
    limit: usize,
    lease: Duration,
) -> Result<Vec<Envelope>, StoreError> {
    let now = OffsetDateTime::now_utc();
    let (now_us, until_us) = (micros(now), micros(now + lease.min(MAX_LEASE)));
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    let mut claimed = Vec::new();
    let mut order = ClaimOrder::new();
    {
        let mut select = tx
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS}, claimed_until FROM protean_events WHERE delivered = 0 ORDER BY position"
            ))
            .map_err(backend)?;
        let mut rows = select.query([]).map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            if claimed.len() == limit {
                break;
            }
            let stream = event_stream(row)?;
            let claimed_until: Option<i64> = row.get("claimed_until").map_err(backend)?;
            if order.take(stream, claimed_until.is_some_and(|until| until > now_us)) {
                claimed.push(envelope(row)?);
            }
        }
    }
    {
        let mut claim = tx
            .prepare_cached("UPDATE protean_events SET claimed_until = ?1, claimed_by = ?2 WHERE id = ?3")
            .map_err(backend)?;
        let owner = owner.to_string();
        for event in &claimed {
            claim.execute(params![until_us, owner, event.id.to_string()]).map_err(backend)?;
        }
    }
    tx.commit().map_err(backend)?;
    Ok(claimed)
}

pub(super) fn mark_delivered(connection: &mut Connection, event_ids: &[Uuid]) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    mark(&tx, event_ids)?;
    tx.commit().map_err(backend)
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

pub(super) fn load(connection: &Connection, stream: &StreamId) -> Result<Option<Record>, StoreError> {
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

pub(super) fn is_handled(connection: &Connection, handler: &str, message_id: Uuid) -> Result<bool, StoreError> {
    connection
        .prepare_cached("SELECT 1 FROM protean_handled WHERE handler = ?1 AND message_id = ?2")
        .and_then(|mut s| s.exists(params![handler, message_id.to_string()]))
        .map_err(backend)
}

pub(super) fn stream(connection: &Connection, stream: &StreamId) -> Result<Vec<Envelope>, StoreError> {
    select_events(
        connection,
        "WHERE aggregate = ?1 AND stream_id = ?2 ORDER BY sequence",
        params![&*stream.aggregate, &*stream.id],
    )
}

pub(super) fn stream_range(
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

pub(super) fn events(connection: &Connection, from: u64, limit: usize) -> Result<Vec<Envelope>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    select_events(connection, "ORDER BY position LIMIT ?1 OFFSET ?2", params![limit, to_i64(from)])
}

pub(super) fn load_snapshot(
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

pub(super) fn read_model(connection: &Connection, name: &str, key: &str) -> Result<Option<String>, StoreError> {
    let row = connection
        .prepare_cached("SELECT json FROM protean_read_models WHERE name = ?1 AND key = ?2")
        .and_then(|mut s| s.query_row(params![name, key], |r| Ok(r.get::<_, String>("json"))).optional())
        .map_err(backend)?;
    // A read model is named like a stream: its name and key.
    row.map(|json| json.map_err(|e| unreadable(e, &StreamId::new(name.to_owned(), key), 0, "read model's JSON")))
        .transpose()
}

pub(super) fn put_read_model(connection: &Connection, name: &str, key: &str, json: &str) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO protean_read_models (name, key, json) VALUES (?1, ?2, ?3)
             ON CONFLICT (name, key) DO UPDATE SET json = excluded.json",
        )
        .and_then(|mut s| s.execute(params![name, key, json]))
        .map(drop)
        .map_err(backend)
}
