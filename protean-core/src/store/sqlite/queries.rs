//! What each store operation runs on its connection, and how rows read back: by column
//! name, with bad stored values as typed errors.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension, Params, Row, TransactionBehavior};
use time::OffsetDateTime;
use uuid::Uuid;

use super::backend;
use super::rows::{envelope, event_stream, text, unreadable, EVENT_COLUMNS};
use crate::store::envelope::{Envelope, StreamId};
use crate::store::sql::{from_micros, micros, stored_count, to_i64};
use crate::store::{Batch, ClaimOrder, Commit, Committed, Record, Snapshot, StoreError, VersionConflict, MAX_LEASE};
use crate::store::{FailedDelivery, FailureQuery, FailureStatus, FailureUpdate, HandlerState, OutboxStatus};
use crate::store::{ReplayEvents, StoredEvent};

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

/// Frees the claims of every owner but `owner`, on undelivered events and on scheduled
/// commands: one process per file, so they were made by a process that is gone.
pub(super) fn release_stale_claims(connection: &Connection, owner: Uuid) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "UPDATE protean_events SET claimed_until = NULL, claimed_by = NULL
             WHERE delivered = 0 AND claimed_until IS NOT NULL AND claimed_by IS NOT ?1",
        )
        .and_then(|mut s| s.execute([owner.to_string()]))
        .map_err(backend)?;
    super::scheduled::release_stale(connection, owner)
}

/// Writes a unit of work's batch inside the transaction (or savepoint) open on
/// `connection`, which must be a write transaction: first checks what the unit read
/// (see [`check_reads`](super::projections::check_reads)), then writes the handled record, the aggregates
/// and their events, the delivered marks, the projection rows (see
/// [`apply_rows`](super::projections::apply_rows)), then the cancelled deadlines and the
/// scheduled commands (in that order, so a deadline cancelled and scheduled again in one
/// step stays). On an error the caller rolls back what it wrote (the transaction, or
/// the unit's savepoint in a group).
pub(super) fn apply_batch(connection: &Connection, batch: Batch) -> Result<Vec<Committed>, StoreError> {
    let Batch { commits, handled, delivered, rows, rows_from, schedule, cancel, reads } = batch;
    let tx = connection;
    // What the unit decided on must still be as it read it: checked in this transaction,
    // which no other writer shares (one writer thread, `BEGIN IMMEDIATE`).
    super::projections::check_reads(tx, &reads)?;
    if let Some(handled) = &handled {
        let inserted = tx
            .prepare_cached("INSERT OR IGNORE INTO protean_handled (handler, message_id, outcome) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| {
                s.execute(params![&*handled.handler, handled.message_id.to_string(), handled.outcome.as_deref()])
            })
            .map_err(backend)?;
        if inserted == 0 {
            return Err(StoreError::AlreadyHandled {
                handler: handled.handler.to_string(),
                message_id: handled.message_id,
            });
        }
    }
    let wrote_events = commits.iter().any(|commit| !commit.events.is_empty());
    let mut committed = Vec::with_capacity(commits.len());
    for commit in commits {
        committed.push(write(tx, commit)?);
    }
    mark(tx, &delivered)?;
    super::projections::apply_rows(tx, rows, rows_from, wrote_events)?;
    super::scheduled::cancel(tx, &cancel)?;
    super::scheduled::insert(tx, &schedule)?;
    Ok(committed)
}

fn mark(tx: &Connection, delivered: &[Uuid]) -> Result<(), StoreError> {
    if delivered.is_empty() {
        return Ok(());
    }
    let mut mark = tx.prepare_cached("UPDATE protean_events SET delivered = 1 WHERE id = ?1").map_err(backend)?;
    for id in delivered {
        mark.execute([id.to_string()]).map_err(backend)?;
    }
    Ok(())
}

