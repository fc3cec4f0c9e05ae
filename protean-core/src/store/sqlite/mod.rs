//! The embedded store: SQLite in one file, through rusqlite (SQLite bundled, no server).
//!
//! This file opens and closes a [`SqliteStore`]; each port's `impl` is in the file of
//! the same name (`records.rs`, `outbox.rs`, `deliveries.rs`, `projections.rs`,
//! `schedule.rs`), with the statements only it runs. SQLite runs on threads of its own
//! (`threads.rs`, `writer.rs`: one writer with group commit, a few readers); a unit of
//! work's batch is written by `batch.rs`. Durability, the threads, group commit and the
//! tables are described in docs/storage.md ("Durability (SQLite)", "Schema and
//! migrations", "Projections and scheduled commands on SQLite").

mod batch;
mod deliveries;
mod outbox;
mod projections;
mod records;
mod row_query;
mod rows;
mod schedule;
pub(crate) mod schema;
mod threads;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use uuid::Uuid;

use super::{SchemaVersion, StoreError};
pub use schema::SCHEMA_VERSION;
use threads::Threads;

/// How long a statement waits for a lock another connection holds before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

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

/// How to open a [`SqliteStore`]: its [`Durability`], whether opening migrates the
/// schema, how many reader threads it runs, and whether its commits are grouped.
///
/// ```no_run
/// # extern crate protean_core as protean;
/// use protean::store::{Durability, SqliteOptions};
/// // A production role that may not change the schema: the file must be migrated already.
/// let store = SqliteOptions::new().durability(Durability::Full).migrate(false).open("app.db")?;
/// # Ok::<(), protean::store::StoreError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    durability: Durability,
    migrate: bool,
    readers: usize,
    group_commit: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions { durability: Durability::Normal, migrate: true, readers: 2, group_commit: true }
    }
}

impl SqliteOptions {
    /// The defaults: [`Durability::Normal`], migrating on open, two readers, group
    /// commit on.
    pub fn new() -> Self {
        Self::default()
    }

    /// How hard a commit tries to reach the disk.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Whether opening creates the file when it is missing and brings its schema up to
    /// date (`true`, the default), or requires a file whose schema is exactly
    /// [`SCHEMA_VERSION`](crate::store::SQLITE_SCHEMA_VERSION) and changes no table
    /// (`false`; anything else is [`StoreError::Schema`], and a missing file a backend
    /// error). Either way, [`SqliteStore::migrate`] migrates on demand.
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// How many reader threads, each with its own read-only connection, serve the
    /// reads (two by default). With 0 the reads queue with the writes on the writer.
    /// A database in memory has no readers whatever this says (no other connection
    /// could see it).
    pub fn readers(mut self, readers: usize) -> Self {
        self.readers = readers;
        self
    }

    /// Whether the writer commits the units of work waiting in its queue together, in
    /// one transaction (`true`, the default), or each in a transaction of its own
    /// (`false`).
    ///
    /// Grouped, when the writer takes a commit it also takes every commit waiting behind
    /// it (up to 256 units) and writes them in one `BEGIN IMMEDIATE` transaction, each
    /// unit in its own savepoint: a unit that fails (a version conflict, a message
    /// already handled, any error) is rolled back alone and gets its error, the others
    /// are kept, and each is answered only once the group has committed, so an answer
    /// is as durable as the [`Durability`] says. Under load the commits (and their
    /// fsyncs with [`Durability::Full`]) are shared; a lone commit is one transaction, with no savepoint.
    /// Turning it off is for comparing (benchmarks): nothing else changes.
    pub fn group_commit(mut self, group_commit: bool) -> Self {
        self.group_commit = group_commit;
        self
    }

