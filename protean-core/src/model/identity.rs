//! Typed identities: [`Identifier<T>`] names one aggregate or entity of type `T`.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Implemented by `#[aggregate]` and `#[entity]` types: the things that have an identity.
///
/// `Identifier<T>` exists only for such `T`; a value object has no identity.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no identity: `Identifier<{Self}>` names only aggregates and entities",
    label = "not an aggregate or entity",
    note = "value objects are compared by value: embed `{Self}` as a plain field instead of referring to it",
    note = "to refer to another aggregate, use `Identifier<ThatAggregate>`"
)]
pub trait Identifiable: 'static {
    /// The name of the type (`"Order"`), used in messages and in the model.
    const IDENTIFIED_NAME: &'static str;

    /// This object's identity.
    fn id(&self) -> &Identifier<Self>
    where
        Self: Sized;
}

/// The value inside an identifier: a UUID (the default, version 7) or a text chosen by the user.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum IdValue {
    Uuid(Uuid),
    Text(Arc<str>),
}

/// A typed identity of an aggregate or entity `T`.
///
/// * `Identifier::<Order>::generate()` makes a fresh UUID v7 (time-ordered, so
///   identities sort by creation time and index well).
/// * `Identifier::<Inventory>::parse("SKU-42")` accepts a value the user chooses;
///   a string in UUID form becomes a UUID.
/// * `to_string()` gives the string form, and [`FromStr`] parses it back to an equal identifier.
///
/// The type parameter keeps identities apart: an `Identifier<Customer>` cannot be
/// passed where an `Identifier<Order>` is expected. Referring to another aggregate by
/// `Identifier<T>` is how aggregates stay small (see the crate docs).
///
/// ```
/// # extern crate protean_core as protean;
/// use protean::model::{Identifier, Identifiable};
/// # struct Order { id: Identifier<Order> }
/// # impl Identifiable for Order { const IDENTIFIED_NAME: &'static str = "Order"; fn id(&self) -> &Identifier<Order> { &self.id } }
/// let id = Identifier::<Order>::generate();
/// let back: Identifier<Order> = id.to_string().parse().unwrap();
/// assert_eq!(id, back);
/// ```
pub struct Identifier<T: ?Sized> {
    value: IdValue,
    _of: PhantomData<fn() -> T>,
}

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifierError {
    /// The string was empty (or only whitespace).
    #[error("an identifier cannot be empty")]
    Empty,
    /// The string is longer than [`MAX_IDENTIFIER_LEN`] bytes.
    #[error("an identifier is at most {MAX_IDENTIFIER_LEN} bytes long, this one is {0}")]
    TooLong(usize),
    /// The string contains a control character or surrounding whitespace.
    #[error("an identifier cannot contain control characters or surrounding whitespace")]
    BadCharacters,
}

/// The longest text identifier accepted, in bytes.
pub const MAX_IDENTIFIER_LEN: usize = 255;

impl<T: ?Sized> Identifier<T> {
    /// A fresh identity: a UUID version 7.
    pub fn generate() -> Self {
        Self::from_uuid(Uuid::now_v7())
    }

    /// The identity with this UUID.
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self { value: IdValue::Uuid(uuid), _of: PhantomData }
    }

    /// Parses a user-chosen identity (`"SKU-42"`) or the string form of a UUID.
    pub fn parse(text: &str) -> Result<Self, IdentifierError> {
        Ok(Self { value: parse_value(text)?, _of: PhantomData })
    }

    /// The UUID, when this identity is one.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match &self.value {
            IdValue::Uuid(u) => Some(*u),
            IdValue::Text(_) => None,
        }
    }

    /// The same identity value, typed for another type (for example to key a
    /// read model by the aggregate's identity).
    pub fn cast<U: ?Sized>(&self) -> Identifier<U> {
        Identifier { value: self.value.clone(), _of: PhantomData }
    }
}

impl<T: ?Sized> Default for Identifier<T> {
    /// A fresh identity, as [`Identifier::generate`].
    fn default() -> Self {
        Self::generate()
    }
}

impl<T: ?Sized> Clone for Identifier<T> {
    fn clone(&self) -> Self {
        Self { value: self.value.clone(), _of: PhantomData }
    }
}

