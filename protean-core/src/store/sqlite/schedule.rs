//! [`Schedule`] for SQLite: the commands process managers send or schedule, kept in
//! `protean_scheduled` from the unit of work that sends them (`batch.rs`) until a worker
//! fires them, claimed by the store that fires them (its owner id) until their lease
//! runs out. See docs/storage.md.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection, Row, TransactionBehavior};
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::{lease_micros, text, unreadable};
use super::{backend, SqliteStore};
use crate::store::envelope::StreamId;
use crate::store::sql::{from_micros, micros};
use crate::store::{BoxFuture, Cancel, Schedule, Scheduled, ScheduledCounts, StoreError};

impl Schedule for SqliteStore {
    /// Claims for this store's [owner](SqliteStore::owner).
    fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Scheduled>, StoreError>> {
        let owner = self.owner;
        self.threads.write(move |c| claim_due(c, owner, now, limit, lease))
    }

    fn complete_scheduled(&self, id: Uuid) -> BoxFuture<'_, Result<(), StoreError>> {
        self.threads.write(move |c| complete(c, id))
    }

    fn release_scheduled(&self, ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        let owner = self.owner;
        self.threads.write(move |c| release(c, owner, &ids))
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<OffsetDateTime>, StoreError>> {
        self.threads.read(next_due)
    }

    fn scheduled_of<'a>(
        &'a self,
        owner: &'a str,
        owner_key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Scheduled>, StoreError>> {
        let (owner, owner_key) = (owner.to_owned(), owner_key.to_owned());
        self.threads.read(move |c| scheduled_of(c, &owner, &owner_key))
    }

    fn pending_scheduled(&self, limit: usize) -> BoxFuture<'_, Result<Vec<Scheduled>, StoreError>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.threads.read(move |c| select(c, "ORDER BY due_at, id LIMIT ?1", [limit]))
    }

    fn cancel_scheduled(&self, id: Uuid) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.threads.write(move |c| delete(c, id))
    }

    fn count_scheduled(&self, now: OffsetDateTime) -> BoxFuture<'_, Result<ScheduledCounts, StoreError>> {
        self.threads.read(move |c| count(c, now))
    }
}

/// How many commands are pending, and how many of them are due at `now`.
fn count(connection: &Connection, now: OffsetDateTime) -> Result<ScheduledCounts, StoreError> {
    let (pending, due): (i64, i64) = connection
        .prepare_cached("SELECT count(*), count(*) FILTER (WHERE due_at <= ?1) FROM protean_scheduled")
        .and_then(|mut s| s.query_row([micros(now)], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(backend)?;
    Ok(ScheduledCounts { pending: u64::try_from(pending).unwrap_or(0), due: u64::try_from(due).unwrap_or(0) })
}

/// Frees the claims of every owner but `owner` on scheduled commands (run when the store
/// is opened).
pub(super) fn release_stale_claims(connection: &Connection, owner: Uuid) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "UPDATE protean_scheduled SET claimed_until = NULL, claimed_by = NULL
             WHERE claimed_until IS NOT NULL AND claimed_by IS NOT ?1",
        )
        .and_then(|mut s| s.execute([owner.to_string()]))
        .map(drop)
        .map_err(backend)
}

/// The columns a [`Scheduled`] is read from (by [`scheduled`], by name).
const COLUMNS: &str = "id, owner, owner_key, name, due_at, type_name, payload, correlation_id, causation_id";

/// A scheduled command from a row selected with [`COLUMNS`]; bad stored values are
/// [`StoreError::Corrupt`] of the stream `(owner, owner_key)`.
fn scheduled(row: &Row<'_>) -> Result<Scheduled, StoreError> {
    let unknown = StreamId::new("scheduled", "");
    let owner = text(row, "owner", &unknown, 0, "scheduled command's owner")?;
    let owner_key = text(row, "owner_key", &StreamId::new(owner.clone(), ""), 0, "scheduled command's owner key")?;
    let stream = StreamId::new(owner.clone(), owner_key.as_str());
    let uuid = |column: &str, what: &str| -> Result<Uuid, StoreError> {
        let text = text(row, column, &stream, 0, what)?;
        Uuid::parse_str(&text).map_err(|e| StoreError::corrupt(&stream, 0, format!("{what} `{text}`: {e}")))
    };
    let id = uuid("id", "scheduled command's id")?;
    let correlation_id = uuid("correlation_id", "scheduled command's correlation id")?;
    let causation_id = uuid("causation_id", "scheduled command's causation id")?;
    let name: Option<String> = row.get("name").map_err(|e| unreadable(e, &stream, 0, "deadline's name"))?;
    let due_at = from_micros(row.get("due_at").map_err(backend)?, &stream, 0)?;
    let type_name = text(row, "type_name", &stream, 0, "scheduled command's type name")?;
    let payload = text(row, "payload", &stream, 0, "scheduled command's payload")?;
    Ok(Scheduled {
        id,
        owner: Cow::Owned(owner),
        owner_key,
        name,
        due_at,
        type_name: Cow::Owned(type_name),
        payload: Arc::from(payload),
        correlation_id,
        causation_id,
    })
}

