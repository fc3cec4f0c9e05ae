//! [`Deliveries`] for SQLite: handled records (written with the unit of work that
//! handled the message, `batch.rs`), failed deliveries in `protean_failures`, one row per
//! (handler, event), and the events held behind a dead letter. See docs/storage.md.

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::{envelope, text, unreadable, EVENT_COLUMNS};
use super::{backend, SqliteStore};
use crate::store::envelope::{Envelope, StreamId};
use crate::store::sql::{from_micros, micros, to_i64};
use crate::store::{BoxFuture, Deliveries, FailedDelivery, FailureQuery, FailureStatus, FailureUpdate, Handled};
use crate::store::{HandlerState, StoreError};

impl Deliveries for SqliteStore {
    fn is_handled<'a>(&'a self, handler: &'a str, message_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        let handler = handler.to_owned();
        self.threads.read(move |c| is_handled(c, &handler, message_id))
    }

    fn handled_outcome<'a>(
        &'a self,
        handler: &'a str,
        message_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<Option<String>>, StoreError>> {
        let handler = handler.to_owned();
        self.threads.read(move |c| handled_outcome(c, &handler, message_id))
    }

    fn handler_state<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<HandlerState, StoreError>> {
        let (handler, id, stream, sequence) = (handler.to_owned(), event.id, event.stream.clone(), event.sequence);
        self.threads.read(move |c| handler_state(c, &handler, id, &stream, sequence))
    }

    fn record_failure(&self, update: FailureUpdate) -> BoxFuture<'_, Result<u32, StoreError>> {
        self.threads.write(move |c| record_failure(c, &update))
    }

    /// Decided and written in one `IMMEDIATE` transaction on the writer thread.
    fn hold_behind_dead_letter<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
        reason: &'a str,
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let (handler, event, reason) = (handler.to_owned(), event.clone(), reason.to_owned());
        self.threads.write(move |c| hold_behind_dead_letter(c, &handler, &event, &reason, at))
    }

    fn failed_delivery<'a>(
        &'a self,
        handler: &'a str,
        event_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<FailedDelivery>, StoreError>> {
        let handler = handler.to_owned();
        self.threads.read(move |c| failed_delivery_of(c, &handler, event_id))
    }

    fn failed_deliveries(&self, query: FailureQuery) -> BoxFuture<'_, Result<Vec<FailedDelivery>, StoreError>> {
        self.threads.read(move |c| failed_deliveries(c, &query))
    }

    fn remove_failure<'a>(&'a self, handler: &'a str, event_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        let handler = handler.to_owned();
        self.threads.write(move |c| remove_failure(c, &handler, event_id))
    }
}

/// Records that `handled.handler` handled `handled.message_id` (with its outcome), in
/// the unit of work's transaction open on `tx`; one already recorded is
/// [`StoreError::AlreadyHandled`].
pub(super) fn record_handled(tx: &Connection, handled: &Handled) -> Result<(), StoreError> {
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
    Ok(())
}

fn is_handled(connection: &Connection, handler: &str, message_id: Uuid) -> Result<bool, StoreError> {
    connection
        .prepare_cached("SELECT 1 FROM protean_handled WHERE handler = ?1 AND message_id = ?2")
        .and_then(|mut s| s.exists(params![handler, message_id.to_string()]))
        .map_err(backend)
}

/// The outcome `handler` recorded with `message_id`, if it handled it (see
/// [`Deliveries::handled_outcome`](crate::store::Deliveries::handled_outcome)).
fn handled_outcome(
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
fn handler_state(
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
fn record_failure(connection: &Connection, update: &FailureUpdate) -> Result<u32, StoreError> {
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
fn failed_deliveries(connection: &Connection, query: &FailureQuery) -> Result<Vec<FailedDelivery>, StoreError> {
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
fn failed_delivery_of(
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
fn hold_behind_dead_letter(
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
fn remove_failure(connection: &Connection, handler: &str, event_id: Uuid) -> Result<bool, StoreError> {
    connection
        .prepare_cached("DELETE FROM protean_failures WHERE handler = ?1 AND event_id = ?2")
        .and_then(|mut s| s.execute(params![handler, event_id.to_string()]))
        .map(|removed| removed > 0)
        .map_err(backend)
}
