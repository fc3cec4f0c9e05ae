//! Runtime of [protean](https://docs.rs/protean): the types and traits that the
//! `#[aggregate]`, `#[entity]`, `#[value_object]`, `#[command]`, `#[event]`,
//! `#[handler]`, `#[projection]`, `#[projector]` and `#[process_manager]` macros build on.
//!
//! Users depend on the `protean` facade crate and write `use protean::prelude::*;`;
//! this crate is what it re-exports. Its modules are layers, each depending only on
//! the ones above it in this list (docs/architecture.md draws them):
//!
//! * [`model`]: the building blocks — element kinds and boundary traits
//!   ([`EventOf`](model::EventOf), …), [`Identifier<T>`](model::Identifier),
//!   [`HasMany`](model::HasMany)/[`HasOne`](model::HasOne), field shapes, validation
//!   ([`ValidationError`](model::ValidationError)) and the errors.
//! * [`registry`]: what the macros register, and the checked [`Model`](registry::Model)
//!   with its aggregate clusters; [`export`]: the model as JSON, Mermaid and DOT.
//! * [`store`]: the [`Store`](store::Store) port, [`Envelope`](store::Envelope), and the
//!   backends (memory; SQLite and PostgreSQL behind the `sqlite` and `postgres` features).
//! * [`runtime`]: the [`Domain`](runtime::Domain), the unit of work
//!   ([`Context`](runtime::Context)), handlers, delivery and event-sourcing replay.
//! * [`testing`]: given / when / then scenarios.
//!
//! ```
//! # extern crate protean_core as protean;
//! use protean::model::ValidationError;
//! let mut errors = ValidationError::default();
//! errors.add("items[0].quantity", "must be at least 1");
//! assert_eq!(errors.to_string(), "validation failed: items[0].quantity: must be at least 1;");
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod cli;
pub mod contract;
pub mod export;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod json;
pub mod model;
pub mod registry;
pub mod runtime;
pub mod store;
pub mod testing;

/// Paths used by the code the macros generate. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use crate::model::association::{HasMany, HasOne};
    pub use crate::model::element::{
        const_str_eq, Accepts, Aggregate, AggregateMeta, Apply, Choices, ClusterEvents, Command, CommandOf, Contains,
        DomainElement, ElementKind, Entity, EntityEvents, EntityOf, Event, EventOf, NoCluster, NoReply, RaisedEvent,
        Raises, Replayer, Returns, StateStored, ValueObject,
    };
    pub use crate::model::error::DomainError;
    pub use crate::model::field::{
        can_own_entities, choices_shape, value_object_shape, AggregateField, FieldShape, ValueField,
    };
    pub use crate::model::identity::{Identifiable, Identifier, IdentityOf};
    pub use crate::model::validation::{
        check_length, check_max, check_max_length, check_min, check_min_length, record_invariant, InvariantResult,
        Limit, Path, Phase, Validate, ValidationError,
    };
    pub use crate::registry::{
        ContainerSerde, ElementDescriptor, FieldDescriptor, FieldOptions, HandlerInfo, HandlerRole,
        InvariantDescriptor, MessageKind, Presence, Upcasts,
    };
    pub use crate::runtime::context::Context;
    pub use crate::runtime::engine::{HandlerDescriptor, ProjectorRoute, Route};
    pub use crate::runtime::handler::{
        assert_command_of, assert_context_of, assert_event, no_reply, reply, run_command, run_event, HandleCommand,
        HandleEvent, Handles,
    };
    pub use crate::runtime::process_manager::{
        assert_flow_of, fire_scheduled, lacks_correlation_field, run_flow_start, run_flow_step, text_concat, text_len,
        text_str, ContinueFlow, FieldNames, Flow, ProcessManager, StartFlow, REJECTED_CORRELATE,
    };
    pub use crate::runtime::projection::{assert_rows_of, project, FedBy, Project, Projection, Rows};
    pub use crate::runtime::query::{Field, Indexable};
    pub use crate::runtime::read_model::{ProjectionKey, ReadModel};
    pub use crate::runtime::rows::RowSet;
    pub use crate::runtime::sourcing::{
        apply_raised, apply_raised_event, apply_stored, assert_event_of, ApplierDescriptor,
    };
    pub use crate::store::BoxFuture;
    pub use inventory;
    pub use serde;
    pub use serde_json;

    /// Records "is required" for a field the builder was not given.
    pub fn missing(errors: &mut ValidationError, field: &str) {
        errors.add(field, "is required");
    }
}
