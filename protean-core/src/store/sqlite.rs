//! The embedded store: SQLite in one file, through rusqlite (SQLite bundled, no server).
//!
//! Durability: the database runs in WAL mode. [`Durability::Normal`] (the default) uses
//! `synchronous = NORMAL`: a commit survives the process crashing or being killed at
//! any point; after a power loss or an OS crash the last commits may be lost, but the
//! database stays consistent. [`Durability::Full`] uses `synchronous = FULL`: every
//! commit is on disk (fsync) before it returns.
//!
//! Calls run on the calling task, holding the connection's lock: SQLite work is short,
//! and one writer at a time is how SQLite works anyway.

use std::borrow::Cow;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use uuid::Uuid;

use super::sql::{from_micros, micros, stored_count, to_i64};
use super::{Batch, BoxFuture, Commit, Committed, Record, SchemaVersion, Snapshot, Store, StoreError, VersionConflict};
use crate::store::envelope::{Envelope, StreamId};

/// How hard a commit tries to reach the disk before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// WAL with `synchronous = NORMAL`: safe against the process dying; the last
    /// commits may be lost on power loss.
    #[default]
    Normal,
    /// WAL with `synchronous = FULL`: every commit is fsynced.
    Full,
}

/// The schema version this code writes; [`Store::migrate`] brings older files up to it.
pub const SCHEMA_VERSION: i64 = 4;

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS protean_aggregates (
    aggregate     TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    state         TEXT,              -- NULL once removed
    last_sequence INTEGER NOT NULL,  -- kept after a removal: sequences never repeat
    PRIMARY KEY (aggregate, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS protean_events (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT    NOT NULL UNIQUE,
    aggregate      TEXT    NOT NULL,
    stream_id      TEXT    NOT NULL,
    sequence       INTEGER NOT NULL,
    type_name      TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    payload        TEXT    NOT NULL,
    recorded_at    INTEGER NOT NULL, -- microseconds since the Unix epoch
    correlation_id TEXT    NOT NULL,
    causation_id   TEXT    NOT NULL,
    delivered      INTEGER NOT NULL DEFAULT 0,
    claimed_until  INTEGER,          -- microseconds since the Unix epoch
    UNIQUE (aggregate, stream_id, sequence)
);
CREATE INDEX IF NOT EXISTS protean_events_undelivered ON protean_events (position) WHERE delivered = 0;
CREATE TABLE IF NOT EXISTS protean_handled (
    handler    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (handler, message_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS protean_read_models (
    name TEXT NOT NULL,
    key  TEXT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (name, key)
) WITHOUT ROWID;
";

const SCHEMA_V2: &str = "
CREATE TABLE IF NOT EXISTS protean_snapshots (
    aggregate TEXT    NOT NULL,
    id        TEXT    NOT NULL,
    sequence  INTEGER NOT NULL,
    state     TEXT    NOT NULL,
    PRIMARY KEY (aggregate, id, sequence)
) WITHOUT ROWID;
";

/// Version 3: an event-sourced aggregate's version counts its events (see
/// [`Commit::advance`]), so the records of event-sourced aggregates (state `null`) written
/// by older code, which counted commits, move to their last sequence.
const SCHEMA_V3: &str = "
UPDATE protean_aggregates SET version = last_sequence WHERE state = 'null' AND version < last_sequence;
";

/// Version 4: a claim records its owner, the store that made it.
const SCHEMA_V4: &str = "
ALTER TABLE protean_events ADD COLUMN claimed_by TEXT; -- the claiming store's owner id
";

/// A [`Store`] in a SQLite file: the embedded default.
///
/// One process per file is the supported setup. Each store has an owner identity, made
/// when it is opened, and claims of undelivered events record it. Opening a store
/// releases every claim made by another owner: those were made by a process that has
/// stopped (it crashed, or was killed, before delivering them), so a restarted process
/// delivers them at once rather than after their lease. Several processes on one file
/// still work (SQLite serializes their writes), but each one that opens the file takes
/// back the others' claims: events another process is delivering at that moment may be
/// delivered twice (the handled records keep each handler's effect single).
///
/// ```
/// use protean_core::store::{SqliteStore, Store};
/// let store = SqliteStore::in_memory().unwrap(); // or SqliteStore::open("app.db")
/// # let _ = store;
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    owner: Uuid,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::backend("sqlite", e)
}

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

/// A text column of a row of `stream` at `position`; unreadable text is [`StoreError::Corrupt`].
fn text(
    row: &rusqlite::Row<'_>,
    index: usize,
    stream: &StreamId,
    position: u64,
    what: &str,
) -> Result<String, StoreError> {
    row.get(index).map_err(|e| unreadable(e, stream, position, what))
}

/// The stream of an event row selected with [`EVENT_COLUMNS`]. When its aggregate or id
/// is not valid UTF-8 the error names the stream as well as it can (lossily).
fn event_stream(row: &rusqlite::Row<'_>) -> Result<StreamId, StoreError> {
    let (aggregate, id) = (row.get_ref(1).map_err(backend)?, row.get_ref(2).map_err(backend)?);
    if let (Ok(aggregate), Ok(id)) = (aggregate.as_str(), id.as_str()) {
        return Ok(StreamId::new(aggregate.to_owned(), id));
    }
    let lossy = |value: rusqlite::types::ValueRef<'_>| match value {
        rusqlite::types::ValueRef::Text(bytes) | rusqlite::types::ValueRef::Blob(bytes) => {
            String::from_utf8_lossy(bytes).into_owned()
        }
        other => format!("{other:?}"),
    };
    let stream = StreamId::new(lossy(aggregate), lossy(id));
    let sequence = row.get::<_, i64>(3).ok().and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
    Err(StoreError::corrupt(&stream, sequence, "the event's aggregate or stream id is not valid UTF-8 text"))
}

impl SqliteStore {
    /// Opens (creating it when needed) the database file at `path`, with
    /// [`Durability::Normal`], and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::default())
    }

    /// [`open`](Self::open) with the durability chosen.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(backend)?;
        Self::setup(connection, durability)
    }

    /// A private database in memory (for tests): nothing reaches a file.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory().map_err(backend)?, Durability::Normal)
    }

    fn setup(connection: Connection, durability: Durability) -> Result<Self, StoreError> {
        connection.busy_timeout(Duration::from_secs(10)).map_err(backend)?;
        connection.pragma_update(None, "journal_mode", "WAL").map_err(backend)?;
        let synchronous = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        connection.pragma_update(None, "synchronous", synchronous).map_err(backend)?;
        let store = SqliteStore { connection: Arc::new(Mutex::new(connection)), owner: Uuid::new_v4() };
        store.migrate_now()?;
        store.release_stale_claims()?;
        Ok(store)
    }

    /// This store's owner identity: what its claims of undelivered events record. Made
    /// when the store is opened (its clones share it).
    pub fn owner(&self) -> Uuid {
        self.owner
    }

    /// Frees the claims of every other owner: one process per file, so they were made by
    /// a process that is gone.
    fn release_stale_claims(&self) -> Result<(), StoreError> {
        self.lock()
            .prepare_cached(
                "UPDATE protean_events SET claimed_until = NULL, claimed_by = NULL
                 WHERE delivered = 0 AND claimed_until IS NOT NULL AND claimed_by IS NOT ?1",
            )
            .and_then(|mut s| s.execute([self.owner.to_string()]))
            .map(|_| ())
            .map_err(backend)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // rusqlite rolls back an unfinished transaction when it is dropped, so a panic
        // under the lock leaves the connection usable.
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates the tables, or upgrades them, in one transaction; idempotent.
    fn migrate_now(&self) -> Result<(), StoreError> {
        let mut connection = self.lock();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
        let current: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(backend)?;
        if current > SCHEMA_VERSION {
            return Err(StoreError::Schema {
                backend: "sqlite",
                found: SchemaVersion(u32::try_from(current).unwrap_or(u32::MAX)),
                supported: SchemaVersion(SCHEMA_VERSION as u32),
            });
        }
        if current < 1 {
            tx.execute_batch(SCHEMA_V1).map_err(backend)?;
        }
        if current < 2 {
            tx.execute_batch(SCHEMA_V2).map_err(backend)?;
        }
        if current < 3 {
            tx.execute_batch(SCHEMA_V3).map_err(backend)?;
        }
        if current < 4 {
            tx.execute_batch(SCHEMA_V4).map_err(backend)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(backend)?;
        tx.commit().map_err(backend)
    }

    fn commit_now(&self, batch: Batch) -> Result<Vec<Committed>, StoreError> {
        let mut connection = self.lock();
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
        if !batch.delivered.is_empty() {
            let mut mark =
                tx.prepare_cached("UPDATE protean_events SET delivered = 1 WHERE id = ?1").map_err(backend)?;
            for id in &batch.delivered {
                mark.execute([id.to_string()]).map_err(backend)?;
            }
        }
        tx.commit().map_err(backend)?;
        Ok(committed)
    }

    fn claim_now(&self, limit: usize, lease: Duration) -> Result<Vec<Envelope>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let (now_us, until_us) = (micros(now), micros(now + lease.min(super::MAX_LEASE)));
        let mut connection = self.lock();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
        let mut claimed = Vec::new();
        let mut order = super::ClaimOrder::new();
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
                let claimed_until: Option<i64> = row.get(11).map_err(backend)?;
                if order.take(stream, claimed_until.is_some_and(|until| until > now_us)) {
                    claimed.push(envelope(row)?);
                }
            }
        }
        {
            let mut claim = tx
                .prepare_cached("UPDATE protean_events SET claimed_until = ?1, claimed_by = ?2 WHERE id = ?3")
                .map_err(backend)?;
            let owner = self.owner.to_string();
            for event in &claimed {
                claim.execute(params![until_us, owner, event.id.to_string()]).map_err(backend)?;
            }
        }
        tx.commit().map_err(backend)?;
        Ok(claimed)
    }
}

