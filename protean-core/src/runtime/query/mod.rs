//! Queries over a projection's rows, executed by the store: [`Query`], filtered and
//! ordered on the projection's indexed fields, typed through the [`Field`] constants
//! `#[projection]` generates (`LoanView::OVERDUE.eq(true)`) or named by text
//! (`.eq("overdue", true)`).

use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use crate::model::error::{DomainError, StoreError};
use crate::model::identity::Identifier;
use crate::runtime::engine::Engine;
use crate::runtime::outcome::{ProcessError, QueryError};
use crate::runtime::projection::{read_as, Projection};
use crate::store::{FilterOp, RowFilter, RowOrder, RowQuery, RowRead, RowVersion};

/// The projection rows and queries a unit of work read, shared with the queries it
/// hands out ([`Context::query`](crate::runtime::Context::query)).
pub(crate) type Reads = Arc<Mutex<Vec<RowRead>>>;

/// Records `read` in `reads`.
pub(crate) fn record_read(reads: &Reads, read: RowRead) {
    reads.lock().unwrap_or_else(PoisonError::into_inner).push(read);
}

/// How many rows a query returns when [`Query::limit`] is not given.
pub const DEFAULT_QUERY_LIMIT: usize = 1_000;

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
/// [`Query::filter`] takes; [`Query::order_by`] takes it as it is.
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
/// [`Query::filter`].
pub struct Condition<V> {
    field: &'static str,
    op: FilterOp,
    value: Result<serde_json::Value, QueryError>,
    _of: PhantomData<fn() -> V>,
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
fn stored_key<V: Projection>(field: &str) -> Option<&'static str> {
    let position = V::INDEXED.iter().position(|f| *f == field);
    let position = position.or_else(|| V::INDEXED_KEYS.iter().position(|k| *k == field))?;
    V::INDEXED_KEYS.get(position).or_else(|| V::INDEXED.get(position)).copied()
}

/// `value` as the JSON scalar a filter on `field` compares with: a string, number,
/// boolean or null; a float that is NaN or infinite, or a list or object, is refused.
pub(crate) fn bound<T: Serialize + ?Sized>(field: &str, value: &T) -> Result<serde_json::Value, QueryError> {
    if let Err(finite::NotFinite(Some(value))) = value.serialize(finite::Check) {
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

/// One page of a query's rows, and where the next one starts: what
/// [`Query::fetch_page`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<V> {
    /// The rows, at most the query's limit.
    pub rows: Vec<V>,
    /// The offset of the next page when more rows follow (pass it to
    /// [`Query::offset`]); `None` on the last page.
    pub next: Option<usize>,
}

/// A query over a projection's rows, built step by step and executed by the store:
/// every filter must hold; rows come in the given order, then by key.
///
/// Filter with the typed [`Field`] constants `#[projection]` generates for each
/// `#[index]` field (the compiler checks the field belongs to the projection and the
/// value has its type), or name the field by text (checked when the query runs):
///
/// ```text
/// let page = domain.query::<MemberView>()
///     .filter(MemberView::STATUS.eq(Status::Suspended))
///     .order_by(MemberView::NAME)
///     .limit(20)
///     .fetch_page()
///     .await?;
/// let same = domain.query::<MemberView>().eq("status", "Suspended").order_by("name").limit(20).fetch().await?;
/// ```
///
/// **A query returns at most [`DEFAULT_QUERY_LIMIT`] (1,000) rows unless
/// [`limit`](Self::limit) says otherwise.** [`fetch`](Self::fetch) gives the rows alone;
/// [`fetch_page`](Self::fetch_page) also says whether more follow, and from which offset.
///
/// A query from a handler's unit of work ([`Context::query`]) fails with a
/// [`DomainError`], so that `?` works in the handler; one from a
/// [`Domain`](crate::runtime::Domain) with a [`ProcessError`]. `E` is which.
///
/// [`Context::query`]: crate::runtime::Context::query
pub struct Query<V: Projection, E: QueryFailure = ProcessError> {
    engine: Arc<Engine>,
    query: RowQuery,
    error: Option<QueryError>,
    /// Where a unit of work's query records the rows it returned ([`Context::query`]).
    ///
    /// [`Context::query`]: crate::runtime::Context::query
    reads: Option<Reads>,
    _v: PhantomData<fn() -> (V, E)>,
}

/// What a [`Query`] fails with: [`ProcessError`] from a [`Domain`](crate::runtime::Domain),
/// [`DomainError`] from a handler's unit of work (a query that cannot run as written is
/// then a [`StoreError::Unsupported`] naming why). Implemented by those two only.
pub trait QueryFailure: sealed::Sealed + Send + 'static {
    /// The error of a query that failed with `error`.
    fn from_process(error: ProcessError) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::runtime::outcome::ProcessError {}
    impl Sealed for crate::model::error::DomainError {}
}

