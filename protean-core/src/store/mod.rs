//! Where aggregates and their events are kept: the [`Store`] trait every backend
//! implements, and [`MemoryStore`], the in-memory one.
//!
//! A store keeps one record per aggregate (its whole cluster as JSON, with a version)
//! and the events each commit raised. A unit of work's [`Batch`] is atomic: every record
//! is written only when its version is still the one the unit of work loaded, the
//! events are appended in the same step (the transactional outbox: an event is stored
//! if and only if the change that raised it is), and the message the unit handled is
//! recorded with it (so a redelivered event is not handled twice); or nothing is
//! written at all.
//!
//! Events start undelivered. The engine delivers them after the commit and marks them
//! delivered once every handler has succeeded; what a process did not deliver (it
//! stopped, a handler failed) is claimed again by
//! [`Domain::deliver_pending`](crate::runtime::Domain::deliver_pending).

mod connect;
pub(crate) mod envelope;
mod memory;
mod outbox;
pub mod ports;
#[cfg(feature = "postgres")]
mod postgres;
mod projection;
mod replay;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use uuid::Uuid;

pub use connect::connect;
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
pub use outbox::{
    FailedDelivery, FailureCounts, FailureQuery, FailureStatus, FailureUpdate, HandlerState, OutboxStatus,
};
pub use projection::{
    BuildState, Cancel, FilterOp, Logged, ProjectionSpec, ProjectionState, Row, RowChange, RowFilter, RowOrder,
    RowQuery, RowRead, RowVersion, Scheduled,
};
pub use replay::{ReplayEvents, ReplayIter, StoredEvent};
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

/// An aggregate's stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The version of the last commit that wrote it: the stored version plus each
    /// commit's [`Commit::advance`] (1 after the first commit of a state-stored aggregate).
    pub version: u64,
    /// The aggregate, root, entities and value objects together, as JSON (shared, so
    /// handing out a copy does not copy the text).
    pub state: std::sync::Arc<str>,
}

/// What a unit of work writes for one aggregate: its state and the events it raised.
#[derive(Debug, Clone)]
pub struct Commit {
    /// The aggregate's stream: its type and identity.
    pub stream: StreamId,
    /// The version the unit of work loaded (0 for an aggregate it added).
    pub expected_version: u64,
    /// How far the aggregate's version moves with this commit: 1 for a state-stored
    /// aggregate (one per commit), the number of events for an event-sourced one (so
    /// its version is the sequence of its last event). The store writes the stored
    /// version plus `advance`.
    pub advance: u64,
    /// The new state as JSON, or `None` to remove the aggregate.
    pub state: Option<std::sync::Arc<str>>,
    /// The events raised, in order; the store assigns their sequence numbers.
    pub events: Vec<Envelope>,
    /// A snapshot of an event-sourced aggregate as of this commit's last event, kept
    /// so that loading replays only the events after it.
    pub snapshot: Option<std::sync::Arc<str>>,
}

/// A snapshot of an event-sourced aggregate: its state as of one event of its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The sequence of the last event it reflects.
    pub sequence: u64,
    /// The aggregate as JSON.
    pub state: std::sync::Arc<str>,
}

/// Everything one unit of work writes, in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The aggregates written, with their events.
    pub commits: Vec<Commit>,
    /// The message the unit of work handled, recorded in the same transaction; `None`
    /// for a command or application code.
    pub handled: Option<Handled>,
    /// Events to mark delivered in the same transaction: the one handled here when its
    /// handler is its only one, and new events that no handler takes.
    pub delivered: Vec<Uuid>,
    /// Changes to projection rows, applied by the rule described on [`RowChange`]'s module
    /// (skipped while a rebuild runs or when a rebuild already covered their event;
    /// otherwise checked against each row's version).
    pub rows: Vec<RowChange>,
    /// The stored event the row changes come from (an async projector's), whose log
    /// position decides whether a rebuild already covered them; `None` when they come
    /// from this batch's own events (inline projectors).
    pub rows_from: Option<Uuid>,
    /// Commands a process manager sends or schedules, kept until a worker fires them.
    pub schedule: Vec<Scheduled>,
    /// Pending deadlines to drop.
    pub cancel: Vec<Cancel>,
    /// What the unit of work read from projections and decided on: checked inside the
    /// commit's transaction, before any row change is applied; a read that no longer
    /// holds refuses the whole batch with [`StoreError::Conflict`] (see [`RowRead`]).
    /// Empty for a unit that read nothing it decides on, which costs nothing.
    pub reads: Vec<RowRead>,
}

/// A message a handler has handled: recorded once, so that handling it again is refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handled {
    /// The handler (`"InventoryReactions::reserve"`), or for a command the command's
    /// type name (`"Order.PlaceOrder"`).
    pub handler: std::borrow::Cow<'static, str>,
    /// The event's id, or the command's.
    pub message_id: Uuid,
    /// What handling it produced, kept to be handed back when the same message comes
    /// again (a command's reply, as JSON); `None` for an event.
    pub outcome: Option<std::sync::Arc<str>>,
}

impl Handled {
    /// An event handled by `handler`.
    pub fn event(handler: impl Into<std::borrow::Cow<'static, str>>, message_id: Uuid) -> Self {
        Handled { handler: handler.into(), message_id, outcome: None }
    }
}

/// What a successful [`Commit`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// The aggregate written.
    pub stream: StreamId,
    /// Its new version.
    pub version: u64,
    /// The events appended, with their sequence numbers.
    pub events: Vec<Envelope>,
}
