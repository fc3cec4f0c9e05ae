//! Where aggregates and their events are kept: [`connect`] a store by URL, or open one
//! of the backends, [`MemoryStore`], `SqliteStore` (feature `sqlite`, the default) and
//! `PostgresStore` (feature `postgres`); what they keep ([`Envelope`], [`FailedDelivery`],
//! ...) and how they fail ([`StoreError`]).
//!
//! Every backend implements the [`ports`], one small trait per concern, whose sum is
//! [`Store`]; what only an implementer of a store needs (a unit of work's [`Batch`], row
//! changes, claims) is in [`ports`] as well. What each store guarantees, and how it keeps
//! it, is in `docs/storage.md`.

mod connect;
pub(crate) mod envelope;
mod memory;
pub mod ports;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use connect::{connect, schema_status, SchemaStatus};
pub use memory::MemoryStore;
pub use ports::{Deliveries, Outbox, Projections, Records, Schedule, Store};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{PostgresOptions, PostgresStore, SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::{Durability, SqliteOptions, SqliteStore, SCHEMA_VERSION as SQLITE_SCHEMA_VERSION};

pub use crate::model::error::{DriverError, OutdatedCopy, SchemaVersion, StoreError, UrlError, VersionConflict};
pub use envelope::{Cause, Envelope, StreamId};
pub use ports::{
    FailedDelivery, FailureCounts, FailureQuery, FailureStatus, FilterOp, OutboxStatus, ProjectionState, Scheduled,
    ScheduledCounts, WorkerBeat,
};
// What only an implementer of a store needs, at its old paths: documented in `ports`.
#[doc(hidden)]
pub use ports::{
    Batch, BuildState, Cancel, Commit, Committed, FailureUpdate, Handled, HandlerState, Logged, ProjectionSpec, Record,
    ReplayEvents, ReplayIter, Row, RowChange, RowFilter, RowOrder, RowQuery, RowRead, RowVersion, Snapshot,
    StoredEvent,
};
/// The time type of [`Envelope::recorded_at`], from the `time` crate.
pub use time::OffsetDateTime;

/// The longest lease a claim takes (longer ones are cut to it): a year.
pub const MAX_LEASE: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The rule every store's claim follows, event by event in log order over the
/// undelivered events: an event whose lease is still held is not taken, and blocks the
/// later events of its stream; so does any event of an already blocked stream. So each
/// stream is handed out in order, whoever holds its earlier events.
#[derive(Debug)]
pub(crate) struct ClaimOrder<K> {
    blocked: foldhash::HashSet<K>,
}

impl<K: std::hash::Hash + Eq> ClaimOrder<K> {
    pub(crate) fn new() -> Self {
        ClaimOrder { blocked: foldhash::HashSet::default() }
    }

    /// Whether to claim the next undelivered event, of stream `stream`, whose lease is
    /// still held by someone (`leased`).
    pub(crate) fn take(&mut self, stream: K, leased: bool) -> bool {
        if self.blocked.contains(&stream) {
            return false;
        }
        if leased {
            self.blocked.insert(stream);
            return false;
        }
        true
    }
}

/// A boxed, sendable future: what the object-safe async traits here return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
