//! The tables, their versions, and the migration from each older version.

use rusqlite::{Connection, TransactionBehavior};

use super::backend;
use crate::store::{SchemaVersion, StoreError};

/// The schema version this code writes; [`Records::migrate`](crate::store::Records::migrate)
/// brings older files up to it, and a store opened without migrating requires it.
pub const SCHEMA_VERSION: SchemaVersion = SchemaVersion(7);

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
/// [`Commit::advance`](crate::store::Commit::advance)), so the records of event-sourced
/// aggregates (state `null`) written by older code, which counted commits, move to their
/// last sequence.
const SCHEMA_V3: &str = "
UPDATE protean_aggregates SET version = last_sequence WHERE state = 'null' AND version < last_sequence;
";

/// Version 4: a claim records its owner, the store that made it.
const SCHEMA_V4: &str = "
ALTER TABLE protean_events ADD COLUMN claimed_by TEXT; -- the claiming store's owner id
";

/// Version 5: background delivery. A handled record keeps its outcome (a command's
/// reply); failed deliveries (retrying, dead, or held behind a dead letter) are kept per
/// (handler, event), with the event's stream and log position, and an index for the
/// check whether a handler's stream is held. `outbox_status` counts the undelivered
/// events on `protean_events_undelivered`, the partial index on undelivered positions
/// that version 1 already makes (so creating it here changes nothing on such a file).
const SCHEMA_V5: &str = "
ALTER TABLE protean_handled ADD COLUMN outcome TEXT; -- a command's reply, as JSON; NULL for an event
CREATE TABLE IF NOT EXISTS protean_failures (
    handler         TEXT    NOT NULL,
    event_id        TEXT    NOT NULL, -- as protean_events.id
    aggregate       TEXT    NOT NULL,
    stream_id       TEXT    NOT NULL,
    sequence        INTEGER NOT NULL,
    position        INTEGER NOT NULL, -- the event's protean_events.position: the listing order
    status          TEXT    NOT NULL, -- 'retrying', 'dead' or 'held'
    attempts        INTEGER NOT NULL,
    first_error     TEXT    NOT NULL,
    last_error      TEXT    NOT NULL,
    first_failed_at INTEGER NOT NULL, -- microseconds since the Unix epoch
    last_failed_at  INTEGER NOT NULL, -- likewise
    PRIMARY KEY (handler, event_id)
); -- a rowid table: its rows carry error texts of any length, and the held index is
   -- chosen over the primary key without statistics
CREATE INDEX IF NOT EXISTS protean_failures_held ON protean_failures (handler, aggregate, stream_id)
    WHERE status <> 'retrying';
CREATE INDEX IF NOT EXISTS protean_events_undelivered ON protean_events (position) WHERE delivered = 0;
";