fn write(tx: &Connection, commit: Commit) -> Result<Committed, StoreError> {
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

/// Extends `owner`'s claims on the undelivered events of `event_ids` to `lease` from now.
pub(super) fn renew_claims(
    connection: &mut Connection,
    owner: Uuid,
    event_ids: &[Uuid],
    lease: Duration,
) -> Result<(), StoreError> {
    let until = micros(OffsetDateTime::now_utc() + lease.min(MAX_LEASE));
    set_claims(
        connection,
        "UPDATE protean_events SET claimed_until = ?3 WHERE id = ?1 AND claimed_by = ?2 AND delivered = 0",
        owner,
        event_ids,
        Some(until),
    )
}

/// Frees `owner`'s claims on the undelivered events of `event_ids`.
pub(super) fn release_claims(connection: &mut Connection, owner: Uuid, event_ids: &[Uuid]) -> Result<(), StoreError> {
    set_claims(
        connection,
        "UPDATE protean_events SET claimed_until = NULL, claimed_by = NULL
         WHERE id = ?1 AND claimed_by = ?2 AND delivered = 0",
        owner,
        event_ids,
        None,
    )
}

/// Runs `sql` (an event id as `?1`, the owner as `?2`, and `until`, if any, as `?3`)
/// once per event, in one transaction.
fn set_claims(
    connection: &mut Connection,
    sql: &str,
    owner: Uuid,
    event_ids: &[Uuid],
    until: Option<i64>,
) -> Result<(), StoreError> {
    if event_ids.is_empty() {
        return Ok(());
    }
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    {
        let mut update = tx.prepare_cached(sql).map_err(backend)?;
        let owner = owner.to_string();
        for id in event_ids {
            let id = id.to_string();
            match until {
                Some(until) => update.execute(params![id, owner, until]),
                None => update.execute(params![id, owner]),
            }
            .map_err(backend)?;
        }
    }
    tx.commit().map_err(backend)
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

/// The outcome `handler` recorded with `message_id`, if it handled it (see
/// [`Deliveries::handled_outcome`](crate::store::Deliveries::handled_outcome)).
pub(super) fn handled_outcome(
    connection: &Connection,
    handler: &str,
    message_id: Uuid,
) -> Result<Option<Option<String>>, StoreError> {
    let message = message_id.to_string();
    let row = connection
        .prepare_cached("SELECT outcome FROM protean_handled WHERE handler = ?1 AND message_id = ?2")
        .and_then(|mut s| {
            s.query_row(params![handler, message], |r| Ok(r.get::<_, Option<String>>("outcome"))).optional()
        })
        .map_err(backend)?;
    // A handled record is named like a stream: its handler and message.
    row.map(|outcome| outcome.map_err(|e| unreadable(e, &StreamId::new(handler.to_owned(), message), 0, "outcome")))
        .transpose()
}

/// An attempts count as stored: a negative one, or one past `u32`, is
/// [`StoreError::Corrupt`] of the failed event.
fn attempts(stored: i64, event: &StreamId, sequence: u64) -> Result<u32, StoreError> {
    u32::try_from(stored)
        .map_err(|_| StoreError::corrupt(event, sequence, format!("a failed delivery counts {stored} attempts")))
}

/// Where `handler` stands with the event `id`, of `stream` at `sequence`, in one statement.
pub(super) fn handler_state(
    connection: &Connection,
    handler: &str,
    id: Uuid,
    stream: &StreamId,
    sequence: u64,
) -> Result<HandlerState, StoreError> {
    // `status <> 'retrying'` is the held index's condition; it also holds the stream
    // behind a status that is none of the three, which only corruption could write.
    let (handled, held, stored) = connection
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM protean_handled WHERE handler = ?1 AND message_id = ?2) AS handled,
                 EXISTS (SELECT 1 FROM protean_failures
                         WHERE handler = ?1 AND aggregate = ?3 AND stream_id = ?4 AND status <> 'retrying') AS held,
                 coalesce((SELECT attempts FROM protean_failures WHERE handler = ?1 AND event_id = ?2), 0) AS attempts",
        )
        .and_then(|mut s| {
            s.query_row(params![handler, id.to_string(), &*stream.aggregate, &*stream.id], |r| {
                Ok((r.get::<_, bool>("handled")?, r.get::<_, bool>("held")?, r.get::<_, i64>("attempts")?))
            })
        })
        .map_err(backend)?;
    Ok(HandlerState { handled, held, attempts: attempts(stored, stream, sequence)? })
}

