//! Validation: field options, invariants and [`ValidationError`], which lists every bad
//! field at once, keyed by its path (`items[2].quantity`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Every problem found while validating a domain object, keyed by field path.
///
/// Paths name nested fields the way a user reads them: `total.currency`,
/// `items[2].quantity`. A message about the object as a whole (an invariant that
/// spans several fields) is keyed by the object's own path, which is `""` at the top.
///
/// ```
/// # extern crate protean_core as protean;
/// use protean::model::ValidationError;
/// let mut errors = ValidationError::default();
/// errors.add("items[2].quantity", "must be at least 1");
/// errors.add("total.currency", "must be exactly 3 characters long");
/// assert_eq!(errors.messages("items[2].quantity"), ["must be at least 1"]);
/// assert_eq!(errors.len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    fields: Vec<FieldErrors>,
}

/// The messages for one field path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldErrors {
    /// The field's path, for example `items[2].quantity`; `""` is the object itself.
    pub path: String,
    /// What is wrong with it, in words a user can act on.
    pub messages: Vec<String>,
}

impl ValidationError {
    /// An error with one message for one field path.
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.add(path, message);
        errors
    }

    /// An error about the object as a whole (keyed by its own path).
    pub fn object(message: impl Into<String>) -> Self {
        Self::field("", message)
    }

    /// Adds a message for a field path.
    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        let message = message.into();
        match self.fields.iter_mut().find(|f| f.path == path) {
            Some(field) => field.messages.push(message),
            None => self.fields.push(FieldErrors { path, messages: vec![message] }),
        }
    }

    /// Adds every message of `other`, with its paths placed under `prefix`.
    pub fn merge_under(&mut self, prefix: &Path<'_>, other: ValidationError) {
        for field in other.fields {
            let path = prefix.join(&field.path);
            for message in field.messages {
                self.add(path.clone(), message);
            }
        }
    }

    /// Whether nothing was found wrong.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The number of field paths with problems.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// The messages for one path (empty when that path is fine).
    pub fn messages(&self, path: &str) -> &[String] {
        self.fields.iter().find(|f| f.path == path).map(|f| f.messages.as_slice()).unwrap_or(&[])
    }

    /// The paths with problems, in the order they were found (field order).
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| f.path.as_str())
    }

    /// Every path with its messages.
    pub fn fields(&self) -> &[FieldErrors] {
        &self.fields
    }

    /// `Ok(())` when empty, otherwise `Err(self)`.
    pub fn into_result(self) -> Result<(), ValidationError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "validation failed:")?;
        for field in &self.fields {
            let path = if field.path.is_empty() { "(object)" } else { &field.path };
            write!(f, " {path}: {};", field.messages.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}

/// A field path being validated, built on the stack and rendered only when a
/// message is recorded (valid objects allocate nothing).
#[derive(Clone, Copy)]
pub enum Path<'a> {
    /// The object being validated.
    Root,
    /// A named field of the parent.
    Field(&'a Path<'a>, &'a str),
    /// An element of a list field of the parent.
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    /// The path of a named field under this one.
    pub fn field(&'a self, name: &'a str) -> Path<'a> {
        Path::Field(self, name)
    }

    /// The path of a list element under this one.
    pub fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }

    /// `self` followed by a relative path written as text (`"quantity"`, `""`).
    pub fn join(&self, rest: &str) -> String {
        let base = self.to_string();
        match (base.is_empty(), rest.is_empty()) {
            (_, true) => base,
            (true, false) => rest.to_string(),
            (false, false) if rest.starts_with('[') => format!("{base}{rest}"),
            (false, false) => format!("{base}.{rest}"),
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Field(parent, name) => {
                if matches!(parent, Path::Root) {
                    f.write_str(name)
                } else {
                    write!(f, "{parent}.{name}")
                }
            }
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// Whether invariants are checked before a change (`pre`) or after it (`post`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Before a change: the state must allow the change (for example "a cancelled order cannot change").
    Pre,
    /// After a change and at construction: the state must be consistent.
    Post,
}

/// Field validation and invariants of a domain object; generated by the macros.
pub trait Validate {
    #[doc(hidden)]
    /// Records every field-option violation of `self` (and of nested objects) under `path`.
    fn validate_fields(&self, path: &Path<'_>, errors: &mut ValidationError);

    #[doc(hidden)]
    /// Records every violated invariant of the given phase, of `self` and of the entities it holds.
    fn check_invariants(&self, phase: Phase, path: &Path<'_>, errors: &mut ValidationError);

    #[doc(hidden)]
    /// Whether `self` or an entity it holds declares a `pre` invariant.
    const HAS_PRE_INVARIANTS: bool = false;

    #[doc(hidden)]
    /// Records the `pre` invariants broken by a change from `before` to `self`: those of
    /// `self`, evaluated on `before`, and those of each held entity that changed,
    /// evaluated on the entity as it was. The unit of work checks this at commit, so a
    /// change made by assigning fields is guarded like one made through `change()`.
    fn check_pre_of_change(&self, before: &Self, path: &Path<'_>, errors: &mut ValidationError) {
        let _ = (before, path, errors);
    }

    /// Field options and post-invariants: what construction checks.
    fn validate(&self) -> Result<(), ValidationError> {
        let mut errors = ValidationError::default();
        self.validate_fields(&Path::Root, &mut errors);
        self.check_invariants(Phase::Post, &Path::Root, &mut errors);
        errors.into_result()
    }
}

/// A bound in `#[field(min = …, max = …)]`, as written.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Limit {
    /// An integer literal.
    Int(i128),
    /// A floating-point literal.
    Float(f64),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Int(v) => write!(f, "{v}"),
            Limit::Float(v) => write!(f, "{v}"),
        }
    }
}

