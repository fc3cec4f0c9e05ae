//! The domain model's building blocks: the kinds of element and the boundary traits the
//! macros implement ([`Aggregate`], [`Entity`], [`EventOf`], …), typed identities,
//! associations inside a cluster, what a field may hold, validation, and the errors of
//! the model and of its storage port.
//!
//! The bottom layer: it depends on nothing else in the crate.

pub(crate) mod association;
pub(crate) mod element;
pub(crate) mod error;
pub(crate) mod field;
pub(crate) mod identity;
pub(crate) mod validation;

pub use association::{HasMany, HasOne};
pub use element::{
    Accepts, Aggregate, Apply, Choices, Command, CommandOf, Contains, DomainElement, ElementKind, Entity, EntityOf,
    Event, EventOf, NoCluster, RaisedEvent, Raises, StateStored, ValueObject,
};
pub use error::{DomainError, DriverError, OutdatedCopy, SchemaVersion, StoreError, VersionConflict};
pub use field::FieldShape;
/// What a field may hold, checked by the compiler (their names appear in its errors).
#[doc(hidden)]
pub use field::{AggregateField, Member, ValueField};
#[doc(hidden)]
pub use identity::IdentityOf;
pub use identity::{Identifiable, Identifier, IdentifierError, StreamId, MAX_IDENTIFIER_LEN};
pub use validation::{FieldErrors, InvariantResult, Limit, Measured, Numeric, Path, Phase, Validate, ValidationError};
