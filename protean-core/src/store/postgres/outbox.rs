//! [`Outbox`] in PostgreSQL: claims of undelivered events (owned, leased, each stream in
//! order), their renewals and releases, delivered marks, the outbox's status, and its
//! signal. See docs/storage.md, "Guarantees" (claims).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgRow};
use sqlx::Row as _;
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;

use super::owner::{owner_key, LIVE_OWNERS};
use super::rows::{envelope, StoredTime, EVENT_COLUMNS};
use super::{backend, PostgresStore};
use crate::store::envelope::{Envelope, StreamId};
use crate::store::{BoxFuture, ClaimOrder, FailureStatus, Outbox, OutboxStatus, StoreError, WorkerBeat, MAX_LEASE};

/// Serializes claims across processes (an arbitrary, fixed key, beside the store's others).
const CLAIM_LOCK: i64 = 0x7072_6f74_6561_6e02;

impl Outbox for PostgresStore {
    fn claim_undelivered(&self, limit: usize, lease: Duration) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        Box::pin(async move {
            let now = OffsetDateTime::now_utc();
            let until = now + lease.min(MAX_LEASE);
            let mut tx = self.pool.begin().await.map_err(backend)?;
            // One claim at a time: a claim in flight must not let another relay see a
            // stream's later event before its earlier one is marked claimed.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(CLAIM_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            // The owners alive now: a claim of anyone else is free, whatever its lease says.
            let live: Vec<i64> = sqlx::query_scalar(LIVE_OWNERS).fetch_all(&mut *tx).await.map_err(backend)?;
            let live: foldhash::HashSet<i64> = live.into_iter().collect();
            // A claim from before owners were recorded (no owner) keeps its lease.
            let owner_alive = |owner: Option<Uuid>| owner.is_none_or(|owner| live.contains(&owner_key(owner)));
            let mut claimed = Vec::new();
            let mut order = ClaimOrder::new();
            // Pages of undelivered events in order, until enough are claimable or none are left
            // (a long blocked stream must not hide the streams after it).
            let page = i64::try_from(limit.saturating_mul(4).max(64)).unwrap_or(i64::MAX);
            let mut after = i64::MIN;
            'pages: loop {
                // The lease is compared on the server, so a lease of any time (`'infinity'`
                // too) reads. Read, not locked: a row another transaction holds locked for a
                // moment (a renewal, a marking) must still block its stream.
                let rows = sqlx::query(&format!(
                    "SELECT {EVENT_COLUMNS}, coalesce(claimed_until > $3, FALSE) AS lease_runs, position, claimed_by
                     FROM protean_events
                     WHERE NOT delivered AND position > $1 ORDER BY position LIMIT $2"
                ))
                .bind(after)
                .bind(page)
                .bind(now)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
                for row in &rows {
                    if claimed.len() == limit {
                        break 'pages;
                    }
                    let stream: (String, String) =
                        (row.try_get("aggregate").map_err(backend)?, row.try_get("stream_id").map_err(backend)?);
                    let lease_runs: bool = row.try_get("lease_runs").map_err(backend)?;
                    let claimed_by: Option<Uuid> = row.try_get("claimed_by").map_err(backend)?;
                    if order.take(stream, lease_runs && owner_alive(claimed_by)) {
                        claimed.push(envelope(row)?);
                    }
                }
                match rows.last() {
                    Some(last) if i64::try_from(rows.len()).unwrap_or(0) == page => {
                        after = last.try_get("position").map_err(backend)?;
                    }
                    _ => break,
                }
            }
            // Then the events chosen are locked, passing over those locked right now, and
            // checked again: one locked, delivered or claimed meanwhile blocks the rest of its
            // stream (they come in stream order).
            let ids: Vec<Uuid> = claimed.iter().map(|e| e.id).collect();
            let locked = sqlx::query(
                "SELECT id, coalesce(claimed_until > $2, FALSE) AS lease_runs, claimed_by FROM protean_events
                 WHERE id = ANY($1) AND NOT delivered FOR UPDATE SKIP LOCKED",
            )
            .bind(&ids)
            .bind(now)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
            let mut free = foldhash::HashSet::default();
            for row in &locked {
                let lease_runs: bool = row.try_get("lease_runs").map_err(backend)?;
                if !(lease_runs && owner_alive(row.try_get("claimed_by").map_err(backend)?)) {
                    free.insert(row.try_get::<Uuid, _>("id").map_err(backend)?);
                }
            }
            let mut blocked: foldhash::HashSet<StreamId> = foldhash::HashSet::default();
            claimed.retain(|event| {
                let take = !blocked.contains(&event.stream) && free.contains(&event.id);
                if !take {
                    blocked.insert(event.stream.clone());
                }
                take
            });
            let ids: Vec<Uuid> = claimed.iter().map(|e| e.id).collect();
            sqlx::query(
                "UPDATE protean_events SET claimed_until = $1, claimed_by = $2 WHERE id = ANY($3) AND NOT delivered",
            )
            .bind(until)
            .bind(self.owner)
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            Ok(claimed)
        })
    }

    fn renew_claims(&self, event_ids: Vec<Uuid>, lease: Duration) -> BoxFuture<'_, Result<(), StoreError>> {
        let until = OffsetDateTime::now_utc() + lease.min(MAX_LEASE);
        Box::pin(async move {
            sqlx::query(
                "UPDATE protean_events SET claimed_until = $1
                 WHERE id = ANY($2) AND NOT delivered AND claimed_by = $3",
            )
            .bind(until)
            .bind(&event_ids)
            .bind(self.owner)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
        })
    }

    fn release_claims(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE protean_events SET claimed_until = NULL, claimed_by = NULL
                 WHERE id = ANY($1) AND NOT delivered AND claimed_by = $2",
            )
            .bind(&event_ids)
            .bind(self.owner)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
        })
    }

    fn mark_delivered(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query("UPDATE protean_events SET delivered = TRUE WHERE id = ANY($1) AND NOT delivered")
                .bind(&event_ids)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(backend)
        })
    }

    fn outbox_status(&self) -> BoxFuture<'_, Result<OutboxStatus, StoreError>> {
        Box::pin(async move {
            // Both in one statement, from the index of the undelivered events, which
            // carries their times. The oldest is the earliest recorded, which need not
            // be the first in the log (an event's time is taken before its commit).
            let row = sqlx::query(
                "SELECT count(*) AS undelivered, min(recorded_at) AS recorded_at FROM protean_events
                 WHERE NOT delivered",
            )
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
            let undelivered: i64 = row.try_get("undelivered").map_err(backend)?;
            let oldest_undelivered = match row.try_get::<Option<StoredTime>, _>("recorded_at").map_err(backend)? {
                None => None,
                Some(StoredTime(Ok(time))) => Some(time),
                Some(StoredTime(Err(micros))) => return Err(oldest_out_of_range(&self.pool, micros).await),
            };
            let counts =
                sqlx::query("SELECT handler, status, count(*) AS n FROM protean_failures GROUP BY handler, status")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend)?;
            let mut failures = Vec::with_capacity(counts.len());
            for row in &counts {
                let handler: String = row.try_get("handler").map_err(backend)?;
                let status: String = row.try_get("status").map_err(backend)?;
                let n: i64 = row.try_get("n").map_err(backend)?;
                let parsed = match status.as_str() {
                    "retrying" => FailureStatus::Retrying,
                    "dead" => FailureStatus::Dead,
                    "held" => FailureStatus::Held,
                    _ => return Err(unknown_status(&self.pool, &handler, &status).await),
                };
                failures.push((handler, parsed, u64::try_from(n).unwrap_or(0)));
            }
            Ok(OutboxStatus {
                undelivered: u64::try_from(undelivered).unwrap_or(0),
                oldest_undelivered,
                failures: OutboxStatus::count_failures(failures.iter().map(|(h, s, n)| (h.as_str(), *s, *n))),
            })
        })
    }

    fn outbox_signal(&self) -> Option<Arc<Notify>> {
        self.outbox.signal(&self.pool.connect_options())
    }

    fn beat_worker(&self, beat: WorkerBeat) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query(
                "WITH beat AS (
                     INSERT INTO protean_workers (id, host, pid, started_at, seen_at, every_ms, stopped)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid,
                         started_at = EXCLUDED.started_at, seen_at = EXCLUDED.seen_at, every_ms = EXCLUDED.every_ms,
                         stopped = EXCLUDED.stopped)
                 DELETE FROM protean_workers WHERE seen_at < $5 - interval '1 day' AND id <> $1",
            )
            .bind(beat.id)
            .bind(&beat.host)
            .bind(i64::from(beat.pid))
            .bind(beat.started_at)
            .bind(beat.seen_at)
            .bind(i64::try_from(beat.every_ms).unwrap_or(i64::MAX))
            .bind(beat.stopped)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(backend)
        })
    }

    fn worker_beats(&self) -> BoxFuture<'_, Result<Vec<WorkerBeat>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, host, pid, started_at, seen_at, every_ms, stopped FROM protean_workers
                 ORDER BY seen_at DESC, id",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
            rows.iter().map(worker_beat).collect()
        })
    }
}

