//! [`Deliveries`] in PostgreSQL: handled records (a command's with its reply), failed
//! deliveries (`protean_failures`: retrying, dead, or held behind a dead letter of their
//! stream) and their listing and removal. See docs/storage.md, "Guarantees" and
//! "Schema and migrations" (the tables).

use std::sync::LazyLock;

use sqlx::postgres::PgRow;
use sqlx::Row as _;
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::{envelope, stored_time, EVENT_COLUMNS};
use super::{backend, PostgresStore};
use crate::store::envelope::Envelope;
use crate::store::sql::to_i64;
use crate::store::{BoxFuture, Deliveries, FailedDelivery, FailureQuery, FailureStatus, FailureUpdate};
use crate::store::{HandlerState, StoreError};

/// The failed deliveries a [`FailureQuery`] lists, with their events ([`EVENT_COLUMNS`]
/// of `e`), in log order: `$1` the handler, `$2` and `$3` the stream, `$4` the status
/// (each `NULL` for any), `$5` the limit. The event is found by its key.
static FAILURES: LazyLock<String> = LazyLock::new(|| {
    failures_select(
        "WHERE ($1::text IS NULL OR f.handler = $1)
             AND ($2::text IS NULL OR (f.aggregate = $2 AND f.stream_id = $3))
             AND ($4::text IS NULL OR f.status = $4)
         ORDER BY e.position, f.handler LIMIT $5",
    )
});

/// One failed delivery, by its key: the handler (`$1`) and the event id (`$2`).
static FAILURE: LazyLock<String> = LazyLock::new(|| failures_select("WHERE f.handler = $1 AND f.event_id = $2"));

/// The select of failed deliveries with their whole events (`e`, the events; `f`, the
/// failures), `rest` (a filter, an order, a limit) added.
fn failures_select(rest: &str) -> String {
    let event_columns: Vec<String> = EVENT_COLUMNS.split(", ").map(|column| format!("e.{column}")).collect();
    format!(
        "SELECT {}, f.handler, f.status, f.attempts, f.first_error, f.last_error, f.first_failed_at, f.last_failed_at
         FROM protean_failures f JOIN protean_events e
             ON e.aggregate = f.aggregate AND e.stream_id = f.stream_id AND e.sequence = f.sequence AND e.id = f.event_id
         {rest}",
        event_columns.join(", ")
    )
}

/// Holds an event behind a dead letter of its stream in one statement (see
/// [`Deliveries::hold_behind_dead_letter`]): `$1` the handler, `$2` the event id, `$3`, `$4`,
/// `$5` its stream and sequence, `$6` the reason, `$7` the time.
///
/// `ahead` finds a dead or held failure of an earlier event of the stream and locks it
/// (`FOR SHARE`) until this statement's transaction commits, so a replay or a discard
/// removing it waits for the held record, and a listing made after that removal sees it.
/// A removal committed first is not found: a row deleted while `ahead` waited for its
/// lock is skipped, and the next one, if any, locked instead. Then, in the same
/// statement, either the held record is written (a dead letter or a retried failure of
/// the event itself is left as it is) or, nothing being ahead, a held record of the
/// event itself is forgotten.
const HOLD: &str = "
WITH ahead AS (
    SELECT 1 FROM protean_failures
    WHERE handler = $1 AND aggregate = $3 AND stream_id = $4 AND sequence < $5 AND status <> 'retrying'
    LIMIT 1 FOR SHARE),
held AS (
    INSERT INTO protean_failures (handler, event_id, aggregate, stream_id, sequence, position, status, attempts,
        first_error, last_error, first_failed_at, last_failed_at)
    SELECT $1, $2, $3, $4, $5,
        (SELECT position FROM protean_events WHERE aggregate = $3 AND stream_id = $4 AND sequence = $5 AND id = $2),
        'held', 0, $6, $6, $7, $7
    WHERE EXISTS (SELECT 1 FROM ahead)
    ON CONFLICT (handler, event_id) DO UPDATE SET last_error = excluded.last_error,
        last_failed_at = excluded.last_failed_at
        WHERE protean_failures.status = 'held'),
freed AS (
    DELETE FROM protean_failures
    WHERE handler = $1 AND event_id = $2 AND status = 'held' AND NOT EXISTS (SELECT 1 FROM ahead))
SELECT EXISTS (SELECT 1 FROM ahead)";

/// A failed delivery from a row of [`FAILURES`]; bad stored values are typed errors.
fn failed_delivery(row: &PgRow) -> Result<FailedDelivery, StoreError> {
    let event = envelope(row)?;
    let status: String = row.try_get("status").map_err(backend)?;
    let status = FailureStatus::parse(&status, &event)?;
    let attempts: i32 = row.try_get("attempts").map_err(backend)?;
    let attempts = stored_attempts(attempts, &event)?;
    let first_failed_at = stored_time(row, "first_failed_at", &event.stream, event.sequence)?;
    let last_failed_at = stored_time(row, "last_failed_at", &event.stream, event.sequence)?;
    Ok(FailedDelivery {
        handler: row.try_get("handler").map_err(backend)?,
        status,
        attempts,
        first_error: row.try_get("first_error").map_err(backend)?,
        last_error: row.try_get("last_error").map_err(backend)?,
        first_failed_at,
        last_failed_at,
        event,
    })
}