/// The scheduled commands `SELECT {COLUMNS} FROM protean_scheduled {filter}` finds.
fn select(connection: &Connection, filter: &str, values: impl rusqlite::Params) -> Result<Vec<Scheduled>, StoreError> {
    let mut select =
        connection.prepare_cached(&format!("SELECT {COLUMNS} FROM protean_scheduled {filter}")).map_err(backend)?;
    let mut rows = select.query(values).map_err(backend)?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        found.push(scheduled(row)?);
    }
    Ok(found)
}

/// Keeps the commands a unit of work sends or schedules, in its transaction.
pub(super) fn insert(tx: &Connection, schedule: &[Scheduled]) -> Result<(), StoreError> {
    if schedule.is_empty() {
        return Ok(());
    }
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO protean_scheduled (id, owner, owner_key, name, due_at, type_name, payload, correlation_id,
                 causation_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(backend)?;
    for command in schedule {
        insert
            .execute(params![
                command.id.to_string(),
                &*command.owner,
                command.owner_key,
                command.name,
                micros(command.due_at),
                &*command.type_name,
                &*command.payload,
                command.correlation_id.to_string(),
                command.causation_id.to_string(),
            ])
            .map_err(backend)?;
    }
    Ok(())
}

/// Drops the pending deadlines each of `cancel` names, in a unit of work's transaction.
pub(super) fn cancel(tx: &Connection, cancel: &[Cancel]) -> Result<(), StoreError> {
    if cancel.is_empty() {
        return Ok(());
    }
    let mut delete = tx
        .prepare_cached("DELETE FROM protean_scheduled WHERE owner = ?1 AND owner_key = ?2 AND name = ?3")
        .map_err(backend)?;
    for cancel in cancel {
        delete.execute(params![&*cancel.owner, cancel.owner_key, cancel.name]).map_err(backend)?;
    }
    Ok(())
}

/// Claims for `owner`, until `lease` after `now`, up to `limit` commands due at `now` that
/// no one holds (never claimed, released, or claimed until `now` at the latest), earliest
/// first.
fn claim_due(
    connection: &mut Connection,
    owner: Uuid,
    now: OffsetDateTime,
    limit: usize,
    lease: Duration,
) -> Result<Vec<Scheduled>, StoreError> {
    let now = micros(now);
    let until = now.saturating_add(lease_micros(lease));
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    let claimed = select(
        &tx,
        "WHERE due_at <= ?1 AND (claimed_until IS NULL OR claimed_until <= ?1) ORDER BY due_at, id LIMIT ?2",
        params![now, limit],
    )?;
    {
        let mut claim = tx
            .prepare_cached("UPDATE protean_scheduled SET claimed_until = ?2, claimed_by = ?3 WHERE id = ?1")
            .map_err(backend)?;
        let owner = owner.to_string();
        for command in &claimed {
            claim.execute(params![command.id.to_string(), until, owner]).map_err(backend)?;
        }
    }
    tx.commit().map_err(backend)?;
    Ok(claimed)
}

/// Forgets the scheduled command `id`: it was fired.
fn complete(connection: &Connection, id: Uuid) -> Result<(), StoreError> {
    delete(connection, id).map(drop)
}

/// Deletes the scheduled command `id`; whether there was one.
fn delete(connection: &Connection, id: Uuid) -> Result<bool, StoreError> {
    connection
        .prepare_cached("DELETE FROM protean_scheduled WHERE id = ?1")
        .and_then(|mut s| s.execute([id.to_string()]))
        .map(|deleted| deleted > 0)
        .map_err(backend)
}

/// Frees `owner`'s claims on the scheduled commands `ids`, in one transaction.
fn release(connection: &mut Connection, owner: Uuid, ids: &[Uuid]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    {
        let mut release = tx
            .prepare_cached(
                "UPDATE protean_scheduled SET claimed_until = NULL, claimed_by = NULL WHERE id = ?1 AND claimed_by = ?2",
            )
            .map_err(backend)?;
        let owner = owner.to_string();
        for id in ids {
            release.execute(params![id.to_string(), owner]).map_err(backend)?;
        }
    }
    tx.commit().map_err(backend)
}

/// When the earliest pending command is due, claimed or not.
fn next_due(connection: &Connection) -> Result<Option<OffsetDateTime>, StoreError> {
    let due: Option<i64> = connection
        .prepare_cached("SELECT min(due_at) FROM protean_scheduled")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(backend)?;
    due.map(|due| from_micros(due, &StreamId::new("scheduled", ""), 0)).transpose()
}

/// The pending commands of one process manager instance, earliest first.
fn scheduled_of(connection: &Connection, owner: &str, owner_key: &str) -> Result<Vec<Scheduled>, StoreError> {
    select(connection, "WHERE owner = ?1 AND owner_key = ?2 ORDER BY due_at, id", params![owner, owner_key])
}