/// A [`WorkerBeat`] from a row of `protean_workers`.
fn worker_beat(row: &PgRow) -> Result<WorkerBeat, StoreError> {
    let stream = StreamId::new("protean_workers", "");
    let time = |column: &str| -> Result<OffsetDateTime, StoreError> {
        let StoredTime(time) = row.try_get(column).map_err(backend)?;
        time.map_err(|micros| {
            StoreError::corrupt(
                &stream,
                0,
                format!("the worker's {column} {micros} µs after the Unix epoch is out of range"),
            )
        })
    };
    let pid: i64 = row.try_get("pid").map_err(backend)?;
    let every_ms: i64 = row.try_get("every_ms").map_err(backend)?;
    Ok(WorkerBeat {
        id: row.try_get("id").map_err(backend)?,
        host: row.try_get("host").map_err(backend)?,
        pid: u32::try_from(pid).map_err(|_| StoreError::corrupt(&stream, 0, format!("the worker's pid {pid}")))?,
        started_at: time("started_at")?,
        seen_at: time("seen_at")?,
        every_ms: u64::try_from(every_ms).unwrap_or(0),
        stopped: row.try_get("stopped").map_err(backend)?,
    })
}

/// The [`StoreError::Corrupt`] of a failed delivery of `handler` whose stored status
/// is `status`, an unknown one: naming its event, as [`FailureStatus::parse`] does.
async fn unknown_status(pool: &PgPool, handler: &str, status: &str) -> StoreError {
    let reason = format!("a failed delivery has the unknown status `{status}`");
    let found = sqlx::query(
        "SELECT aggregate, stream_id, sequence FROM protean_failures WHERE handler = $1 AND status = $2 LIMIT 1",
    )
    .bind(handler)
    .bind(status)
    .fetch_optional(pool)
    .await;
    let named = |row: &PgRow| -> Result<(StreamId, i64), sqlx::Error> {
        let stream = StreamId::new(row.try_get::<String, _>("aggregate")?, row.try_get::<String, _>("stream_id")?);
        Ok((stream, row.try_get("sequence")?))
    };
    match found.and_then(|row| row.as_ref().map(named).transpose()) {
        Ok(Some((stream, sequence))) => StoreError::corrupt(&stream, u64::try_from(sequence).unwrap_or(0), reason),
        Ok(None) => StoreError::corrupt(&StreamId::new("protean_failures", handler.to_owned()), 0, reason),
        Err(e) => backend(e),
    }
}

/// The [`StoreError::Corrupt`] of the oldest undelivered event, whose stored time
/// (`micros` after the Unix epoch) is out of range: naming it, as `rows::stored_time` does.
async fn oldest_out_of_range(pool: &PgPool, micros: i128) -> StoreError {
    let reason = format!("the stored time {micros} µs after the Unix epoch is out of range");
    let found = sqlx::query(
        "SELECT aggregate, stream_id, sequence FROM protean_events WHERE NOT delivered
         ORDER BY recorded_at, position LIMIT 1",
    )
    .fetch_optional(pool)
    .await;
    let named = |row: &PgRow| -> Result<(StreamId, i64), sqlx::Error> {
        let stream = StreamId::new(row.try_get::<String, _>("aggregate")?, row.try_get::<String, _>("stream_id")?);
        Ok((stream, row.try_get("sequence")?))
    };
    match found.and_then(|row| row.as_ref().map(named).transpose()) {
        Ok(Some((stream, sequence))) => StoreError::corrupt(&stream, u64::try_from(sequence).unwrap_or(0), reason),
        // Delivered meanwhile: named by the table.
        Ok(None) => StoreError::corrupt(&StreamId::new("protean_events", "undelivered"), 0, reason),
        Err(e) => backend(e),
    }
}
