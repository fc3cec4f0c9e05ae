//! The ports a store implements, one small trait per concern, and [`Store`], their sum.
//!
//! | port | what it keeps |
//! |---|---|
//! | [`Records`] | aggregates' records, event streams, snapshots, the positioned log; schema and closing |
//! | [`Outbox`] | undelivered events: claims with leases, renewals, releases, delivered marks |
//! | [`Deliveries`] | handled records, failed deliveries, dead letters, events held behind them |
//! | [`Projections`] | projection rows and queries, blue/green rebuilds, read models by key |
//! | [`Schedule`] | commands process managers send or schedule, until a worker fires them |
//!
//! A store that wraps another (metrics, tracing, fault injection) writes by hand only the
//! methods it changes and forwards the others with [`forward_ports!`](crate::forward_ports).
//!
//! Every backend has one file per port, of the same name (`store/memory/records.rs`,
//! `store/sqlite/records.rs`, `store/postgres/records.rs`, ...), holding exactly its
//! `impl`. No method has a default: a backend, or a wrapper around one, that leaves a
//! method out does not compile.
//!
//! Code that holds an `Arc<dyn Store>` or an `S: Store` calls every port's methods with
//! `Store` alone in scope; code that calls them on a concrete store
//! (`MemoryStore::load`) imports the port, or `protean::prelude::*`, which brings every
//! port into scope without naming them.

mod arc;
mod deliveries;
mod forward;
mod outbox;
mod projections;
mod records;
mod replay;
mod schedule;

pub use deliveries::{Deliveries, FailedDelivery, FailureQuery, FailureStatus, FailureUpdate, HandlerState};
pub use outbox::{FailureCounts, Outbox, OutboxStatus, WorkerBeat};
pub(crate) use projections::check_reads;
pub use projections::{
    BuildState, FilterOp, Logged, ProjectionSpec, ProjectionState, Projections, Row, RowChange, RowFilter, RowOrder,
    RowQuery, RowRead, RowVersion,
};
pub use records::{Batch, Commit, Committed, Handled, Record, Records, Snapshot};
pub use replay::{ReplayEvents, ReplayIter, StoredEvent};
pub use schedule::{Cancel, Schedule, Scheduled, ScheduledCounts};

pub use super::{BoxFuture, Cause, Envelope, OffsetDateTime, StoreError, StreamId, VersionConflict};
/// What [`Outbox::outbox_signal`] hands out, from tokio.
#[doc(no_inline)]
pub use tokio::sync::Notify;
/// Event, command and scheduled-command ids.
#[doc(no_inline)]
pub use uuid::Uuid;

/// A place to keep aggregates, their events and read models: every port together.
///
/// Implemented for every type that implements all five ports, so a backend implements
/// the ports and is a `Store`; `Arc<dyn Store>` is what the runtime holds (hand one to
/// [`DomainBuilder::shared_store`](crate::runtime::DomainBuilder::shared_store) to share a
/// store). An `Arc` of a store is a store too, so a wrapper may hold a shared store and
/// forward to it:
///
/// ```
/// # extern crate protean_core as protean;
/// use std::sync::Arc;
///
/// use protean::forward_ports;
/// use protean::store::{MemoryStore, Store};
///
/// /// Forwards everything to a store shared with other code.
/// struct Shared(Arc<dyn Store>);
///
/// forward_ports!(impl for Shared, to 0: Records, Outbox, Deliveries, Projections, Schedule);
///
/// let shared: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// let wrapper: &dyn Store = &Shared(Arc::clone(&shared));
/// # let _ = wrapper;
/// ```
pub trait Store: Records + Outbox + Deliveries + Projections + Schedule {}

impl<S: Records + Outbox + Deliveries + Projections + Schedule> Store for S {}
