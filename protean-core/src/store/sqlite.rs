//! The embedded store: SQLite in one file, through rusqlite (SQLite bundled, no server).
//!
//! Durability: the database runs in WAL mode. [`Durability::Normal`] (the default) uses
//! `synchronous = NORMAL`: a commit survives the process crashing or being killed at
//! any point; after a power loss or an OS crash the last commits may be lost, but the
//! database stays consistent. [`Durability::Full`] uses `synchronous = FULL`: every
//! commit is on disk (fsync) before it returns.
//!
//! SQLite runs on threads of its own, never on the caller's: one writer thread, with the
//! connection that writes, takes the writes (commits, claims, marks) in order from a
//! queue; a few reader threads, each with a read-only connection, take the reads.
//! Under WAL a read sees the last commit and waits for no writer. An async call sends
//! its work and awaits the answer, so a commit waiting for another process's lock (up
//! to the 10 s busy timeout) or for an fsync holds up no other task.
//!
//! Commits are grouped (group commit, on unless [`SqliteOptions::group_commit`] turns it
//! off): the writer takes a commit together with every commit waiting behind it in the
//! queue (up to 256 units of work) and writes them in one `BEGIN IMMEDIATE`
//! transaction, in queue order, each unit in its own `SAVEPOINT`. A unit that fails
//! (a version conflict, a message already handled, a projection row conflict, any
//! error or panic) is rolled back to its savepoint and gets its own error; the others
//! are kept, and a later unit sees an earlier one's writes, so its version check is
//! exact. The transaction commits once, and only then is each unit answered: an answer
//! is as durable as the [`Durability`] says, and concurrent units share one commit (one
//! fsync with [`Durability::Full`]). If the transaction itself fails, nothing of the
//! group is written and every unit gets an error. A lone commit is one transaction, as
//! before, without a savepoint. Other writes wait their turn: one met in the queue runs
//! right after the group. [`Records::commit_group`] sends its batches as one group.
//!
//! Background delivery keeps its state in the same file: claims are renewed and
//! released on the writer (only this store's own, only on undelivered events); failed
//! deliveries (retrying, dead, held) are written on the writer to `protean_failures`,
//! one row per (handler, event), and read on the readers with their events; a handled
//! record keeps a command's outcome, written with its commit. The outbox status and a
//! handler's state are each read with indexes, not scans of the log.
//!
//! Projections and process managers keep their state in the same file too:
//!
//! * `protean_projections`: one row per projection, with its serving copy (generation),
//!   the version that built it, the log position its rebuild ran through and the highest
//!   position whose changes it holds (the checkpoint), and the rebuild under way, if any
//!   (the copy it fills, its version, how far it got and its builder's heartbeat);
//! * `protean_projection_rows`: the rows of every copy of every projection, by
//!   (projection, generation, key), each with its version and JSON. A commit applies
//!   its row changes in its own transaction, by the rule every store follows (see
//!   [`Batch::rows`]). Each declared field of a projection has a partial expression
//!   index, on `json_extract(json, '$.<field>')` for that projection's rows, made when
//!   it is registered; a query filters and
//!   orders by the same expression and reads through the index of the field it
//!   compares (or orders by);
//! * `protean_scheduled`: the commands process managers send or schedule, written with
//!   the unit of work that sends them (and cancelled deadlines deleted in it), until a
//!   worker claims one that is due (recording its owner id and a lease) and fires it.
//!
//! Log positions are the events' `position` column: from 1, increasing in commit order;
//! an index on (type, position) serves the rebuild's reads of the events of some types.
//! A rebuild finishes in one write transaction, which holds SQLite's write lock: no
//! commit, of this process or another, slips between its check for new events and the
//! switch of copies.

mod projections;
mod queries;
mod rows;
mod scheduled;
mod schema;
mod threads;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use uuid::Uuid;