/// Inserts or updates the failed delivery (see
/// [`Deliveries::record_failure`](crate::store::Deliveries::record_failure)); the attempts counted.
pub(super) fn record_failure(connection: &Connection, update: &FailureUpdate) -> Result<u32, StoreError> {
    let FailureUpdate { handler, event, status, error, at } = update;
    let counted = i64::from(*status != FailureStatus::Held);
    // An event the log does not have (never stored) sorts after every stored one.
    let stored = connection
        .prepare_cached(
            "INSERT INTO protean_failures (handler, event_id, aggregate, stream_id, sequence, position, status,
                 attempts, first_error, last_error, first_failed_at, last_failed_at)
             VALUES (?1, ?2, ?3, ?4, ?5,
                 coalesce((SELECT position FROM protean_events WHERE id = ?2), 9223372036854775807),
                 ?6, ?7, ?8, ?8, ?9, ?9)
             ON CONFLICT (handler, event_id) DO UPDATE SET status = excluded.status,
                 attempts = attempts + excluded.attempts, last_error = excluded.last_error,
                 last_failed_at = excluded.last_failed_at
             RETURNING attempts",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    &**handler,
                    event.id.to_string(),
                    &*event.stream.aggregate,
                    &*event.stream.id,
                    to_i64(event.sequence),
                    status.as_str(),
                    counted,
                    error,
                    micros(*at),
                ],
                |r| r.get::<_, i64>("attempts"),
            )
        })
        .map_err(backend)?;
    attempts(stored, &event.stream, event.sequence)
}

/// A failed delivery from a row of [`failed_deliveries`]' select.
fn failed_delivery(row: &Row<'_>) -> Result<FailedDelivery, StoreError> {
    let event = envelope(row)?;
    let (stream, sequence) = (&event.stream, event.sequence);
    let handler = text(row, "failure_handler", stream, sequence, "failed delivery's handler")?;
    let status = text(row, "failure_status", stream, sequence, "failed delivery's status")?;
    let status = FailureStatus::parse(&status, &event)?;
    let attempts = attempts(row.get("failure_attempts").map_err(backend)?, stream, sequence)?;
    let first_error = text(row, "failure_first_error", stream, sequence, "failed delivery's first error")?;
    let last_error = text(row, "failure_last_error", stream, sequence, "failed delivery's last error")?;
    let first_failed_at = from_micros(row.get("failure_first_failed_at").map_err(backend)?, stream, sequence)?;
    let last_failed_at = from_micros(row.get("failure_last_failed_at").map_err(backend)?, stream, sequence)?;
    Ok(FailedDelivery { handler, event, status, attempts, first_error, last_error, first_failed_at, last_failed_at })
}

/// The select of failed deliveries with their whole events, `filter` (`WHERE …`, over
/// `f`, the failures, and `e`, the events) and then `tail` (an order, a limit) added.
/// The event's columns come under their own names (what `envelope` reads), the
/// failure's prefixed: both tables have an aggregate, a stream id and a sequence.
fn failures_select(filter: &str, tail: &str) -> String {
    let event_columns: Vec<String> = EVENT_COLUMNS.split(", ").map(|c| format!("e.{c} AS {c}")).collect();
    format!(
        "SELECT {}, f.handler AS failure_handler, f.status AS failure_status, f.attempts AS failure_attempts,
             f.first_error AS failure_first_error, f.last_error AS failure_last_error,
             f.first_failed_at AS failure_first_failed_at, f.last_failed_at AS failure_last_failed_at
         FROM protean_failures AS f JOIN protean_events AS e ON e.id = f.event_id
         {filter} {tail}",
        event_columns.join(", "),
    )
}