    /// Opens the database file at `path` (a path, or an SQLite `file:` URI).
    pub fn open(&self, path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        let mut flags =
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if self.migrate {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        self.start(Connection::open_with_flags(path, flags).map_err(backend)?, path)
    }

    /// A private database in memory (for tests): nothing reaches a file. Its reads run
    /// on the writer.
    pub fn in_memory(&self) -> Result<SqliteStore, StoreError> {
        self.start(Connection::open_in_memory().map_err(backend)?, Path::new(":memory:"))
    }

    fn start(&self, mut writer: Connection, path: &Path) -> Result<SqliteStore, StoreError> {
        writer.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
        // SQLite names no file for a database in memory: nothing to share with readers.
        let file = match writer.path() {
            Some("") => None,
            Some(file) => Some(PathBuf::from(file)),
            None => Some(path.to_path_buf()), // not UTF-8: open it as it was given
        };
        if !self.migrate {
            schema::check(&writer)?; // before anything else touches the file
        }
        let journal: String =
            writer.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(backend)?;
        if file.is_some() && !journal.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), journal, "SQLite cannot use WAL for this file: reads wait for writes");
        }
        let synchronous = match self.durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        writer.pragma_update(None, "synchronous", synchronous).map_err(backend)?;
        if self.migrate {
            schema::migrate(&mut writer)?;
        }
        let owner = Uuid::new_v4();
        // One process per file: claims of another owner were made by a process that is gone.
        outbox::release_stale_claims(&writer, owner)?;
        schedule::release_stale_claims(&writer, owner)?;
        let readers = match &file {
            Some(file) => (0..self.readers).map(|_| reader(file)).collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(SqliteStore { threads: Arc::new(Threads::start(writer, readers, self.group_commit)?), owner })
    }
}

/// A read-only connection to `file`, for a reader thread.
fn reader(file: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(file, flags).map_err(backend)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
    Ok(connection)
}

/// A [`Store`](super::Store) in a SQLite file: the embedded default.
///
/// One process per file is the supported setup. Each store has an owner identity, made
/// when it is opened, and claims of undelivered events record it. Opening a store
/// releases every claim made by another owner: those were made by a process that has
/// stopped (it crashed, or was killed, before delivering them), so a restarted process
/// delivers them at once rather than after their lease. Several processes on one file
/// still work (SQLite serializes their writes), but each one that opens the file takes
/// back the others' claims: events another process is delivering at that moment may be
/// delivered twice (the handled records keep each handler's effect single). The same
/// holds for claims of scheduled commands: opening a store frees those of other owners,
/// so a command another process is firing may be fired twice (it is processed under its
/// id, so the second time changes nothing). Projection rows, rebuilds and their leases
/// need nothing of the kind: every change is checked in the write transaction, and a
/// rebuild is taken over only when its builder's heartbeat is older than the lease.
///
/// SQLite runs on the store's own threads, never on the caller's: a writer thread, with
/// the connection that writes, takes the writes (commits, claims, marks, failures) in
/// order from a queue, the commits waiting together as one group in one transaction (see
/// [`SqliteOptions::group_commit`]); reader threads (see [`SqliteOptions::readers`]), each with a read-only
/// connection, take the reads, which under WAL wait for no writer. The async methods
/// send their work and await the answer, so a commit waiting for another connection's
/// lock (up to the 10 s busy timeout) or for an fsync holds up no other task. Work whose
/// future is dropped before it answers may still be done (a commit, say). A thread that
/// stops, or work that panics on it, is a [`StoreError::Backend`] for the caller.
///
/// [`close`](Self::close) ends it all at the end of a run: the work already sent is
/// done, the WAL is checkpointed into the database file and the connections are closed,
/// which removes the `-wal` and `-shm` files; later calls fail with
/// [`StoreError::Closed`]. When the last clone is dropped without it, the threads do the
/// same, unawaited.
///
/// [`open`](Self::open) creates and migrates the schema; a role that may not change it
/// opens with [`open_without_migrating`](Self::open_without_migrating), and the
/// migration runs apart, with [`open`](Self::open) or [`migrate`](Self::migrate).
///
/// ```
/// # extern crate protean_core as protean;
/// use protean::store::{SqliteStore, Store};
/// let store = SqliteStore::in_memory().unwrap(); // or SqliteStore::open("app.db")
/// # let _ = store;
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStore {
    threads: Arc<Threads>,
    owner: Uuid,
}

