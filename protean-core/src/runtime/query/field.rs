//! What a query filters and orders on: the [`Field`] constants `#[projection]` generates,
//! the [`Condition`]s they make, and the values they compare with.

use std::marker::PhantomData;

use serde::Serialize;

use super::finite::{Check, NotFinite};
use crate::model::identity::Identifier;
use crate::runtime::outcome::QueryError;
use crate::runtime::projection::Projection;
use crate::store::FilterOp;

/// A type an `#[index]` field may have: one that serde writes as a JSON string, number or
/// boolean (or, in an `Option`, null), which every store indexes and compares.
///
/// Implemented for `bool`, `char`, the integers up to 64 bits, `f32` and `f64`,
/// `String`, `Uuid`, [`Identifier<T>`], enum value objects (sets of choices, stored by
/// name), and `Option` of these. Implement it for a type of yours that serde writes as
/// one of those scalars. Numbers compare as numbers (an integer beyond `i64` as a float
/// on SQLite), strings by the database's collation (byte order in memory).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an indexed field: stores index and compare JSON strings, numbers and booleans",
    label = "`#[index]` on a field of this type",
    note = "index a field holding a number, `String`, `bool`, `char`, `Uuid`, `Identifier<T>`, an enum `#[value_object]` (a choice), or an `Option` of one",
    note = "a list, a map, a struct value object or a `SystemTime` is stored as JSON that stores cannot compare: keep a scalar derived from it in the projection (a count, a total, a date as text) and index that"
)]
pub trait Indexable {}

macro_rules! indexable {
    ($($t:ty),*) => {$( impl Indexable for $t {} )*};
}
indexable!(bool, char, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, f32, f64, String, uuid::Uuid);

impl<T: ?Sized> Indexable for Identifier<T> {}

impl<T: Indexable> Indexable for Option<T> {}

/// A value a query compares field type `T` with: a `T` or a `&T`, and for a `String` a
/// `&str`. For an `Option` field, `None` (null or missing) or `Some(value)`.
pub trait QueryValue<T> {
    /// The value, as the JSON scalar the store compares `field` with.
    fn to_bound(&self, field: &str) -> Result<serde_json::Value, QueryError>;
}

impl<T: Serialize> QueryValue<T> for T {
    fn to_bound(&self, field: &str) -> Result<serde_json::Value, QueryError> {
        bound(field, self)
    }
}

impl<T: Serialize> QueryValue<T> for &T {
    fn to_bound(&self, field: &str) -> Result<serde_json::Value, QueryError> {
        bound(field, *self)
    }
}

impl QueryValue<String> for &str {
    fn to_bound(&self, field: &str) -> Result<serde_json::Value, QueryError> {
        bound(field, *self)
    }
}

/// An indexed field of projection `V` whose values are of type `T`: what `#[projection]`
/// generates for each `#[index]` field, as an associated constant named after it
/// (`overdue` gives `LoanView::OVERDUE`). Its methods make the [`Condition`]s that
/// [`Query::filter`](super::Query::filter) takes; [`Query::order_by`](super::Query::order_by)
/// takes it as it is.
///
/// ```text
/// let overdue = domain.query::<LoanView>()
///     .filter(LoanView::OVERDUE.eq(true))
///     .filter(LoanView::DUE_DAY.lt(today))
///     .order_by(LoanView::DUE_DAY)
///     .fetch()
///     .await?;
/// ```
pub struct Field<V, T> {
    name: &'static str,
    key: &'static str,
    _of: PhantomData<fn() -> (V, T)>,
}

impl<V, T> Field<V, T> {
    /// The field `name`, stored under `key` in a row's JSON (its name unless serde
    /// renames it). Made by `#[projection]`.
    #[doc(hidden)]
    pub const fn new(name: &'static str, key: &'static str) -> Self {
        Field { name, key, _of: PhantomData }
    }

    /// The field's name, as declared.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The key the field is stored under in a row's JSON.
    pub const fn key(&self) -> &'static str {
        self.key
    }

    fn compare(self, op: FilterOp, value: &impl QueryValue<T>) -> Condition<V> {
        Condition { field: self.key, op, value: value.to_bound(self.name), _of: PhantomData }
    }

    /// Rows whose field equals `value` (`None`: the field is null or missing).
    pub fn eq(self, value: impl QueryValue<T>) -> Condition<V> {
        self.compare(FilterOp::Eq, &value)
    }

    /// Rows whose field differs from `value` (`None`: the field is present and not null).
    pub fn ne(self, value: impl QueryValue<T>) -> Condition<V> {
        self.compare(FilterOp::Ne, &value)
    }

    /// Rows whose field is less than `value`.
    pub fn lt(self, value: impl QueryValue<T>) -> Condition<V> {
        self.compare(FilterOp::Lt, &value)
    }

    /// Rows whose field is at most `value`.
    pub fn le(self, value: impl QueryValue<T>) -> Condition<V> {
        self.compare(FilterOp::Le, &value)
    }

    /// Rows whose field is greater than `value`.
    pub fn gt(self, value: impl QueryValue<T>) -> Condition<V> {
        self.compare(FilterOp::Gt, &value)
    }

    /// Rows whose field is at least `value`.
    pub fn ge(self, value: impl QueryValue<T>) -> Condition<V> {
        self.compare(FilterOp::Ge, &value)
    }
}