/// Version 6: projections and process managers. A projection's state (its serving copy,
/// how far that copy is built and applied, and the rebuild under way, if any); the rows
/// of every copy of every projection, one table (each projection's declared fields get
/// an expression index of their own, made when it is registered); the commands process
/// managers send or schedule, until a worker fires them; and an index on the events'
/// type names and positions, for the positioned log a rebuild reads.
const SCHEMA_V6: &str = "
CREATE TABLE IF NOT EXISTS protean_projections (
    name             TEXT    NOT NULL PRIMARY KEY,
    version          INTEGER NOT NULL, -- the projector version that built the serving copy
    generation       INTEGER NOT NULL, -- the serving copy
    built_through    INTEGER NOT NULL, -- the log position its rebuild ran through (0: never rebuilt)
    checkpoint       INTEGER NOT NULL, -- the highest log position whose changes it holds
    build_generation INTEGER,          -- the copy a rebuild fills; NULL when none runs
    build_version    INTEGER,          -- the version it builds
    build_position   INTEGER,          -- the log position it applied so far
    build_heartbeat  INTEGER           -- when its builder last wrote: microseconds since the Unix epoch
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS protean_projection_rows (
    projection TEXT    NOT NULL,
    generation INTEGER NOT NULL, -- the copy
    key        TEXT    NOT NULL,
    version    INTEGER NOT NULL, -- 1 when written first, one more at each change
    json       TEXT    NOT NULL,
    PRIMARY KEY (projection, generation, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS protean_scheduled (
    id             TEXT    NOT NULL PRIMARY KEY, -- the command's id
    owner          TEXT    NOT NULL, -- the process manager
    owner_key      TEXT    NOT NULL, -- its instance
    name           TEXT,             -- a deadline's name; NULL for a command sent now
    due_at         INTEGER NOT NULL, -- microseconds since the Unix epoch
    type_name      TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    correlation_id TEXT    NOT NULL,
    causation_id   TEXT    NOT NULL,
    claimed_until  INTEGER,          -- microseconds since the Unix epoch
    claimed_by     TEXT              -- the claiming store's owner id
);
CREATE INDEX IF NOT EXISTS protean_scheduled_due ON protean_scheduled (due_at, id);
CREATE INDEX IF NOT EXISTS protean_scheduled_owner ON protean_scheduled (owner, owner_key, due_at);
CREATE INDEX IF NOT EXISTS protean_events_type ON protean_events (type_name, position);
";

/// Version 7: the delivery workers' signs of life, one row per worker set, for an
/// operator's status.
const SCHEMA_V7: &str = "
CREATE TABLE IF NOT EXISTS protean_workers (
    id         TEXT    NOT NULL PRIMARY KEY, -- the worker set
    host       TEXT    NOT NULL,
    pid        INTEGER NOT NULL,
    started_at INTEGER NOT NULL, -- microseconds since the Unix epoch
    seen_at    INTEGER NOT NULL, -- its last beat: microseconds since the Unix epoch
    every_ms   INTEGER NOT NULL, -- how often it beats
    stopped    INTEGER NOT NULL  -- 1 once it stopped gracefully
) WITHOUT ROWID;
";

/// Each version's statements, from version 1 up.
const MIGRATIONS: [&str; 7] = [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7];
const _: () = assert!(MIGRATIONS.len() == SCHEMA_VERSION.0 as usize, "one migration per version");

/// The schema version recorded in the file (0: none yet).
fn stored_version(connection: &Connection) -> Result<i64, StoreError> {
    connection.pragma_query_value(None, "user_version", |row| row.get("user_version")).map_err(backend)
}

/// `user_version` as a [`SchemaVersion`] (a negative one, which protean never writes, as 0).
fn schema_version(stored: i64) -> SchemaVersion {
    SchemaVersion(u32::try_from(stored).unwrap_or(if stored < 0 { 0 } else { u32::MAX }))
}

/// The schema version the file is at (0: none).
pub(super) fn version(connection: &Connection) -> Result<SchemaVersion, StoreError> {
    stored_version(connection).map(schema_version)
}

fn mismatch(stored: i64) -> StoreError {
    StoreError::Schema { backend: "sqlite", found: schema_version(stored), supported: SCHEMA_VERSION }
}

/// Creates the tables, or upgrades them, in one transaction; idempotent. A file of a
/// newer schema is refused.
pub(super) fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    let current = stored_version(&tx)?;
    let supported = i64::from(SCHEMA_VERSION.0);
    if current > supported {
        return Err(mismatch(current));
    }
    for (version, statements) in (1..).zip(MIGRATIONS) {
        if current < version {
            tx.execute_batch(statements).map_err(backend)?;
            tracing::info!(version, "sqlite: migrated the schema");
        }
    }
    tx.pragma_update(None, "user_version", supported).map_err(backend)?;
    tx.commit().map_err(backend)
}

/// Refuses a file whose schema is not exactly [`SCHEMA_VERSION`]: what a store opened
/// without migrating requires.
pub(super) fn check(connection: &Connection) -> Result<(), StoreError> {
    let current = stored_version(connection)?;
    if current == i64::from(SCHEMA_VERSION.0) {
        Ok(())
    } else {
        Err(mismatch(current))
    }
}

/// The schema version of the file at `path`, read without opening a store: the file is
/// opened read-only and nothing is created (a missing file is at version 0).
pub(crate) fn file_version(path: &str) -> Result<SchemaVersion, StoreError> {
    use rusqlite::OpenFlags;
    let uri = path.starts_with("file:");
    if !uri && !std::path::Path::new(path).exists() {
        return Ok(SchemaVersion(0));
    }
    let mut flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if uri {
        flags |= OpenFlags::SQLITE_OPEN_URI;
    }
    let connection = Connection::open_with_flags(path, flags).map_err(backend)?;
    version(&connection)
}
