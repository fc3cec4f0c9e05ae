//! What a field of a domain object may hold, and how the model describes it.
//!
//! Value objects, commands and events hold [`ValueField`]s. Aggregates and entities
//! hold [`AggregateField`]s: every value field, plus `HasMany`/`HasOne` of their own
//! entities. Any other type fails to compile with a note saying what to use instead.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::association::{HasMany, HasOne};
use crate::model::element::{Choices, ClusterEvents, DomainElement, ElementKind, RaisedEvent};
use crate::model::identity::{Identifiable, Identifier};
use crate::model::validation::{Path, Phase, Validate, ValidationError};

/// How the model describes a field's type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FieldShape {
    /// A number, text, flag or similar scalar.
    Primitive {
        /// Its Rust name (`"i64"`, `"String"`).
        name: &'static str,
    },
    /// A reference to an aggregate or entity by identity.
    Identifier {
        /// The referenced type's name.
        target: &'static str,
    },
    /// An embedded value object.
    ValueObject {
        /// Its name.
        name: &'static str,
    },
    /// An enum value object: one of a closed set.
    Choices {
        /// The enum's name.
        name: &'static str,
        /// Its choices.
        choices: &'static [&'static str],
    },
    /// Entities of the enclosing cluster, keyed by identity.
    HasMany {
        /// The entity's name.
        entity: &'static str,
    },
    /// At most one entity of the enclosing cluster.
    HasOne {
        /// The entity's name.
        entity: &'static str,
    },
    /// An optional value.
    Optional {
        /// What it holds when present.
        of: Box<FieldShape>,
    },
    /// A list of values.
    List {
        /// What each element is.
        of: Box<FieldShape>,
    },
}

impl FieldShape {
    /// The element this shape names, with the relation: `("Customer", Identifier)`.
    pub fn target(&self) -> Option<(&'static str, &FieldShape)> {
        match self {
            FieldShape::Primitive { .. } => None,
            FieldShape::Identifier { target } => Some((target, self)),
            FieldShape::ValueObject { name } | FieldShape::Choices { name, .. } => Some((name, self)),
            FieldShape::HasMany { entity } | FieldShape::HasOne { entity } => Some((entity, self)),
            FieldShape::Optional { of } | FieldShape::List { of } => of.target(),
        }
    }

    /// A short rendering: `Option<Vec<Money>>`, `HasMany<OrderItem>`.
    pub fn render(&self) -> String {
        match self {
            FieldShape::Primitive { name } => (*name).to_string(),
            FieldShape::Identifier { target } => format!("Identifier<{target}>"),
            FieldShape::ValueObject { name } | FieldShape::Choices { name, .. } => (*name).to_string(),
            FieldShape::HasMany { entity } => format!("HasMany<{entity}>"),
            FieldShape::HasOne { entity } => format!("HasOne<{entity}>"),
            FieldShape::Optional { of } => format!("Option<{}>", of.render()),
            FieldShape::List { of } => format!("Vec<{}>", of.render()),
        }
    }
}

/// A type that a value object, command or event can hold: a value.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a value",
    label = "not a value",
    note = "values are numbers, `String`, `bool`, `char`, `Uuid`, `SystemTime`, `Identifier<T>`, `#[value_object]` types, and `Option`/`Vec` of them; value objects, commands and events hold only values",
    note = "an entity is held only by its own aggregate, in a `HasMany<..>`/`HasOne<..>` field: never in a `Vec`, an `Option`, a value object, a command or an event",
    note = "another aggregate is referenced by identity: `Identifier<ThatAggregate>`; for your own value type, declare it `#[value_object]`"
)]
pub trait ValueField: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// How the model describes this type.
    fn shape() -> FieldShape;

    /// Validates nested value objects; scalars have nothing to check.
    fn validate_value(&self, _path: &Path<'_>, _errors: &mut ValidationError) {}
}

macro_rules! primitive_fields {
    ($($t:ty),* $(,)?) => {$(
        impl ValueField for $t {
            fn shape() -> FieldShape {
                FieldShape::Primitive { name: stringify!($t) }
            }
        }
    )*};
}
primitive_fields!(
    bool,
    char,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    String,
    uuid::Uuid,
    std::time::SystemTime
);

