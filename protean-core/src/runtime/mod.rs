//! The runtime: the [`Domain`] an application builds and calls, the unit of work
//! ([`Context`]) handlers run in, the engine that routes commands and delivers events,
//! and event sourcing's replay.
//!
//! Depends on [`model`](crate::model), [`registry`](crate::registry) and
//! [`store`](crate::store); nothing below it depends on it.

mod builder;
pub(crate) mod context;
mod delivery;
mod domain;
pub(crate) mod engine;
pub(crate) mod handler;
mod health;
pub(crate) mod idempotency;
pub(crate) mod metrics;
pub(crate) mod outcome;
mod policy;
pub(crate) mod process_manager;
pub(crate) mod projection;
pub(crate) mod query;
pub(crate) mod read_model;
pub(crate) mod rows;
pub(crate) mod sourcing;
mod trace;
pub(crate) mod views;
mod workers;

pub use builder::{BuildError, DomainBuilder};
pub use context::{ChangedBy, Context, ContextOf, Opened, SameAggregate};
pub use domain::Domain;
pub use handler::Handles;
#[allow(deprecated)]
pub use health::Replayed;
pub use health::{DeliveryStatus, HandlerHealth, Redelivered};
pub use outcome::{Delivered, DeliveryFailure, ProcessError, Processed, QueryError};
pub use policy::{DeliveryMode, RetryPolicy, WhenDead};
pub use process_manager::{Fired, Flow, FlowOf, LoadableInFlow, ProcessManager};
pub use projection::{FedBy, LoadableInProjector, Projection, Rows, RowsOf};
pub use query::{Condition, Field, Indexable, OrderField, Page, Query, QueryFailure, QueryValue, DEFAULT_QUERY_LIMIT};
pub use read_model::{AsKey, ProjectionKey, ReadModel};
pub use trace::{Trace, TraceCommand, TraceEvent};
pub use views::{ProjectionStatus, Rebuild, RebuildEnd, RebuildPlan, RebuildProgress, RebuildReport};
pub use workers::{NoRuntime, WorkerConfig, WorkerHandle, WorkerReport, Workers};
