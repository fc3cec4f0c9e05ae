//! [`Outbox`] for SQLite: claims of undelivered events (owned by the store that claims
//! them, with a lease), their renewals and releases, delivered marks and the outbox's
//! status. Claims and marks run on the writer thread. See docs/storage.md.

use std::time::Duration;

use rusqlite::{params, Connection, TransactionBehavior};
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::{envelope, event_stream, text, EVENT_COLUMNS};
use super::{backend, SqliteStore};
use crate::store::envelope::{Envelope, StreamId};
use crate::store::sql::{from_micros, micros, stored_count};
use crate::store::{BoxFuture, ClaimOrder, FailureStatus, Outbox, OutboxStatus, StoreError, WorkerBeat, MAX_LEASE};

impl Outbox for SqliteStore {
    fn claim_undelivered(&self, limit: usize, lease: Duration) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        let owner = self.owner;
        self.threads.write(move |c| claim(c, owner, limit, lease))
    }

    fn renew_claims(&self, event_ids: Vec<Uuid>, lease: Duration) -> BoxFuture<'_, Result<(), StoreError>> {
        let owner = self.owner;
        self.threads.write(move |c| renew_claims(c, owner, &event_ids, lease))
    }

    fn release_claims(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        let owner = self.owner;
        self.threads.write(move |c| release_claims(c, owner, &event_ids))
    }

    fn mark_delivered(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.threads.write(move |c| mark_delivered(c, &event_ids))
    }

    fn outbox_status(&self) -> BoxFuture<'_, Result<OutboxStatus, StoreError>> {
        self.threads.read(outbox_status)
    }

    fn outbox_signal(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }

    fn beat_worker(&self, beat: WorkerBeat) -> BoxFuture<'_, Result<(), StoreError>> {
        self.threads.write(move |c| beat_worker(c, &beat))
    }

    fn worker_beats(&self) -> BoxFuture<'_, Result<Vec<WorkerBeat>, StoreError>> {
        self.threads.read(worker_beats)
    }
}

/// Inserts or replaces `beat`, and forgets beats not renewed for a day before it.
fn beat_worker(connection: &mut Connection, beat: &WorkerBeat) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO protean_workers (id, host, pid, started_at, seen_at, every_ms, stopped)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            beat.id.to_string(),
            beat.host,
            beat.pid,
            micros(beat.started_at),
            micros(beat.seen_at),
            i64::try_from(beat.every_ms).unwrap_or(i64::MAX),
            beat.stopped,
        ])
    })
    .map_err(backend)?;
    tx.prepare_cached("DELETE FROM protean_workers WHERE seen_at < ?1")
        .and_then(|mut s| s.execute([micros(beat.seen_at - time::Duration::DAY)]))
        .map_err(backend)?;
    tx.commit().map_err(backend)
}

/// Every worker set's last beat, latest first.
fn worker_beats(connection: &Connection) -> Result<Vec<WorkerBeat>, StoreError> {
    let mut select = connection
        .prepare_cached(
            "SELECT id, host, pid, started_at, seen_at, every_ms, stopped FROM protean_workers ORDER BY seen_at DESC, id",
        )
        .map_err(backend)?;
    let mut rows = select.query([]).map_err(backend)?;
    let stream = StreamId::new("protean_workers", "");
    let mut beats = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        let id = text(row, "id", &stream, 0, "worker set's id")?;
        let id = Uuid::parse_str(&id)
            .map_err(|e| StoreError::corrupt(&stream, 0, format!("the worker set's id `{id}`: {e}")))?;
        let every_ms: i64 = row.get("every_ms").map_err(backend)?;
        beats.push(WorkerBeat {
            id,
            host: text(row, "host", &stream, 0, "worker set's host")?,
            pid: row.get("pid").map_err(backend)?,
            started_at: from_micros(row.get("started_at").map_err(backend)?, &stream, 0)?,
            seen_at: from_micros(row.get("seen_at").map_err(backend)?, &stream, 0)?,
            every_ms: u64::try_from(every_ms).unwrap_or(0),
            stopped: row.get("stopped").map_err(backend)?,
        });
    }
    Ok(beats)
}

/// Frees the claims of every owner but `owner` on undelivered events (run when the
/// store is opened).
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

/// Marks the events `delivered` delivered, in the transaction open on `tx` (a unit of
/// work's, or [`mark_delivered`]'s).
pub(super) fn mark(tx: &Connection, delivered: &[Uuid]) -> Result<(), StoreError> {
    if delivered.is_empty() {
        return Ok(());
    }
    let mut mark = tx.prepare_cached("UPDATE protean_events SET delivered = 1 WHERE id = ?1").map_err(backend)?;
    for id in delivered {
        mark.execute([id.to_string()]).map_err(backend)?;
    }
    Ok(())
}

/// Claims up to `limit` undelivered events for `owner` (see [`ClaimOrder`]).
fn claim(connection: &mut Connection, owner: Uuid, limit: usize, lease: Duration) -> Result<Vec<Envelope>, StoreError> {
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
fn renew_claims(
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
fn release_claims(connection: &mut Connection, owner: Uuid, event_ids: &[Uuid]) -> Result<(), StoreError> {
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

fn mark_delivered(connection: &mut Connection, event_ids: &[Uuid]) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    mark(&tx, event_ids)?;
    tx.commit().map_err(backend)
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
fn outbox_status(connection: &Connection) -> Result<OutboxStatus, StoreError> {
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