/// The failed deliveries `query` selects, each with its whole event, in log order (then
/// by handler); a status that is none of the three is [`StoreError::Corrupt`].
pub(super) fn failed_deliveries(
    connection: &Connection,
    query: &FailureQuery,
) -> Result<Vec<FailedDelivery>, StoreError> {
    let mut filters = Vec::new();
    let mut values: Vec<&dyn rusqlite::ToSql> = Vec::new();
    let status = query.status.map(FailureStatus::as_str);
    if let Some(handler) = &query.handler {
        values.push(handler);
        filters.push(format!("f.handler = ?{}", values.len()));
    }
    if let Some(stream) = &query.stream {
        values.push(&stream.aggregate);
        values.push(&stream.id);
        filters.push(format!("f.aggregate = ?{} AND f.stream_id = ?{}", values.len() - 1, values.len()));
    }
    if let Some(status) = &status {
        values.push(status);
        filters.push(format!("f.status = ?{}", values.len()));
    }
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    values.push(&limit);
    let filter = if filters.is_empty() { String::new() } else { format!("WHERE {}", filters.join(" AND ")) };
    let sql = failures_select(&filter, &format!("ORDER BY f.position, f.handler LIMIT ?{}", values.len()));
    let mut select = connection.prepare_cached(&sql).map_err(backend)?;
    let mut rows = select.query(values.as_slice()).map_err(backend)?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        found.push(failed_delivery(row)?);
    }
    Ok(found)
}

/// The failed delivery of `event_id` to `handler`, by its primary key.
pub(super) fn failed_delivery_of(
    connection: &Connection,
    handler: &str,
    event_id: Uuid,
) -> Result<Option<FailedDelivery>, StoreError> {
    let sql = failures_select("WHERE f.handler = ?1 AND f.event_id = ?2", "");
    let mut select = connection.prepare_cached(&sql).map_err(backend)?;
    let mut rows = select.query(params![handler, event_id.to_string()]).map_err(backend)?;
    rows.next().map_err(backend)?.map(failed_delivery).transpose()
}

/// Holds `event` for `handler` if a dead or held failure of an earlier event of its
/// stream is stored, or forgets its own held record if none is (see
/// [`Deliveries::hold_behind_dead_letter`](crate::store::Deliveries::hold_behind_dead_letter)):
/// the check and the write in one `IMMEDIATE` transaction, which no other writer (this
/// process's writer thread or another process) can come between. Whether it is held.
pub(super) fn hold_behind_dead_letter(
    connection: &mut Connection,
    handler: &str,
    event: &Envelope,
    reason: &str,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    let (stream, id) = (&event.stream, event.id.to_string());
    // `status <> 'retrying'` is the held index's condition, as in `handler_state`.
    let ahead = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM protean_failures WHERE handler = ?1 AND aggregate = ?2 AND stream_id = ?3
                 AND sequence < ?4 AND status <> 'retrying')",
        )
        .and_then(|mut s| {
            s.query_row(params![handler, &*stream.aggregate, &*stream.id, to_i64(event.sequence)], |r| r.get(0))
        })
        .map_err(backend)?;
    if ahead {
        // An event the log does not have (never stored) sorts after every stored one.
        tx.prepare_cached(
            "INSERT INTO protean_failures (handler, event_id, aggregate, stream_id, sequence, position, status,
                 attempts, first_error, last_error, first_failed_at, last_failed_at)
             VALUES (?1, ?2, ?3, ?4, ?5,
                 coalesce((SELECT position FROM protean_events WHERE id = ?2), 9223372036854775807),
                 'held', 0, ?6, ?6, ?7, ?7)
             ON CONFLICT (handler, event_id) DO UPDATE SET last_error = excluded.last_error,
                 last_failed_at = excluded.last_failed_at WHERE status = 'held'",
        )
        .and_then(|mut s| {
            s.execute(params![handler, id, &*stream.aggregate, &*stream.id, to_i64(event.sequence), reason, micros(at)])
        })
        .map_err(backend)?;
    } else {
        tx.prepare_cached("DELETE FROM protean_failures WHERE handler = ?1 AND event_id = ?2 AND status = 'held'")
            .and_then(|mut s| s.execute(params![handler, id]))
            .map_err(backend)?;
    }
    tx.commit().map_err(backend)?;
    Ok(ahead)
}

