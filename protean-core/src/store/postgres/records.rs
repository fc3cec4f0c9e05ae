//! [`Records`] in PostgreSQL: aggregates, their event streams and snapshots, commits
//! (through [`commit`](super::commit) or [`group`](super::group)), and the log read by
//! position. See docs/storage.md, "How commits work on PostgreSQL" and "Projections and
//! scheduled commands on PostgreSQL" (the positioned log).

use std::sync::atomic::Ordering;

use sqlx::postgres::PgPool;
use sqlx::Row as _;

use super::rows::{envelope, EVENT_COLUMNS};
use super::{backend, distinct, PostgresStore};
use crate::store::envelope::{Envelope, StreamId};
use crate::store::sql::{stored_count, to_i64};
use crate::store::{
    Batch, BoxFuture, Committed, Logged, Record, Records, ReplayEvents, Snapshot, StoreError, StoredEvent,
};

impl Records for PostgresStore {
    fn migrate(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(PostgresStore::migrate(self))
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(PostgresStore::close(self))
    }

    fn load<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT version, state FROM protean_aggregates WHERE aggregate = $1 AND id = $2 AND state IS NOT NULL",
            )
            .bind(&*stream.aggregate)
            .bind(&*stream.id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
            let Some(row) = row else { return Ok(None) };
            let version: i64 = row.try_get("version").map_err(backend)?;
            let state: String = row.try_get("state").map_err(backend)?;
            Ok(Some(Record { version: stored_count(version, stream, "version")?, state: state.into() }))
        })
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, Result<Vec<Committed>, StoreError>> {
        Box::pin(async move {
            match &self.groups {
                Some(queue) => self.commit_queued(queue, batch).await,
                None => self.commit_alone(batch).await,
            }
        })
    }

    fn commit_group(&self, batches: Vec<Batch>) -> BoxFuture<'_, Vec<Result<Vec<Committed>, StoreError>>> {
        Box::pin(self.commit_groups(batches))
    }

    fn stream<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM protean_events WHERE aggregate = $1 AND stream_id = $2 ORDER BY sequence"
            );
            let rows = sqlx::query(&sql)
                .bind(&*stream.aggregate)
                .bind(&*stream.id)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
            rows.iter().map(envelope).collect()
        })
    }

    fn stream_range<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM protean_events WHERE aggregate = $1 AND stream_id = $2
                 AND sequence > $3 AND sequence <= $4 ORDER BY sequence"
            );
            let rows = sqlx::query(&sql)
                .bind(&*stream.aggregate)
                .bind(&*stream.id)
                .bind(to_i64(after))
                .bind(up_to.map_or(i64::MAX, to_i64))
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
            rows.iter().map(envelope).collect()
        })
    }

    fn replay_events<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<ReplayEvents, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT sequence, type_name, version, payload FROM protean_events
                 WHERE aggregate = $1 AND stream_id = $2 AND sequence > $3 AND sequence <= $4 ORDER BY sequence",
            )
            .bind(&*stream.aggregate)
            .bind(&*stream.id)
            .bind(to_i64(after))
            .bind(up_to.map_or(i64::MAX, to_i64))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
            let mut events = ReplayEvents::with_capacity(rows.len());
            for row in &rows {
                let sequence: i64 = row.try_get(0).map_err(backend)?;
                let sequence = stored_count(sequence, stream, "event sequence")?;
                let version: i32 = row.try_get(2).map_err(backend)?;
                let version = u32::try_from(version).map_err(|_| {
                    StoreError::corrupt(stream, sequence, format!("event version {version} is out of range"))
                })?;
                let type_name: &str = row.try_get(1).map_err(backend)?;
                let payload: &str = row.try_get(3).map_err(backend)?;
                events.push(StoredEvent { sequence, type_name, version, payload });
            }
            Ok(events)
        })
    }

    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
        at_most: Option<u64>,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT sequence, state FROM protean_snapshots WHERE aggregate = $1 AND id = $2 AND sequence <= $3
                 ORDER BY sequence DESC LIMIT 1",
            )
            .bind(&*stream.aggregate)
            .bind(&*stream.id)
            .bind(at_most.map_or(i64::MAX, to_i64))
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
            let Some(row) = row else { return Ok(None) };
            let sequence: i64 = row.try_get("sequence").map_err(backend)?;
            let state: String = row.try_get("state").map_err(backend)?;
            Ok(Some(Snapshot { sequence: stored_count(sequence, stream, "snapshot sequence")?, state: state.into() }))
        })
    }

    fn events(&self, from: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Box::pin(async move {
            let sql = format!("SELECT {EVENT_COLUMNS} FROM protean_events ORDER BY position LIMIT $1 OFFSET $2");
            let rows = sqlx::query(&sql).bind(limit).bind(to_i64(from)).fetch_all(&self.pool).await.map_err(backend)?;
            rows.iter().map(envelope).collect()
        })
    }

    /// Positions come from a sequence when an event is inserted, so a transaction may
    /// commit a later position before another commits an earlier one: a reader that
    /// went past the later one would never see the earlier. So a page whose positions
    /// are not all there (after `after`, up to its last) waits for the writers in flight
    /// (it takes the events table's `SHARE` lock, and lets it go at once), then is read
    /// again up to the same last position: what it returns then is settled. Every
    /// position up to the log's end at that moment is settled too, for good: pages below
    /// it are not checked again (the store remembers it), so a rebuild over a log with
    /// gaps (positions of rolled-back commits) waits about once, not once per page.
    fn log_after<'a>(
        &'a self,
        after: u64,
        limit: usize,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Logged>, StoreError>> {
        Box::pin(async move {
            let types = distinct(types);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            if limit == 0 {
                return Ok(Vec::new());
            }
            let page = read_log(&self.pool, after, limit, &types, i64::MAX).await?;
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
            read_log(&self.pool, after, limit, &types, to_i64(last)).await
        })
    }

    fn log_count<'a>(&'a self, after: u64, types: &'a [String]) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
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
        })
    }
}

/// Up to `limit` events of `types` (any, when empty) after `after` and at most `up_to`,
/// in position order, as the log holds them now.
async fn read_log(
    pool: &PgPool,
    after: u64,
    limit: i64,
    types: &[&str],
    up_to: i64,
) -> Result<Vec<Logged>, StoreError> {
    let rows = if types.is_empty() {
        sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS}, position FROM protean_events WHERE position > $1 AND position <= $3
                 ORDER BY position LIMIT $2"
        ))
        .bind(to_i64(after))
        .bind(limit)
        .bind(up_to)
        .fetch_all(pool)
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
        .fetch_all(pool)
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
