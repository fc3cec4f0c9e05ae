//! The errors a domain operation can end with.

use std::fmt;
use std::sync::Arc;

use uuid::Uuid;

use crate::model::identity::StreamId;
use crate::model::validation::ValidationError;

/// Why a domain operation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// Fields or invariants are broken; every problem is listed.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// A business rule refused the operation (for example "only draft orders can be placed").
    #[error("{0}")]
    Rule(String),
    /// The thing the operation needs does not exist.
    #[error("{kind} `{id}` was not found")]
    NotFound {
        /// What was looked for (`"Order"`).
        kind: &'static str,
        /// Its identity.
        id: String,
    },
    /// Loading or saving failed; not the domain's fault.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DomainError {
    /// A business-rule refusal with a message a user can act on.
    pub fn rule(message: impl Into<String>) -> Self {
        DomainError::Rule(message.into())
    }
}

/// A save refused because another unit of work wrote the aggregate first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("version conflict on {stream}: loaded at version {expected}, but it is now at version {actual}")]
pub struct VersionConflict {
    /// The aggregate.
    pub stream: StreamId,
    /// The version the unit of work loaded (0 when it added the aggregate).
    pub expected: u64,
    /// The version found in the store (0 when there is none).
    pub actual: u64,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Optimistic concurrency: the aggregate changed since it was loaded.
    #[error(transparent)]
    Conflict(#[from] VersionConflict),
    /// Stored data does not read back as what it should be.
    #[error("stored data of {stream} at position {position} is unreadable: {reason}")]
    Corrupt {
        /// The aggregate or stream the data belongs to.
        stream: StreamId,
        /// The version of the record, or the sequence of the event.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// A value could not be written as JSON.
    #[error("{what} could not be serialized: {reason}")]
    Serialize {
        /// What was being written.
        what: String,
        /// serde's message.
        reason: String,
    },
    /// The handler already handled this message: the batch was not written.
    #[error("`{handler}` already handled message {message_id}")]
    AlreadyHandled {
        /// The handler.
        handler: String,
        /// The message.
        message_id: Uuid,
    },
    /// The storage backend failed (connection, disk, a lock held too long, …). The
    /// message names the driver's error (`the sqlite store failed: unable to open database
    /// file`), which is also the [source](std::error::Error::source).
    #[error("the {backend} store failed: {source}")]
    Backend {
        /// Which store (`"sqlite"`, `"postgres"`).
        backend: &'static str,
        /// The driver's error.
        #[source]
        source: DriverError,
    },
    /// The database's schema is not the one this build of protean works with: newer
    /// (written by a later protean), or older and not migrated yet (open it with
    /// migration, or run the store's `migrate`).
    #[error("the {backend} database has schema version {found}, and this protean works with version {supported}{}",
        if found < supported { ": migrate it first" } else { ": upgrade protean" })]
    Schema {
        /// Which store.
        backend: &'static str,
        /// The version found in the database (0: no schema at all).
        found: SchemaVersion,
        /// The version this build works with.
        supported: SchemaVersion,
    },
    /// The store cannot do what was asked in this build or configuration; the message
    /// says what to change.
    #[error("{0}")]
    Unsupported(String),
    /// A projection row does not read as the projection's type. Most often the
    /// projection's shape changed with a new `#[projection(version = ..)]` whose rebuild
    /// has not switched yet: the copy serving reads still holds rows of the old version
    /// ([`outdated`](StoreError::UnreadableRow::outdated) says so, and the message what
    /// to do).
    #[error("row `{key}` of projection `{projection}` (row version {version}) does not read as `{projection}`: {reason}{}",
        outdated.as_ref().map(|o| o.advice(projection)).unwrap_or_default())]
    UnreadableRow {
        /// The projection.
        projection: String,
        /// The row's key.
        key: String,
        /// The row's version: how many times the row was written (not a log position).
        version: u64,
        /// serde's message.
        reason: String,
        /// Set when the copy the row was read from was built by another version of the
        /// projection than the code declares: a rebuild is pending or under way.
        outdated: Option<OutdatedCopy>,
    },
    /// The store was closed (its `close` was called): it takes no more work. Open or
    /// connect a store again to go on.
    #[error("the {backend} store is closed: open it again to use it")]
    Closed {
        /// Which store (`"sqlite"`, `"postgres"`).
        backend: &'static str,
    },
    /// The URL given to [`connect`](crate::store::connect) names no store this build
    /// can open.
    #[error(transparent)]
    Url(#[from] UrlError),
}