/// A failed delivery's stored count of attempts, which must not be negative.
fn stored_attempts(attempts: i32, event: &Envelope) -> Result<u32, StoreError> {
    u32::try_from(attempts).map_err(|_| {
        StoreError::corrupt(&event.stream, event.sequence, format!("a failed delivery counts {attempts} attempts"))
    })
}

impl Deliveries for PostgresStore {
    fn is_handled<'a>(&'a self, handler: &'a str, message_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM protean_handled WHERE handler = $1 AND message_id = $2)",
            )
            .bind(handler)
            .bind(message_id)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
        })
    }

    fn handled_outcome<'a>(
        &'a self,
        handler: &'a str,
        message_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<Option<String>>, StoreError>> {
        Box::pin(async move {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT outcome FROM protean_handled WHERE handler = $1 AND message_id = $2",
            )
            .bind(handler)
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
        })
    }

    fn handler_state<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<HandlerState, StoreError>> {
        Box::pin(async move {
            // The held check is the partial index's predicate, so it reads the index.
            let row = sqlx::query(
                "SELECT EXISTS (SELECT 1 FROM protean_handled WHERE handler = $1 AND message_id = $2) AS handled,
                    EXISTS (SELECT 1 FROM protean_failures
                        WHERE handler = $1 AND aggregate = $3 AND stream_id = $4 AND status <> 'retrying') AS held,
                    coalesce((SELECT attempts FROM protean_failures WHERE handler = $1 AND event_id = $2), 0)
                        AS attempts",
            )
            .bind(handler)
            .bind(event.id)
            .bind(&*event.stream.aggregate)
            .bind(&*event.stream.id)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
            let attempts: i32 = row.try_get("attempts").map_err(backend)?;
            Ok(HandlerState {
                handled: row.try_get("handled").map_err(backend)?,
                held: row.try_get("held").map_err(backend)?,
                attempts: stored_attempts(attempts, event)?,
            })
        })
    }

    fn record_failure(&self, update: FailureUpdate) -> BoxFuture<'_, Result<u32, StoreError>> {
        Box::pin(async move {
            let counted = i32::from(update.status != FailureStatus::Held);
            let event = &update.event;
            // The event's position, found by its key (its id checked too); none for an
            // event not in the log.
            let attempts: i32 = sqlx::query_scalar(
                "INSERT INTO protean_failures (handler, event_id, aggregate, stream_id, sequence, position, status,
                     attempts, first_error, last_error, first_failed_at, last_failed_at)
                 VALUES ($1, $2, $3, $4, $5,
                     (SELECT position FROM protean_events
                         WHERE aggregate = $3 AND stream_id = $4 AND sequence = $5 AND id = $2),
                     $6, $7, $8, $8, $9, $9)
                 ON CONFLICT (handler, event_id) DO UPDATE SET status = excluded.status,
                     attempts = protean_failures.attempts + excluded.attempts, last_error = excluded.last_error,
                     last_failed_at = excluded.last_failed_at,
                     position = coalesce(protean_failures.position, excluded.position)
                 RETURNING attempts",
            )
            .bind(&*update.handler)
            .bind(event.id)
            .bind(&*event.stream.aggregate)
            .bind(&*event.stream.id)
            .bind(to_i64(event.sequence))
            .bind(update.status.as_str())
            .bind(counted)
            .bind(&update.error)
            .bind(update.at)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
            stored_attempts(attempts, event)
        })
    }

    /// One statement, which locks the failure ahead it found (see `HOLD`).
    fn hold_behind_dead_letter<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
        reason: &'a str,
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            sqlx::query_scalar::<_, bool>(HOLD)
                .bind(handler)
                .bind(event.id)
                .bind(&*event.stream.aggregate)
                .bind(&*event.stream.id)
                .bind(to_i64(event.sequence))
                .bind(reason)
                .bind(at)
                .fetch_one(&self.pool)
                .await
                .map_err(backend)
        })
    }

    fn failed_delivery<'a>(
        &'a self,
        handler: &'a str,
        event_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<FailedDelivery>, StoreError>> {
        Box::pin(async move {
            let row =
                sqlx::query(&FAILURE).bind(handler).bind(event_id).fetch_optional(&self.pool).await.map_err(backend)?;
            row.as_ref().map(failed_delivery).transpose()
        })
    }

    fn failed_deliveries(&self, query: FailureQuery) -> BoxFuture<'_, Result<Vec<FailedDelivery>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(&FAILURES)
                .bind(query.handler.as_deref())
                .bind(query.stream.as_ref().map(|s| &*s.aggregate))
                .bind(query.stream.as_ref().map(|s| &*s.id))
                .bind(query.status.map(FailureStatus::as_str))
                .bind(i64::try_from(query.limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
            rows.iter().map(failed_delivery).collect()
        })
    }

    fn remove_failure<'a>(&'a self, handler: &'a str, event_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM protean_failures WHERE handler = $1 AND event_id = $2")
                .bind(handler)
                .bind(event_id)
                .execute(&self.pool)
                .await
                .map(|done| done.rows_affected() > 0)
                .map_err(backend)
        })
    }
}