/// Deletes the failed delivery of `event_id` to `handler`; whether there was one.
pub(super) fn remove_failure(connection: &Connection, handler: &str, event_id: Uuid) -> Result<bool, StoreError> {
    connection
        .prepare_cached("DELETE FROM protean_failures WHERE handler = ?1 AND event_id = ?2")
        .and_then(|mut s| s.execute(params![handler, event_id.to_string()]))
        .map(|removed| removed > 0)
        .map_err(backend)
}

/// A failure's stored status where no whole event is at hand (see
/// [`FailureStatus::parse`], whose error this is too): any other text is
/// [`StoreError::Corrupt`] of the failed event.
fn failure_status(text: &str, stream: &StreamId, sequence: u64) -> Result<FailureStatus, StoreError> {
    [FailureStatus::Retrying, FailureStatus::Dead, FailureStatus::Held]
        .into_iter()
        .find(|status| status.as_str() == text)
        .ok_or_else(|| {
            StoreError::corrupt(stream, sequence, format!("a failed delivery has the unknown status `{text}`"))
        })
}

/// An undelivered event's stored time, `micros` after the Unix epoch; one out of range
/// is [`StoreError::Corrupt`] naming an undelivered event recorded then.
fn recorded_time(connection: &Connection, micros: i64) -> Result<OffsetDateTime, StoreError> {
    if let Ok(time) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000) {
        return Ok(time);
    }
    let mut select = connection
        .prepare_cached(
            "SELECT aggregate, stream_id, sequence FROM protean_events WHERE delivered = 0 AND recorded_at = ?1 LIMIT 1",
        )
        .map_err(backend)?;
    let mut rows = select.query([micros]).map_err(backend)?;
    let row = rows.next().map_err(backend)?.ok_or_else(|| backend(rusqlite::Error::QueryReturnedNoRows))?;
    let stream = event_stream(row)?;
    let sequence = stored_count(row.get("sequence").map_err(backend)?, &stream, "event sequence")?;
    from_micros(micros, &stream, sequence)
}

/// The undelivered count, the oldest undelivered event's time, and the failures per
/// handler and status, in one read transaction.
pub(super) fn outbox_status(connection: &Connection) -> Result<OutboxStatus, StoreError> {
    // One read transaction: the counts agree with each other.
    let tx = connection.unchecked_transaction().map_err(backend)?;
    // Both in one statement over the undelivered events, found by their partial index.
    // The oldest is the earliest recorded, which need not be the first in the log (an
    // event's time is taken before its commit puts it there).
    let (undelivered, earliest) = tx
        .prepare_cached(
            "SELECT count(*) AS undelivered, min(recorded_at) AS recorded_at FROM protean_events WHERE delivered = 0",
        )
        .and_then(|mut s| {
            s.query_row([], |r| Ok((r.get::<_, i64>("undelivered")?, r.get::<_, Option<i64>>("recorded_at")?)))
        })
        .map_err(backend)?;
    // A count is never negative.
    let undelivered = u64::try_from(undelivered).unwrap_or_default();
    let oldest = earliest.map(|micros| recorded_time(&tx, micros)).transpose()?;
    let mut counts = Vec::new();
    {
        // Per (handler, status), with the stream and sequence of one of its events, to
        // name should the status be none of the three.
        let mut select = tx
            .prepare_cached(
                "SELECT handler, status, count(*) AS n, aggregate, stream_id, max(sequence) AS sequence
                 FROM protean_failures GROUP BY handler, status",
            )
            .map_err(backend)?;
        let mut rows = select.query([]).map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            let stream = event_stream(row)?;
            let sequence = stored_count(row.get("sequence").map_err(backend)?, &stream, "failed event's sequence")?;
            let handler = text(row, "handler", &stream, sequence, "failed delivery's handler")?;
            let status = failure_status(
                &text(row, "status", &stream, sequence, "failed delivery's status")?,
                &stream,
                sequence,
            )?;
            let n = u64::try_from(row.get::<_, i64>("n").map_err(backend)?).unwrap_or_default();
            counts.push((handler, status, n));
        }
    }
    let failures = OutboxStatus::count_failures(counts.iter().map(|(h, s, n)| (h.as_str(), *s, *n)));
    Ok(OutboxStatus { undelivered, oldest_undelivered: oldest, failures })
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
pub(super) fn replay_events(
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