/// A projection's copy serving reads, built by another version of the projection than
/// the code declares: until a rebuild to the declared version switches, its rows are in
/// the old version's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutdatedCopy {
    /// The version that built the copy serving reads.
    pub serving: u32,
    /// The version the code declares.
    pub declared: u32,
    /// Whether a rebuild to the declared version is under way.
    pub rebuilding: bool,
}

impl OutdatedCopy {
    /// What the message of [`StoreError::UnreadableRow`] adds: the window, and what to do.
    fn advice(&self, projection: &str) -> String {
        let OutdatedCopy { serving, declared, rebuilding } = *self;
        let what_to_do = if rebuilding {
            format!(
                "a rebuild to version {declared} is under way: wait for it to switch \
                 (`Domain::projection_status` shows how far it got)"
            )
        } else {
            format!(
                "no rebuild to version {declared} has started: run `Domain::rebuild_outdated` \
                 (delivery workers run it when they start) and let it finish"
            )
        };
        format!(
            "; the copy of `{projection}` serving reads was built by version {serving}, and this code declares \
             version {declared}: until a rebuild switches to a copy of version {declared}, rows of the old copy \
             that the new shape cannot read fail like this one; {what_to_do}"
        )
    }
}

/// Why [`connect`](crate::store::connect) cannot open the store a URL names. The
/// messages name the scheme only, never the rest of the URL (which may hold a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The scheme (the name before the first `:`) is not one protean knows.
    #[error("no store has the URL scheme `{scheme}:`; {}", supported_schemes())]
    UnknownScheme {
        /// The scheme, as written.
        scheme: String,
    },
    /// The scheme names a store this build was compiled without.
    #[error(
        "`{scheme}:` names the {store} store, which this build does not have: enable protean's `{feature}` feature"
    )]
    NotCompiled {
        /// The scheme, as written.
        scheme: String,
        /// The store it names (`"PostgreSQL"`).
        store: &'static str,
        /// The cargo feature of `protean` that adds it.
        feature: &'static str,
    },
    /// A `sqlite:` URL with no path after the scheme.
    #[error("`{url}` names no SQLite file: write a path after the scheme (`sqlite:app.db`), or `sqlite::memory:`")]
    NoPath {
        /// The URL, as written.
        url: String,
    },
    /// A `memory:` URL with something after the scheme, which the memory store does not take.
    #[error("the memory store takes nothing after `memory:` (found `{rest}`)")]
    MemoryWithPath {
        /// What followed the scheme.
        rest: String,
    },
}

/// The schemes [`connect`](crate::store::connect) takes in this build, and the feature
/// that adds each one it lacks.
fn supported_schemes() -> String {
    let mut known = vec!["`memory:`"];
    let mut missing = Vec::new();
    if cfg!(feature = "sqlite") {
        known.push("`sqlite:PATH` (or a bare path)");
    } else {
        missing.push("`sqlite:` with the `sqlite` feature");
    }
    if cfg!(feature = "postgres") {
        known.push("`postgres://…` (or `postgresql://…`)");
    } else {
        missing.push("`postgres://…` with the `postgres` feature");
    }
    let mut text = format!("this build opens {}", known.join(", "));
    if !missing.is_empty() {
        text.push_str(&format!("; protean also opens {}", missing.join(" and ")));
    }
    text
}

impl StoreError {
    /// A driver's error, kept as the source.
    pub fn backend(backend: &'static str, error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend { backend, source: DriverError(Arc::new(error)) }
    }
}

/// A storage driver's error (rusqlite's, sqlx's, I/O), shared so that [`StoreError`]
/// stays `Clone`. Two are equal when they are the same error.
#[derive(Debug, Clone)]
pub struct DriverError(Arc<dyn std::error::Error + Send + Sync>);

impl DriverError {
    /// The driver's error, to downcast (`error.get().downcast_ref::<rusqlite::Error>()`).
    pub fn get(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl PartialEq for DriverError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// The version of a store's schema: what `migrate` brings a database to, and what a
/// store opened without migrating requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SchemaVersion(pub u32);

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl StoreError {
    /// Stored data that does not read back.
    pub fn corrupt(stream: &StreamId, position: u64, reason: impl Into<String>) -> Self {
        StoreError::Corrupt { stream: stream.clone(), position, reason: reason.into() }
    }
}