impl QueryFailure for ProcessError {
    fn from_process(error: ProcessError) -> Self {
        error
    }
}

impl QueryFailure for DomainError {
    fn from_process(error: ProcessError) -> Self {
        match error {
            ProcessError::Store(error) => DomainError::Store(error),
            ProcessError::Conflict(conflict) => DomainError::Store(StoreError::Conflict(conflict)),
            ProcessError::Rejected { error, .. } | ProcessError::RejectedByProjector { error, .. } => error,
            other => DomainError::Store(StoreError::Unsupported(other.to_string())),
        }
    }
}

/// A query over projection `V`'s rows, recording the rows it returns in `reads` if given.
pub(crate) fn query_of<V: Projection, E: QueryFailure>(engine: Arc<Engine>, reads: Option<Reads>) -> Query<V, E> {
    Query {
        engine,
        query: RowQuery {
            projection: V::NAME.into(),
            filters: Vec::new(),
            order: Vec::new(),
            limit: DEFAULT_QUERY_LIMIT,
            offset: 0,
        },
        error: None,
        reads,
        _v: PhantomData,
    }
}

impl<V: Projection, E: QueryFailure> std::fmt::Debug for Query<V, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query").field("query", &self.query).field("error", &self.error).finish()
    }
}

impl<V: Projection, E: QueryFailure> Query<V, E> {
    /// The key `field` is stored under, or the error that it is not an indexed field of `V`.
    fn declared(&mut self, field: &str, key: Option<&'static str>) -> Option<&'static str> {
        if key.is_none() {
            self.fail(QueryError::NotIndexed { projection: V::NAME, field: field.to_owned(), declared: V::INDEXED });
        }
        key
    }

    /// Records the first thing wrong with the query: running it fails with it.
    fn fail(&mut self, error: QueryError) {
        self.error.get_or_insert(error);
    }

    /// Keeps the rows that meet `condition`, made by one of the projection's [`Field`]s:
    /// `.filter(LoanView::OVERDUE.eq(true))`.
    pub fn filter(mut self, condition: Condition<V>) -> Self {
        match condition.value {
            Ok(value) => {
                self.query.filters.push(RowFilter { field: condition.field.to_owned(), op: condition.op, value })
            }
            Err(error) => self.fail(error),
        }
        self
    }

    /// Keeps the rows whose `field` (named by text) compares with `value` by `op`; see
    /// [`filter`](Self::filter) for the typed form.
    pub fn filter_on(mut self, field: &str, op: FilterOp, value: impl Serialize) -> Self {
        let Some(key) = self.declared(field, stored_key::<V>(field)) else { return self };
        self.filter(Condition { field: key, op, value: bound(field, &value), _of: PhantomData })
    }

    /// Keeps the rows whose `field` equals `value` (`None`/null: missing or null). The
    /// typed form: `.filter(View::FIELD.eq(value))`.
    pub fn eq(self, field: &str, value: impl Serialize) -> Self {
        self.filter_on(field, FilterOp::Eq, value)
    }

    /// Keeps the rows whose `field` differs from `value`.
    pub fn ne(self, field: &str, value: impl Serialize) -> Self {
        self.filter_on(field, FilterOp::Ne, value)
    }

    /// Keeps the rows whose `field` is less than `value`.
    pub fn lt(self, field: &str, value: impl Serialize) -> Self {
        self.filter_on(field, FilterOp::Lt, value)
    }

    /// Keeps the rows whose `field` is at most `value`.
    pub fn le(self, field: &str, value: impl Serialize) -> Self {
        self.filter_on(field, FilterOp::Le, value)
    }

    /// Keeps the rows whose `field` is greater than `value`.
    pub fn gt(self, field: &str, value: impl Serialize) -> Self {
        self.filter_on(field, FilterOp::Gt, value)
    }

    /// Keeps the rows whose `field` is at least `value`.
    pub fn ge(self, field: &str, value: impl Serialize) -> Self {
        self.filter_on(field, FilterOp::Ge, value)
    }

    fn order(mut self, field: impl OrderField<V>, descending: bool) -> Self {
        let (name, key) = field.field();
        if let Some(key) = self.declared(name, key) {
            self.query.order.push(RowOrder { field: key.to_owned(), descending });
        }
        self
    }

    /// Orders by `field` (a [`Field`] of the projection, or its name), smallest first,
    /// after the orders given before.
    pub fn order_by(self, field: impl OrderField<V>) -> Self {
        self.order(field, false)
    }

    /// Orders by `field`, largest first, after the orders given before.
    pub fn order_by_desc(self, field: impl OrderField<V>) -> Self {
        self.order(field, true)
    }

    /// At most `rows` rows ([`DEFAULT_QUERY_LIMIT`], 1,000, unless given).
    pub fn limit(mut self, rows: usize) -> Self {
        self.query.limit = rows;
        self
    }

    /// Skips the first `rows` rows.
    pub fn offset(mut self, rows: usize) -> Self {
        self.query.offset = rows;
        self
    }

    /// Runs the query: at most its limit of rows ([`DEFAULT_QUERY_LIMIT`], 1,000, unless
    /// [`limit`](Self::limit) is given), without saying whether more matched; use
    /// [`fetch_page`](Self::fetch_page) to know.
    pub async fn fetch(self) -> Result<Vec<V>, E> {
        self.run().await.map_err(E::from_process)
    }

    /// Runs the query and says whether more rows follow the ones returned: the rows (at
    /// most the limit), and the offset of the next page, `None` on the last one.
    ///
    /// ```text
    /// let mut offset = 0;
    /// loop {
    ///     let page = domain.query::<LoanView>().order_by(LoanView::DUE_DAY).limit(100).offset(offset).fetch_page().await?;
    ///     send_reminders(&page.rows);
    ///     let Some(next) = page.next else { break };
    ///     offset = next;
    /// }
    /// ```
    pub async fn fetch_page(mut self) -> Result<Page<V>, E> {
        let (limit, offset) = (self.query.limit, self.query.offset);
        // One row more than asked for says whether another page follows.
        self.query.limit = limit.saturating_add(1);
        let mut rows = self.run().await.map_err(E::from_process)?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        Ok(Page { rows, next: more.then(|| offset.saturating_add(limit)) })
    }

    async fn run(self) -> Result<Vec<V>, ProcessError> {
        if let Some(error) = self.error {
            return Err(ProcessError::Query(error));
        }
        if let Some(entry) = self.engine.projection(V::NAME) {
            self.engine.ensure_registered(entry).await?;
        }
        let query = self.reads.is_some().then(|| self.query.clone());
        let rows = self.engine.store().query_projection(self.query).await?;
        if let (Some(reads), Some(query)) = (&self.reads, query) {
            let found = rows.iter().map(RowVersion::of).collect();
            record_read(reads, RowRead::Query { query, found });
        }
        let mut read = Vec::with_capacity(rows.len());
        for row in &rows {
            read.push(read_as::<V>(&self.engine, V::NAME, row).await?);
        }
        Ok(read)
    }
}

/// A serializer that only looks for floats JSON cannot hold: what [`bound`] runs before
/// `serde_json` (which writes them as null) to refuse them by name.
mod finite {
    use serde::ser::{self, Serialize};