/// A driver's error as the store's.
fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::backend("sqlite", e)
}

impl SqliteStore {
    /// Opens (creating it when needed) the database file at `path`, with
    /// [`Durability::Normal`], and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        SqliteOptions::new().open(path)
    }

    /// [`open`](Self::open) with the durability chosen.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        SqliteOptions::new().durability(durability).open(path)
    }

    /// Opens the existing database file at `path` without changing its schema: a file
    /// whose schema is not [`SCHEMA_VERSION`](crate::store::SQLITE_SCHEMA_VERSION)
    /// (older, newer, or none) is [`StoreError::Schema`]; a missing file is a backend
    /// error, not created. For roles that may not change tables; migrate with
    /// [`open`](Self::open) or [`migrate`](Self::migrate) beforehand. See
    /// [`SqliteOptions`] for the other settings.
    pub fn open_without_migrating(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        SqliteOptions::new().migrate(false).open(path)
    }

    /// A private database in memory (for tests): nothing reaches a file.
    pub fn in_memory() -> Result<Self, StoreError> {
        SqliteOptions::new().in_memory()
    }

    /// Options to open with: the durability, whether to migrate, how many readers.
    pub fn options() -> SqliteOptions {
        SqliteOptions::new()
    }

    /// Creates the tables, or upgrades them to
    /// [`SCHEMA_VERSION`](crate::store::SQLITE_SCHEMA_VERSION), in one transaction on the
    /// writer; safe to call any number of times. A file of a newer schema (written by a
    /// later protean) is refused with [`StoreError::Schema`]. The same as
    /// [`Records::migrate`](crate::store::Records::migrate).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.threads.write(schema::migrate).await
    }

    /// The schema version the file is at (0 when it has none).
    pub async fn schema_version(&self) -> Result<SchemaVersion, StoreError> {
        self.threads.read(schema::version).await
    }

    /// This store's owner identity: what its claims of undelivered events record. Made
    /// when the store is opened (its clones share it).
    pub fn owner(&self) -> Uuid {
        self.owner
    }

    /// Closes the store, for every clone: the work already sent to it is done (a commit
    /// sent before is committed), then its threads checkpoint the WAL into the database
    /// file, close their connections and end. SQLite removes the `-wal` and `-shm` files
    /// as the last connection closes; with another process still having the file open,
    /// they stay for it (the WAL emptied when no reader of that process was in the way).
    /// From then on every call fails with [`StoreError::Closed`]; opening the file again
    /// gives a store that sees everything committed. Calling it again, from any clone,
    /// answers as the first call did. The same as [`Records::close`](crate::store::Records::close).
    ///
    /// Without it, the threads do the same when the last clone is dropped, but nobody
    /// waits for them: a process that exits right after leaves the `-wal` file (SQLite
    /// checkpoints it when the file is opened next). Call it at the end of a run.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.threads.close().await
    }
}

/// ` AND type_name IN (?n, …)` for `types` (nothing when empty, for every type), its
/// placeholders numbered after `first - 1`, and the values to bind: the filter of the
/// positioned log's reads and of a rebuild's last check.
fn type_filter(types: &[String], first: usize) -> (String, Vec<Value>) {
    if types.is_empty() {
        return (String::new(), Vec::new());
    }
    let placeholders: Vec<String> = (first..first + types.len()).map(|n| format!("?{n}")).collect();
    let values = types.iter().map(|t| Value::Text(t.clone())).collect();
    (format!(" AND type_name IN ({})", placeholders.join(", ")), values)
}