/// Floats must be finite: JSON has no NaN or infinity (serde writes them as `null`,
/// which then never reads back as a number), so they are refused where they come in.
macro_rules! float_fields {
    ($($t:ty),*) => {$(
        impl ValueField for $t {
            fn shape() -> FieldShape {
                FieldShape::Primitive { name: stringify!($t) }
            }
            fn validate_value(&self, path: &Path<'_>, errors: &mut ValidationError) {
                if !self.is_finite() {
                    errors.add(path.to_string(), format!("must be a finite number, not {self}"));
                }
            }
        }
    )*};
}
float_fields!(f32, f64);

impl<T: Identifiable> ValueField for Identifier<T> {
    fn shape() -> FieldShape {
        FieldShape::Identifier { target: T::IDENTIFIED_NAME }
    }
}

impl<V: ValueField> ValueField for Option<V> {
    fn shape() -> FieldShape {
        FieldShape::Optional { of: Box::new(V::shape()) }
    }
    fn validate_value(&self, path: &Path<'_>, errors: &mut ValidationError) {
        if let Some(v) = self {
            v.validate_value(path, errors);
        }
    }
}

impl<V: ValueField> ValueField for Vec<V> {
    fn shape() -> FieldShape {
        FieldShape::List { of: Box::new(V::shape()) }
    }
    fn validate_value(&self, path: &Path<'_>, errors: &mut ValidationError) {
        for (i, v) in self.iter().enumerate() {
            v.validate_value(&path.index(i), errors);
        }
    }
}

/// The shape of a `#[value_object]` type (used by the macro's `ValueField` impl).
pub fn value_object_shape<V: DomainElement>() -> FieldShape {
    FieldShape::ValueObject { name: V::NAME }
}

/// The shape of an enum `#[value_object]` (used by the macro's `ValueField` impl).
pub fn choices_shape<V: Choices>() -> FieldShape {
    FieldShape::Choices { name: V::NAME, choices: V::CHOICES }
}