use super::ports::{Deliveries, Outbox, Projections, Records, Schedule};
use super::{Batch, BoxFuture, Committed, Record, ReplayEvents, SchemaVersion, Snapshot, StoreError};
use super::{BuildState, Logged, ProjectionSpec, ProjectionState, Row, RowQuery, Scheduled};
use super::{FailedDelivery, FailureQuery, FailureUpdate, HandlerState, OutboxStatus};
use crate::store::envelope::{Envelope, StreamId};
pub use schema::SCHEMA_VERSION;
use threads::Threads;
use time::OffsetDateTime;

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
        queries::release_stale_claims(&writer, owner)?;
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
    /// [`Records::migrate`].
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
    /// answers as the first call did. The same as [`Records::close`].
    ///
    /// Without it, the threads do the same when the last clone is dropped, but nobody
    /// waits for them: a process that exits right after leaves the `-wal` file (SQLite
    /// checkpoints it when the file is opened next). Call it at the end of a run.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.threads.close().await
    }
}

impl Records for SqliteStore {
    /// [`SqliteStore::migrate`].
    fn migrate(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(SqliteStore::migrate(self))
    }

    /// [`SqliteStore::close`].
    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.threads.close()
    }

    fn load<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        let stream = stream.clone();
        self.threads.read(move |c| queries::load(c, &stream))
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, Result<Vec<Committed>, StoreError>> {
        self.threads.commit(batch)
    }

    /// The batches are written as one group, in one transaction (with the other commits
    /// waiting for the writer, if any), each in its own savepoint; see
    /// [`SqliteOptions::group_commit`]. With grouping off, one transaction each.
    fn commit_group(&self, batches: Vec<Batch>) -> BoxFuture<'_, Vec<Result<Vec<Committed>, StoreError>>> {
        self.threads.commit_group(batches)
    }

    fn stream<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        let stream = stream.clone();
        self.threads.read(move |c| queries::stream(c, &stream))
    }

    fn stream_range<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        let stream = stream.clone();
        self.threads.read(move |c| queries::stream_range(c, &stream, after, up_to))
    }

    fn replay_events<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<ReplayEvents, StoreError>> {
        let stream = stream.clone();
        self.threads.read(move |c| queries::replay_events(c, &stream, after, up_to))
    }

    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
        at_most: Option<u64>,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        let stream = stream.clone();
        self.threads.read(move |c| queries::load_snapshot(c, &stream, at_most))
    }

    fn events(&self, from: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        self.threads.read(move |c| queries::events(c, from, limit))
    }

    fn log_after<'a>(
        &'a self,
        after: u64,
        limit: usize,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Logged>, StoreError>> {
        let types = types.to_vec();
        self.threads.read(move |c| projections::log_after(c, after, limit, &types))
    }

    fn log_count<'a>(&'a self, after: u64, types: &'a [String]) -> BoxFuture<'a, Result<u64, StoreError>> {
        let types = types.to_vec();
        self.threads.read(move |c| projections::log_count(c, after, &types))
    }
}

impl Outbox for SqliteStore {
    fn claim_undelivered(&self, limit: usize, lease: Duration) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        let owner = self.owner;
        self.threads.write(move |c| queries::claim(c, owner, limit, lease))
    }

    fn renew_claims(&self, event_ids: Vec<Uuid>, lease: Duration) -> BoxFuture<'_, Result<(), StoreError>> {
        let owner = self.owner;
        self.threads.write(move |c| queries::renew_claims(c, owner, &event_ids, lease))
    }

    fn release_claims(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        let owner = self.owner;
        self.threads.write(move |c| queries::release_claims(c, owner, &event_ids))
    }

    fn mark_delivered(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.threads.write(move |c| queries::mark_delivered(c, &event_ids))
    }

    fn outbox_status(&self) -> BoxFuture<'_, Result<OutboxStatus, StoreError>> {
        self.threads.read(queries::outbox_status)
    }

    fn outbox_signal(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }
}