    /// A float that is NaN or infinite, as text; `None` for another failure, which
    /// serde_json reports when it serializes the value.
    #[derive(Debug)]
    pub(super) struct NotFinite(pub(super) Option<String>);

    impl std::fmt::Display for NotFinite {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0.as_deref().unwrap_or("a value that does not serialize"))
        }
    }

    impl std::error::Error for NotFinite {}

    impl ser::Error for NotFinite {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            NotFinite(None)
        }
    }

    /// Checks floats; everything else passes.
    pub(super) struct Check;

    fn float(value: f64) -> Result<(), NotFinite> {
        if value.is_finite() {
            Ok(())
        } else {
            Err(NotFinite(Some(if value.is_nan() { "NaN".to_owned() } else { value.to_string() })))
        }
    }

    macro_rules! pass {
        ($($method:ident($ty:ty)),* $(,)?) => {$(
            fn $method(self, _: $ty) -> Result<(), NotFinite> {
                Ok(())
            }
        )*};
    }

    impl ser::Serializer for Check {
        type Ok = ();
        type Error = NotFinite;
        type SerializeSeq = Check;
        type SerializeTuple = Check;
        type SerializeTupleStruct = Check;
        type SerializeTupleVariant = Check;
        type SerializeMap = Check;
        type SerializeStruct = Check;
        type SerializeStructVariant = Check;

        pass!(
            serialize_bool(bool),
            serialize_i8(i8),
            serialize_i16(i16),
            serialize_i32(i32),
            serialize_i64(i64),
            serialize_i128(i128),
            serialize_u8(u8),
            serialize_u16(u16),
            serialize_u32(u32),
            serialize_u64(u64),
            serialize_u128(u128),
            serialize_char(char),
            serialize_str(&str),
            serialize_bytes(&[u8]),
            serialize_unit_struct(&'static str),
        );

        fn serialize_f32(self, value: f32) -> Result<(), NotFinite> {
            float(f64::from(value))
        }
        fn serialize_f64(self, value: f64) -> Result<(), NotFinite> {
            float(value)
        }
        fn serialize_none(self) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), NotFinite> {
            value.serialize(self)
        }
        fn serialize_unit(self) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), NotFinite> {
            Ok(())
        }
        fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, value: &T) -> Result<(), NotFinite> {
            value.serialize(self)
        }
        fn serialize_newtype_variant<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            value: &T,
        ) -> Result<(), NotFinite> {
            value.serialize(self)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Check, NotFinite> {
            Ok(Check)
        }
        fn serialize_tuple(self, _: usize) -> Result<Check, NotFinite> {
            Ok(Check)
        }
        fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Check, NotFinite> {
            Ok(Check)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Check, NotFinite> {
            Ok(Check)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Check, NotFinite> {
            Ok(Check)
        }
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Check, NotFinite> {
            Ok(Check)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Check, NotFinite> {
            Ok(Check)
        }
    }

    // Lists and objects are refused as bounds whatever they hold: nothing in them is checked.
    macro_rules! compound {
        ($($trait:ident { $($method:ident),* }),* $(,)?) => {$(
            impl ser::$trait for Check {
                type Ok = ();
                type Error = NotFinite;
                $(
                    fn $method<T: ?Sized + Serialize>(&mut self, _: &T) -> Result<(), NotFinite> {
                        Ok(())
                    }
                )*
                fn end(self) -> Result<(), NotFinite> {
                    Ok(())
                }
            }
        )*};
    }
    compound!(
        SerializeSeq { serialize_element },
        SerializeTuple { serialize_element },
        SerializeTupleStruct { serialize_field },
        SerializeTupleVariant { serialize_field },
        SerializeMap { serialize_key, serialize_value },
    );

    impl ser::SerializeStruct for Check {
        type Ok = ();
        type Error = NotFinite;
        fn serialize_field<T: ?Sized + Serialize>(&mut self, _: &'static str, _: &T) -> Result<(), NotFinite> {
            Ok(())
        }
        fn end(self) -> Result<(), NotFinite> {
            Ok(())
        }
    }

    impl ser::SerializeStructVariant for Check {
        type Ok = ();
        type Error = NotFinite;
        fn serialize_field<T: ?Sized + Serialize>(&mut self, _: &'static str, _: &T) -> Result<(), NotFinite> {
            Ok(())
        }
        fn end(self) -> Result<(), NotFinite> {
            Ok(())
        }
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