/// The columns an [`Envelope`] is read from, in [`envelope`]'s order.
const EVENT_COLUMNS: &str =
    "id, aggregate, stream_id, sequence, type_name, version, payload, recorded_at, correlation_id, causation_id, position";

fn write(tx: &rusqlite::Transaction<'_>, commit: Commit) -> Result<Committed, StoreError> {
    let Commit { stream, expected_version, advance, state, events, snapshot } = commit;
    let row: Option<(i64, bool, i64)> = tx
        .prepare_cached(
            "SELECT version, state IS NOT NULL, last_sequence FROM protean_aggregates WHERE aggregate = ?1 AND id = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![&*stream.aggregate, &*stream.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()
        })
        .map_err(backend)?;
    let (actual, mut last_sequence, stored) = match row {
        Some((version, present, last)) => {
            let stored = stored_count(version, &stream, "version")?;
            (if present { stored } else { 0 }, last, stored)
        }
        None => (0, 0, 0),
    };
    if actual != expected_version {
        return Err(VersionConflict { stream, expected: expected_version, actual }.into());
    }
    // Versions keep rising across a removal (a stale writer of the removed one is refused).
    let version = stored.saturating_add(advance);
    let mut events = events;
    let last_after = last_sequence + i64::try_from(events.len()).unwrap_or(0);
    tx.prepare_cached(
        "INSERT INTO protean_aggregates (aggregate, id, version, state, last_sequence) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (aggregate, id) DO UPDATE SET version = excluded.version, state = excluded.state,
             last_sequence = excluded.last_sequence",
    )
    .and_then(|mut s| {
        s.execute(params![&*stream.aggregate, &*stream.id, to_i64(version), state.as_deref(), last_after])
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
        event.sequence = u64::try_from(last_sequence).unwrap_or(0);
        insert
            .execute(params![
                event.id.to_string(),
                &*stream.aggregate,
                &*stream.id,
                last_sequence,
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
        .and_then(|mut s| s.execute(params![&*stream.aggregate, &*stream.id, last_sequence, &*snapshot]))
        .map_err(backend)?;
    }
    Ok(Committed { stream, version, events })
}

/// An envelope from a row selected with [`EVENT_COLUMNS`]; bad stored values are typed errors.
fn envelope(row: &rusqlite::Row<'_>) -> Result<Envelope, StoreError> {
    let stream = event_stream(row)?;
    let sequence: i64 = row.get(3).map_err(backend)?;
    let position = stored_count(sequence, &stream, "event sequence")?;
    let uuid = |index: usize, what: &str| -> Result<Uuid, StoreError> {
        let text = text(row, index, &stream, position, what)?;
        Uuid::parse_str(&text).map_err(|e| StoreError::corrupt(&stream, position, format!("{what} `{text}`: {e}")))
    };
    let id = uuid(0, "event id")?;
    let correlation_id = uuid(8, "correlation id")?;
    let causation_id = uuid(9, "causation id")?;
    let type_name = text(row, 4, &stream, position, "event type name")?;
    let version: i64 = row.get(5).map_err(backend)?;
    let version = u32::try_from(version)
        .map_err(|_| StoreError::corrupt(&stream, position, format!("event version {version} is out of range")))?;
    let payload = text(row, 6, &stream, position, "event payload")?;
    let recorded: i64 = row.get(7).map_err(backend)?;
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

fn ready<T: Send + 'static>(value: T) -> BoxFuture<'static, T> {
    Box::pin(std::future::ready(value))
}

impl Store for SqliteStore {
    fn migrate(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        ready(self.migrate_now())
    }

    fn load<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        let connection = self.lock();
        let record = connection
            .prepare_cached(
                "SELECT version, state FROM protean_aggregates WHERE aggregate = ?1 AND id = ?2 AND state IS NOT NULL",
            )
            .and_then(|mut s| {
                s.query_row(params![&*stream.aggregate, &*stream.id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)))
                })
                .optional()
            })
            .map_err(backend)
            .and_then(|row| match row {
                Some((version, state)) => {
                    let version = stored_count(version, stream, "version")?;
                    let state = state.map_err(|e| unreadable(e, stream, version, "aggregate's state"))?;
                    Ok(Some(Record { version, state: state.into() }))
                }
                None => Ok(None),
            });
        ready(record)
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, Result<Vec<Committed>, StoreError>> {
        ready(self.commit_now(batch))
    }

    fn claim_undelivered(&self, limit: usize, lease: Duration) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        ready(self.claim_now(limit, lease))
    }

    fn mark_delivered(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut connection = self.lock();
        let outcome = (|| {
            let tx = connection.transaction()?;
            {
                let mut mark = tx.prepare_cached("UPDATE protean_events SET delivered = 1 WHERE id = ?1")?;
                for id in &event_ids {
                    mark.execute([id.to_string()])?;
                }
            }
            tx.commit()
        })()
        .map_err(backend);
        ready(outcome)
    }

    fn is_handled<'a>(&'a self, handler: &'a str, message_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        let connection = self.lock();
        let found = connection
            .prepare_cached("SELECT 1 FROM protean_handled WHERE handler = ?1 AND message_id = ?2")
            .and_then(|mut s| s.exists(params![handler, message_id.to_string()]))
            .map_err(backend);
        ready(found)
    }

    fn stream<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        let connection = self.lock();
        let events = (|| {
            let mut select = connection
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM protean_events WHERE aggregate = ?1 AND stream_id = ?2 ORDER BY sequence"
                ))
                .map_err(backend)?;
            let mut rows = select.query(params![&*stream.aggregate, &*stream.id]).map_err(backend)?;
            let mut events = Vec::new();
            while let Some(row) = rows.next().map_err(backend)? {
                events.push(envelope(row)?);
            }
            Ok(events)
        })();
        ready(events)
    }

    fn stream_range<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        let connection = self.lock();
        let events = (|| {
            let mut select = connection
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM protean_events WHERE aggregate = ?1 AND stream_id = ?2
                     AND sequence > ?3 AND sequence <= ?4 ORDER BY sequence"
                ))
                .map_err(backend)?;
            let up_to = up_to.map_or(i64::MAX, to_i64);
            let mut rows =
                select.query(params![&*stream.aggregate, &*stream.id, to_i64(after), up_to]).map_err(backend)?;
            let mut events = Vec::new();
            while let Some(row) = rows.next().map_err(backend)? {
                events.push(envelope(row)?);
            }
            Ok(events)
        })();
        ready(events)
    }

    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
        at_most: Option<u64>,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        let connection = self.lock();
        let snapshot = connection
            .prepare_cached(
                "SELECT sequence, state FROM protean_snapshots WHERE aggregate = ?1 AND id = ?2 AND sequence <= ?3
                 ORDER BY sequence DESC LIMIT 1",
            )
            .and_then(|mut s| {
                let at_most = at_most.map_or(i64::MAX, to_i64);
                s.query_row(params![&*stream.aggregate, &*stream.id, at_most], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)))
                })
                .optional()
            })
            .map_err(backend)
            .and_then(|row| match row {
                Some((sequence, state)) => {
                    let sequence = stored_count(sequence, stream, "snapshot sequence")?;
                    let state = state.map_err(|e| unreadable(e, stream, sequence, "snapshot"))?;
                    Ok(Some(Snapshot { sequence, state: Arc::from(state) }))
                }
                None => Ok(None),
            });
        ready(snapshot)
    }

    fn events(&self, from: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        let connection = self.lock();
        let events = (|| {
            let mut select = connection
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM protean_events ORDER BY position LIMIT ?1 OFFSET ?2"
                ))
                .map_err(backend)?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut rows = select.query(params![limit, to_i64(from)]).map_err(backend)?;
            let mut events = Vec::new();
            while let Some(row) = rows.next().map_err(backend)? {
                events.push(envelope(row)?);
            }
            Ok(events)
        })();
        ready(events)
    }

    fn read_model<'a>(&'a self, name: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        let connection = self.lock();
        let json = connection
            .prepare_cached("SELECT json FROM protean_read_models WHERE name = ?1 AND key = ?2")
            .and_then(|mut s| s.query_row(params![name, key], |r| Ok(r.get::<_, String>(0))).optional())
            .map_err(backend)
            .and_then(|row| {
                // A read model is named like a stream: its name and key.
                let named = || StreamId::new(name.to_owned(), key);
                row.map(|json| json.map_err(|e| unreadable(e, &named(), 0, "read model's JSON"))).transpose()
            });
        ready(json)
    }

    fn put_read_model<'a>(
        &'a self,
        name: &'a str,
        key: &'a str,
        json: String,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let connection = self.lock();
        let outcome = connection
            .prepare_cached(
                "INSERT INTO protean_read_models (name, key, json) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name, key) DO UPDATE SET json = excluded.json",
            )
            .and_then(|mut s| s.execute(params![name, key, json]))
            .map(|_| ())
            .map_err(backend);
        ready(outcome)
    }
}
