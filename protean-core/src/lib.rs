//! Runtime of [protean](https://docs.rs/protean): the types and traits that the
//! `#[aggregate]`, `#[entity]`, `#[value_object]`, `#[command]` and `#[event]` macros
//! build on.
//!
//! Users depend on the `protean` facade crate and write `use protean::prelude::*;`;
//! this crate is what it re-exports. The modules:
//!
//! * [`identity`]: [`Identifier<T>`](identity::Identifier), typed identities.
//! * [`association`]: [`HasMany`](association::HasMany) and [`HasOne`](association::HasOne), entities inside one cluster.
//! * [`element`]: the kinds of element and the boundary traits ([`EventOf`](element::EventOf), …).
//! * [`field`]: what a field may hold, checked by the compiler.
//! * [`validation`]: field options, invariants and [`ValidationError`](validation::ValidationError).
//! * [`registry`], [`model`], [`export`]: the domain registry, its checks and its exports.
//! * [`handler`], [`context`], [`engine`]: handlers, the unit of work, and the engine
//!   behind [`Domain::process`](model::Domain::process).
//! * [`envelope`], [`store`]: events in transit, and where aggregates and events are kept.
//! * [`testing`]: given / when / then scenarios.
//!
//! ```
//! use protean_core::validation::ValidationError;
//! let mut errors = ValidationError::default();
//! errors.add("items[0].quantity", "must be at least 1");
//! assert_eq!(errors.to_string(), "validation failed: items[0].quantity: must be at least 1;");
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod association;
pub mod context;
pub mod element;
pub mod engine;
pub mod envelope;
pub mod error;
pub mod export;
pub mod field;
pub mod handler;
pub mod identity;
mod json;
pub mod model;
pub mod registry;
pub mod sourcing;
pub mod store;
pub mod testing;
pub mod validation;

/// Paths used by the code the macros generate. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use crate::association::{HasMany, HasOne};
    pub use crate::context::Context;
    pub use crate::element::{
        const_str_eq, Accepts, Aggregate, AggregateMeta, Choices, ClusterEvents, Command, CommandOf, Contains,
        DomainElement, ElementKind, Entity, EntityEvents, EntityOf, Event, EventOf, NoCluster, NoReply, RaisedEvent,
        Raises, Returns, StateStored, ValueObject,
    };
    pub use crate::error::DomainError;
    pub use crate::field::{
        can_own_entities, choices_shape, value_object_shape, AggregateField, FieldShape, ValueField,
    };
    pub use crate::handler::{
        assert_command_of, assert_context_of, assert_event, no_reply, reply, run_command, run_event, HandleCommand,
        HandleEvent, HandlerDescriptor, MessageKind, Route,
    };
    pub use crate::identity::{Identifiable, Identifier, IdentityOf};
    pub use crate::registry::{ElementDescriptor, FieldDescriptor, FieldOptions, InvariantDescriptor};
    pub use crate::sourcing::{
        apply_raised, apply_raised_event, apply_stored, assert_event_of, ApplierDescriptor, Apply,
    };
    pub use crate::store::BoxFuture;
    pub use crate::validation::{
        check_length, check_max, check_max_length, check_min, check_min_length, record_invariant, InvariantResult,
        Limit, Path, Phase, Validate, ValidationError,
    };
    pub use inventory;
    pub use serde;
    pub use serde_json;

    /// Records "is required" for a field the builder was not given.
    pub fn missing(errors: &mut ValidationError, field: &str) {
        errors.add(field, "is required");
    }
}