/// A type that an aggregate or entity `C` can hold.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a field of `{C}`",
    label = "not a value or an entity of this aggregate",
    note = "another aggregate is referenced by identity: `Identifier<ThatAggregate>`",
    note = "an entity of this aggregate is held in `HasMany<ThatEntity>` or `HasOne<ThatEntity>`",
    note = "values are numbers, `String`, `bool`, `char`, `Identifier<T>`, `#[value_object]` types, and `Option`/`Vec` of them"
)]
pub trait AggregateField<C>: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Evaluated for every field of an aggregate or entity: an aggregate root or an
    /// entity used as a plain field fails here, with a message naming the fix.
    #[doc(hidden)]
    const ALLOWED: () = ();
    /// How the model describes this type.
    fn shape() -> FieldShape;
    /// Field options of nested objects.
    fn validate_field(&self, path: &Path<'_>, errors: &mut ValidationError);
    /// Invariants of held entities.
    fn check_field_invariants(&self, _phase: Phase, _path: &Path<'_>, _errors: &mut ValidationError) {}
    /// Whether held entities have pre-invariants.
    const HAS_PRE_INVARIANTS: bool = false;
    /// The pre-invariants of each held entity that changed from `before` (matched by
    /// identity), evaluated on the entity as it was in `before`.
    fn check_changed_pre(&self, _before: &Self, _path: &Path<'_>, _errors: &mut ValidationError) {}
    /// Events raised by held entities (see [`ClusterEvents`]).
    fn raised_in<'a>(&'a self, _out: &mut Vec<&'a RaisedEvent>) {}
    /// Moves the events raised by held entities into `out`.
    fn take_raised_in(&mut self, _out: &mut Vec<RaisedEvent>) {}
}

impl<C, V: ValueField> AggregateField<C> for V {
    fn shape() -> FieldShape {
        V::shape()
    }
    fn validate_field(&self, path: &Path<'_>, errors: &mut ValidationError) {
        self.validate_value(path, errors)
    }
}

/// What `HasMany`/`HasOne` need from what they hold. Aggregate roots satisfy it too,
/// so that holding one is reported by the macro's own check, which names the fix.
/// Hidden from the documentation: its blanket impl would be listed on every aggregate's
/// and entity's page, under a name a user's type may well have. (Not `ValueField` and
/// `AggregateField`, which the compiler's errors name: hidden, they would be named there
/// by their full path.)
#[doc(hidden)]
pub trait Member:
    Identifiable + Validate + ClusterEvents + Clone + Debug + Serialize + DeserializeOwned + Send + Sync
{
}
impl<T> Member for T where
    T: Identifiable + Validate + ClusterEvents + Clone + Debug + Serialize + DeserializeOwned + Send + Sync
{
}

/// Whether an entity changed: its stored form differs. (Entities compare by identity,
/// so `==` cannot tell.)
fn changed<T: Serialize>(before: &T, after: &T) -> bool {
    match (serde_json::to_value(before), serde_json::to_value(after)) {
        (Ok(before), Ok(after)) => before != after,
        _ => true,
    }
}

/// [`AggregateField::check_changed_pre`] for one entity present before and after.
fn check_entity_pre<T: Member>(before: &T, after: &T, path: &Path<'_>, errors: &mut ValidationError) {
    if T::HAS_PRE_INVARIANTS && changed(before, after) {
        after.check_pre_of_change(before, path, errors);
    }
}

impl<C: 'static, T: Member> AggregateField<C> for HasMany<T> {
    const HAS_PRE_INVARIANTS: bool = T::HAS_PRE_INVARIANTS;
    fn shape() -> FieldShape {
        FieldShape::HasMany { entity: T::IDENTIFIED_NAME }
    }
    fn validate_field(&self, path: &Path<'_>, errors: &mut ValidationError) {
        let mut seen = std::collections::HashSet::with_capacity(self.len());
        for (i, entity) in self.iter().enumerate() {
            let at = path.index(i);
            if !seen.insert(entity.id()) {
                errors.add(at.to_string(), format!("duplicate identity `{}` in this list", entity.id()));
            }
            entity.validate_fields(&at, errors);
        }
    }
    fn check_field_invariants(&self, phase: Phase, path: &Path<'_>, errors: &mut ValidationError) {
        for (i, entity) in self.iter().enumerate() {
            entity.check_invariants(phase, &path.index(i), errors);
        }
    }
    fn check_changed_pre(&self, before: &Self, path: &Path<'_>, errors: &mut ValidationError) {
        if !T::HAS_PRE_INVARIANTS {
            return;
        }
        for (i, entity) in self.iter().enumerate() {
            if let Some(was) = before.get(entity.id()) {
                check_entity_pre(was, entity, &path.index(i), errors);
            }
        }
    }
    fn raised_in<'a>(&'a self, out: &mut Vec<&'a RaisedEvent>) {
        for entity in self.iter() {
            entity.raised_in(out);
        }
    }
    fn take_raised_in(&mut self, out: &mut Vec<RaisedEvent>) {
        for entity in self.iter_mut() {
            entity.take_raised_in(out);
        }
    }
}

impl<C: 'static, T: Member> AggregateField<C> for HasOne<T> {
    const HAS_PRE_INVARIANTS: bool = T::HAS_PRE_INVARIANTS;
    fn shape() -> FieldShape {
        FieldShape::HasOne { entity: T::IDENTIFIED_NAME }
    }
    fn validate_field(&self, path: &Path<'_>, errors: &mut ValidationError) {
        if let Some(entity) = self.get() {
            entity.validate_fields(path, errors);
        }
    }
    fn check_field_invariants(&self, phase: Phase, path: &Path<'_>, errors: &mut ValidationError) {
        if let Some(entity) = self.get() {
            entity.check_invariants(phase, path, errors);
        }
    }
    fn check_changed_pre(&self, before: &Self, path: &Path<'_>, errors: &mut ValidationError) {
        if let (Some(was), Some(entity)) = (before.get(), self.get()) {
            if was.id() == entity.id() {
                check_entity_pre(was, entity, path, errors);
            }
        }
    }
    fn raised_in<'a>(&'a self, out: &mut Vec<&'a RaisedEvent>) {
        if let Some(entity) = self.get() {
            entity.raised_in(out);
        }
    }
    fn take_raised_in(&mut self, out: &mut Vec<RaisedEvent>) {
        if let Some(entity) = self.get_mut() {
            entity.take_raised_in(out);
        }
    }
}

/// Whether the kind may be named by an entity's `part_of`.
pub const fn can_own_entities(kind: ElementKind) -> bool {
    matches!(kind, ElementKind::Aggregate | ElementKind::Entity)
}