/// Numbers that `min` and `max` apply to; `None` of an `Option` is not checked.
#[diagnostic::on_unimplemented(
    message = "`min`/`max` apply to numbers, and `{Self}` is not a number",
    label = "not a number",
    note = "for text and lists use `min_length`, `max_length` or `length`"
)]
pub trait Numeric {
    /// How the value compares to the limit; `None` when there is no value (or it is NaN).
    fn compare(&self, limit: Limit) -> Option<std::cmp::Ordering>;
}

macro_rules! numeric_int {
    ($($t:ty),*) => {$(
        impl Numeric for $t {
            fn compare(&self, limit: Limit) -> Option<std::cmp::Ordering> {
                match limit {
                    Limit::Int(l) => Some((*self as i128).cmp(&l)),
                    Limit::Float(l) => (*self as f64).partial_cmp(&l),
                }
            }
        }
    )*};
}
numeric_int!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, usize);

macro_rules! numeric_float {
    ($($t:ty),*) => {$(
        impl Numeric for $t {
            fn compare(&self, limit: Limit) -> Option<std::cmp::Ordering> {
                match limit {
                    Limit::Int(l) => (*self as f64).partial_cmp(&(l as f64)),
                    Limit::Float(l) => (*self as f64).partial_cmp(&l),
                }
            }
        }
    )*};
}
numeric_float!(f32, f64);

impl<T: Numeric> Numeric for Option<T> {
    fn compare(&self, limit: Limit) -> Option<std::cmp::Ordering> {
        self.as_ref().and_then(|v| v.compare(limit))
    }
}

/// Things with a length that `min_length`, `max_length` and `length` apply to.
#[diagnostic::on_unimplemented(
    message = "`min_length`/`max_length`/`length` apply to text and lists, and `{Self}` is neither",
    label = "has no length",
    note = "for numbers use `min` and `max`"
)]
pub trait Measured {
    /// What the length counts, singular, for messages: `"character"` or `"item"`.
    const UNIT: &'static str;
    /// The length; `None` when there is no value (a `None` option).
    fn length(&self) -> Option<usize>;
}

impl Measured for String {
    const UNIT: &'static str = "character";
    fn length(&self) -> Option<usize> {
        Some(self.chars().count())
    }
}

impl<T> Measured for Vec<T> {
    const UNIT: &'static str = "item";
    fn length(&self) -> Option<usize> {
        Some(self.len())
    }
}