impl<T: ?Sized> PartialEq for Identifier<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl<T: ?Sized> Eq for Identifier<T> {}

impl<T: ?Sized> PartialOrd for Identifier<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T: ?Sized> Ord for Identifier<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl<T: ?Sized> Hash for Identifier<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state)
    }
}

impl<T: ?Sized> Identifier<T> {
    /// The string form, shared: free for a text identity, one allocation for a UUID.
    pub fn to_shared_str(&self) -> Arc<str> {
        match &self.value {
            IdValue::Uuid(u) => Arc::from(&*u.hyphenated().encode_lower(&mut Uuid::encode_buffer())),
            IdValue::Text(t) => Arc::clone(t),
        }
    }
}

/// The value of an identity written `text`: not generic, so that it is compiled once here
/// rather than once per identified type in the user's crate.
fn parse_value(text: &str) -> Result<IdValue, IdentifierError> {
    if text.trim().is_empty() {
        return Err(IdentifierError::Empty);
    }
    if text.len() > MAX_IDENTIFIER_LEN {
        return Err(IdentifierError::TooLong(text.len()));
    }
    if text.trim() != text || text.chars().any(char::is_control) {
        return Err(IdentifierError::BadCharacters);
    }
    Ok(match Uuid::try_parse(text) {
        Ok(uuid) => IdValue::Uuid(uuid),
        Err(_) => IdValue::Text(Arc::from(text)),
    })
}

impl<T: ?Sized> fmt::Display for Identifier<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            IdValue::Uuid(u) => fmt::Display::fmt(u, f),
            IdValue::Text(t) => f.write_str(t),
        }
    }
}

impl<T: ?Sized> fmt::Debug for Identifier<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = std::any::type_name::<T>();
        let short = name.rsplit("::").next().unwrap_or(name);
        write!(f, "Identifier<{short}>({self})")
    }
}

impl<T: ?Sized> FromStr for Identifier<T> {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<T: ?Sized> From<Uuid> for Identifier<T> {
    fn from(uuid: Uuid) -> Self {
        Self::from_uuid(uuid)
    }
}

impl<T: ?Sized> Serialize for Identifier<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Straight to `serialize_str`: `collect_str` would go through `fmt`, which costs
        // several times more for a value saved with every aggregate and event.
        match &self.value {
            IdValue::Uuid(u) => serializer.serialize_str(u.hyphenated().encode_lower(&mut Uuid::encode_buffer())),
            IdValue::Text(t) => serializer.serialize_str(t),
        }
    }
}

impl<'de, T: ?Sized> Deserialize<'de> for Identifier<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Implemented for `Identifier<T>` only: the type an identity field of `T` must have.
#[diagnostic::on_unimplemented(
    message = "the identity field of `{T}` must have type `Identifier<{T}>`, not `{Self}`",
    label = "expected `Identifier<{T}>`",
    note = "a field that refers to another aggregate is a plain field: drop `#[field(identifier)]` from it (or rename a field called `id`)"
)]
pub trait IdentityOf<T: ?Sized> {
    /// A fresh identity, for a builder that was not given one.
    fn generate_identity() -> Self;
    /// The identity, typed.
    fn as_identifier(&self) -> &Identifier<T>;
}
impl<T: ?Sized> IdentityOf<T> for Identifier<T> {
    fn generate_identity() -> Self {
        Self::generate()
    }
    fn as_identifier(&self) -> &Identifier<T> {
        self
    }
}

/// The stream an event belongs to: the aggregate type and the aggregate's identity.
///
/// Cheap to clone: the name is usually `&'static` and the identity is shared.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamId {
    /// The aggregate's name (`"Order"`).
    pub aggregate: Cow<'static, str>,
    /// The aggregate's identity, as text.
    pub id: Arc<str>,
}

impl StreamId {
    /// The stream of the aggregate named `aggregate` with identity `id`.
    pub fn new(aggregate: impl Into<Cow<'static, str>>, id: impl Into<Arc<str>>) -> Self {
        StreamId { aggregate: aggregate.into(), id: id.into() }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.aggregate, self.id)
    }
}