impl<V, T> Clone for Field<V, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V, T> Copy for Field<V, T> {}

impl<V, T> std::fmt::Debug for Field<V, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Field").field("name", &self.name).field("key", &self.key).finish()
    }
}

/// A condition on a row of projection `V`, made by a [`Field`]'s methods, for
/// [`Query::filter`](super::Query::filter).
pub struct Condition<V> {
    pub(super) field: &'static str,
    pub(super) op: FilterOp,
    pub(super) value: Result<serde_json::Value, QueryError>,
    pub(super) _of: PhantomData<fn() -> V>,
}

impl<V> std::fmt::Debug for Condition<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condition")
            .field("field", &self.field)
            .field("op", &self.op)
            .field("value", &self.value)
            .finish()
    }
}

/// A field to order a query by: a [`Field`] of the projection, or its name as text.
pub trait OrderField<V> {
    /// The field's name, as declared, and the key it is stored under; `None` when `V`
    /// declares no such indexed field.
    fn field(&self) -> (&str, Option<&'static str>);
}

impl<V: Projection, T> OrderField<V> for Field<V, T> {
    fn field(&self) -> (&str, Option<&'static str>) {
        (self.name, Some(self.key))
    }
}

impl<V: Projection> OrderField<V> for &str {
    fn field(&self) -> (&str, Option<&'static str>) {
        (self, stored_key::<V>(self))
    }
}

impl<V: Projection> OrderField<V> for String {
    fn field(&self) -> (&str, Option<&'static str>) {
        (self, stored_key::<V>(self))
    }
}

impl<V: Projection> OrderField<V> for &String {
    fn field(&self) -> (&str, Option<&'static str>) {
        (self, stored_key::<V>(self))
    }
}

/// The key the indexed field `field` of `V` is stored under: `field` names it as
/// declared, or as stored.
pub(super) fn stored_key<V: Projection>(field: &str) -> Option<&'static str> {
    let position = V::INDEXED.iter().position(|f| *f == field);
    let position = position.or_else(|| V::INDEXED_KEYS.iter().position(|k| *k == field))?;
    V::INDEXED_KEYS.get(position).or_else(|| V::INDEXED.get(position)).copied()
}

/// `value` as the JSON scalar a filter on `field` compares with: a string, number,
/// boolean or null; a float that is NaN or infinite, or a list or object, is refused.
pub(crate) fn bound<T: Serialize + ?Sized>(field: &str, value: &T) -> Result<serde_json::Value, QueryError> {
    if let Err(NotFinite(Some(value))) = value.serialize(Check) {
        return Err(QueryError::NotFinite { field: field.to_owned(), value });
    }
    match serde_json::to_value(value) {
        Ok(
            value @ (serde_json::Value::Null
            | serde_json::Value::Bool(_)
            | serde_json::Value::Number(_)
            | serde_json::Value::String(_)),
        ) => Ok(value),
        Ok(other) => Err(QueryError::NotScalar { field: field.to_owned(), value: other.to_string() }),
        Err(e) => Err(QueryError::NotScalar { field: field.to_owned(), value: e.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::{bound, QueryError};

    #[test]
    fn a_float_json_cannot_hold_is_refused_by_name() {
        for (value, text) in [(f64::NAN, "NaN"), (f64::INFINITY, "inf"), (f64::NEG_INFINITY, "-inf")] {
            let error = bound("score", &value).unwrap_err();
            assert_eq!(error, QueryError::NotFinite { field: "score".into(), value: text.into() });
            assert_eq!(bound("score", &Some(value as f32)).unwrap_err(), error, "through an Option, as an f32");
        }
        assert!(error_text(f64::NAN).contains("cannot be compared with NaN"), "{}", error_text(f64::NAN));
        assert!(!error_text(f64::NAN).contains("null"));
        assert_eq!(bound("score", &1.5).unwrap(), serde_json::json!(1.5));
        assert_eq!(bound("score", &None::<f64>).unwrap(), serde_json::Value::Null);
    }

    /// A value whose own serialization fails is reported as what it is, not as a NaN.
    #[test]
    fn a_value_that_does_not_serialize_is_not_called_nan() {
        struct Broken;
        impl serde::Serialize for Broken {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("broken on purpose"))
            }
        }
        match bound("score", &Broken) {
            Err(QueryError::NotScalar { value, .. }) => assert!(value.contains("broken on purpose"), "{value}"),
            other => panic!("{other:?}"),
        }
    }

    fn error_text(value: f64) -> String {
        bound("score", &value).unwrap_err().to_string()
    }
}