impl<T: Measured> Measured for Option<T> {
    const UNIT: &'static str = T::UNIT;
    fn length(&self) -> Option<usize> {
        self.as_ref().and_then(Measured::length)
    }
}

/// Checks `#[field(min = …)]`.
pub fn check_min<T: Numeric + ?Sized>(value: &T, limit: Limit, path: &Path<'_>, errors: &mut ValidationError) {
    if value.compare(limit) == Some(std::cmp::Ordering::Less) {
        errors.add(path.to_string(), format!("must be at least {limit}"));
    }
}

/// Checks `#[field(max = …)]`.
pub fn check_max<T: Numeric + ?Sized>(value: &T, limit: Limit, path: &Path<'_>, errors: &mut ValidationError) {
    if value.compare(limit) == Some(std::cmp::Ordering::Greater) {
        errors.add(path.to_string(), format!("must be at most {limit}"));
    }
}

fn plural(n: usize, unit: &str) -> String {
    if n == 1 {
        unit.to_string()
    } else {
        format!("{unit}s")
    }
}

/// Checks `#[field(min_length = …)]`.
pub fn check_min_length<T: Measured + ?Sized>(value: &T, limit: usize, path: &Path<'_>, errors: &mut ValidationError) {
    if let Some(len) = value.length() {
        if len < limit {
            errors.add(path.to_string(), format!("must have at least {limit} {}, has {len}", plural(limit, T::UNIT)));
        }
    }
}

/// Checks `#[field(max_length = …)]`.
pub fn check_max_length<T: Measured + ?Sized>(value: &T, limit: usize, path: &Path<'_>, errors: &mut ValidationError) {
    if let Some(len) = value.length() {
        if len > limit {
            errors.add(path.to_string(), format!("must have at most {limit} {}, has {len}", plural(limit, T::UNIT)));
        }
    }
}

/// Checks `#[field(length = …)]`.
pub fn check_length<T: Measured + ?Sized>(value: &T, limit: usize, path: &Path<'_>, errors: &mut ValidationError) {
    if let Some(len) = value.length() {
        if len != limit {
            errors.add(path.to_string(), format!("must have exactly {limit} {}, has {len}", plural(limit, T::UNIT)));
        }
    }
}

/// The result type of an invariant: `Err` names what is broken.
pub type InvariantResult = Result<(), ValidationError>;

/// Records an invariant's outcome under `path`.
pub fn record_invariant(outcome: InvariantResult, path: &Path<'_>, errors: &mut ValidationError) {
    if let Err(broken) = outcome {
        errors.merge_under(path, broken);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_a_user_reads_them() {
        let root = Path::Root;
        let items = root.field("items");
        let second = items.index(2);
        let qty = second.field("quantity");
        assert_eq!(qty.to_string(), "items[2].quantity");
        assert_eq!(second.join("quantity"), "items[2].quantity");
        assert_eq!(second.join(""), "items[2]");
        assert_eq!(Path::Root.join("total"), "total");
    }

    #[test]
    fn limits_compare_across_integer_and_float_literals() {
        let mut errors = ValidationError::default();
        check_min(&-1i64, Limit::Int(0), &Path::Root.field("a"), &mut errors);
        check_max(&2.5f64, Limit::Int(2), &Path::Root.field("b"), &mut errors);
        check_min(&None::<i32>, Limit::Int(5), &Path::Root.field("c"), &mut errors);
        check_min(&u64::MAX, Limit::Float(1.0), &Path::Root.field("d"), &mut errors);
        assert_eq!(errors.messages("a"), ["must be at least 0"]);
        assert_eq!(errors.messages("b"), ["must be at most 2"]);
        assert!(errors.messages("c").is_empty());
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let mut errors = ValidationError::default();
        check_length(&"€€€".to_string(), 3, &Path::Root.field("currency"), &mut errors);
        check_min_length(&Vec::<u8>::new(), 1, &Path::Root.field("items"), &mut errors);
        assert!(errors.messages("currency").is_empty());
        assert_eq!(errors.messages("items"), ["must have at least 1 item, has 0"]);
    }
}
