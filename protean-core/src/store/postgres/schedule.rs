//! [`Schedule`] in PostgreSQL: scheduled commands (`protean_scheduled`), inserted and
//! cancelled by the commit function, claimed here with `FOR UPDATE SKIP LOCKED` for a
//! lease. See docs/storage.md, "Projections and scheduled commands on PostgreSQL".

use std::borrow::Cow;
use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::Row as _;
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::StoredTime;
use super::{backend, lease_micros, PostgresStore};
use crate::store::envelope::StreamId;
use crate::store::{BoxFuture, Schedule, Scheduled, ScheduledCounts, StoreError};

/// The columns a [`Scheduled`] is read from.
const SCHEDULED_COLUMNS: &str = "id, owner, owner_key, name, due_at, type_name, payload, correlation_id, causation_id";

/// A time of `row` that `time` represents; else corrupt data of `stream`.
fn stored_time(row: &PgRow, column: &str, stream: &StreamId) -> Result<OffsetDateTime, StoreError> {
    let StoredTime(time) = row.try_get(column).map_err(backend)?;
    time.map_err(|micros| {
        StoreError::corrupt(stream, 0, format!("the stored {column} {micros} µs after the Unix epoch is out of range"))
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

impl Schedule for PostgresStore {
    fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Scheduled>, StoreError>> {
        Box::pin(async move {
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
        })
    }

    fn complete_scheduled(&self, id: Uuid) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { self.delete_scheduled(id).await.map(drop) })
    }

    fn pending_scheduled(&self, limit: usize) -> BoxFuture<'_, Result<Vec<Scheduled>, StoreError>> {
        Box::pin(async move {
            let rows =
                sqlx::query(&format!("SELECT {SCHEDULED_COLUMNS} FROM protean_scheduled ORDER BY due_at, id LIMIT $1"))
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend)?;
            rows.iter().map(scheduled).collect()
        })
    }

    fn cancel_scheduled(&self, id: Uuid) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(self.delete_scheduled(id))
    }

    fn count_scheduled(&self, now: OffsetDateTime) -> BoxFuture<'_, Result<ScheduledCounts, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT count(*) AS pending, count(*) FILTER (WHERE due_at <= $1) AS due FROM protean_scheduled",
            )
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
            let count = |column: &str| -> Result<u64, StoreError> {
                let n: i64 = row.try_get(column).map_err(backend)?;
                Ok(u64::try_from(n).unwrap_or(0))
            };
            Ok(ScheduledCounts { pending: count("pending")?, due: count("due")? })
        })
    }

    fn release_scheduled(&self, ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE protean_scheduled SET claimed_until = NULL, claimed_by = NULL WHERE id = ANY($1) AND claimed_by = $2",
            )
            .bind(&ids)
            .bind(self.owner)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
        })
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<OffsetDateTime>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT owner, owner_key, due_at FROM protean_scheduled ORDER BY due_at LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
            let Some(row) = row else { return Ok(None) };
            let owner: String = row.try_get("owner").map_err(backend)?;
            let owner_key: String = row.try_get("owner_key").map_err(backend)?;
            stored_time(&row, "due_at", &StreamId::new(owner, owner_key)).map(Some)
        })
    }

    fn scheduled_of<'a>(
        &'a self,
        owner: &'a str,
        owner_key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Scheduled>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(&format!(
                "SELECT {SCHEDULED_COLUMNS} FROM protean_scheduled WHERE owner = $1 AND owner_key = $2 ORDER BY due_at, id"
            ))
            .bind(owner)
            .bind(owner_key)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
            rows.iter().map(scheduled).collect()
        })
    }
}

impl PostgresStore {
    /// Deletes the scheduled command `id`; whether there was one.
    async fn delete_scheduled(&self, id: Uuid) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM protean_scheduled WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected() > 0)
            .map_err(backend)
    }
}