impl Deliveries for SqliteStore {
    fn is_handled<'a>(&'a self, handler: &'a str, message_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        let handler = handler.to_owned();
        self.threads.read(move |c| queries::is_handled(c, &handler, message_id))
    }

    fn handled_outcome<'a>(
        &'a self,
        handler: &'a str,
        message_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<Option<String>>, StoreError>> {
        let handler = handler.to_owned();
        self.threads.read(move |c| queries::handled_outcome(c, &handler, message_id))
    }

    fn handler_state<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<HandlerState, StoreError>> {
        let (handler, id, stream, sequence) = (handler.to_owned(), event.id, event.stream.clone(), event.sequence);
        self.threads.read(move |c| queries::handler_state(c, &handler, id, &stream, sequence))
    }

    fn record_failure(&self, update: FailureUpdate) -> BoxFuture<'_, Result<u32, StoreError>> {
        self.threads.write(move |c| queries::record_failure(c, &update))
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
        self.threads.write(move |c| queries::hold_behind_dead_letter(c, &handler, &event, &reason, at))
    }

    fn failed_delivery<'a>(
        &'a self,
        handler: &'a str,
        event_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<FailedDelivery>, StoreError>> {
        let handler = handler.to_owned();
        self.threads.read(move |c| queries::failed_delivery_of(c, &handler, event_id))
    }

    fn failed_deliveries(&self, query: FailureQuery) -> BoxFuture<'_, Result<Vec<FailedDelivery>, StoreError>> {
        self.threads.read(move |c| queries::failed_deliveries(c, &query))
    }

    fn remove_failure<'a>(&'a self, handler: &'a str, event_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        let handler = handler.to_owned();
        self.threads.write(move |c| queries::remove_failure(c, &handler, event_id))
    }
}

impl Projections for SqliteStore {
    fn register_projection(&self, spec: ProjectionSpec) -> BoxFuture<'_, Result<ProjectionState, StoreError>> {
        self.threads.write(move |c| projections::register(c, &spec))
    }

    fn projection_state<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<ProjectionState>, StoreError>> {
        let name = name.to_owned();
        self.threads.read(move |c| projections::state(c, &name))
    }

    fn projection_row<'a>(
        &'a self,
        name: &'a str,
        generation: Option<u64>,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Row>, StoreError>> {
        let (name, key) = (name.to_owned(), key.to_owned());
        self.threads.read(move |c| projections::row(c, &name, generation, &key))
    }

    fn query_projection(&self, query: RowQuery) -> BoxFuture<'_, Result<Vec<Row>, StoreError>> {
        self.threads.read(move |c| projections::query(c, &query))
    }

    fn begin_build<'a>(
        &'a self,
        name: &'a str,
        version: u32,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<BuildState>, StoreError>> {
        let name = name.to_owned();
        self.threads.write(move |c| projections::begin_build(c, &name, version, lease))
    }

    fn write_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        rows: Vec<(String, Option<Arc<str>>)>,
        position: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let name = name.to_owned();
        self.threads.write(move |c| projections::write_build(c, &name, generation, &rows, position))
    }

    fn finish_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        position: u64,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let (name, types) = (name.to_owned(), types.to_vec());
        self.threads.write(move |c| projections::finish_build(c, &name, generation, position, &types))
    }

    fn read_model<'a>(&'a self, name: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        let (name, key) = (name.to_owned(), key.to_owned());
        self.threads.read(move |c| queries::read_model(c, &name, &key))
    }

    fn put_read_model<'a>(
        &'a self,
        name: &'a str,
        key: &'a str,
        json: String,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (name, key) = (name.to_owned(), key.to_owned());
        self.threads.write(move |c| queries::put_read_model(c, &name, &key, &json))
    }
}

impl Schedule for SqliteStore {
    /// Claims for this store's [owner](SqliteStore::owner).
    fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Scheduled>, StoreError>> {
        let owner = self.owner;
        self.threads.write(move |c| scheduled::claim_due(c, owner, now, limit, lease))
    }

    fn complete_scheduled(&self, id: Uuid) -> BoxFuture<'_, Result<(), StoreError>> {
        self.threads.write(move |c| scheduled::complete(c, id))
    }

    fn release_scheduled(&self, ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        let owner = self.owner;
        self.threads.write(move |c| scheduled::release(c, owner, &ids))
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<OffsetDateTime>, StoreError>> {
        self.threads.read(scheduled::next_due)
    }

    fn scheduled_of<'a>(
        &'a self,
        owner: &'a str,
        owner_key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Scheduled>, StoreError>> {
        let (owner, owner_key) = (owner.to_owned(), owner_key.to_owned());
        self.threads.read(move |c| scheduled::scheduled_of(c, &owner, &owner_key))
    }
}
