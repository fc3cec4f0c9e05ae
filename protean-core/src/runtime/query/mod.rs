//! Queries over a projection's rows, executed by the store: [`Query`], filtered and
//! ordered on the projection's indexed fields, typed through the [`Field`] constants
//! `#[projection]` generates (`LoanView::OVERDUE.eq(true)`) or named by text
//! (`.eq("overdue", true)`).

mod field;
mod finite;

use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use crate::model::error::{DomainError, StoreError};
use crate::runtime::engine::Engine;
use crate::runtime::outcome::{ProcessError, QueryError};
use crate::runtime::projection::{read_as, Projection};
use crate::store::{FilterOp, RowFilter, RowOrder, RowQuery, RowRead, RowVersion};
use field::{bound, stored_key};
pub use field::{Condition, Field, Indexable, OrderField, QueryValue};

/// The projection rows and queries a unit of work read, shared with the queries it
/// hands out ([`Context::query`](crate::runtime::Context::query)).
pub(crate) type Reads = Arc<Mutex<Vec<RowRead>>>;

/// Records `read` in `reads`.
pub(crate) fn record_read(reads: &Reads, read: RowRead) {
    reads.lock().unwrap_or_else(PoisonError::into_inner).push(read);
}

/// How many rows a query returns when [`Query::limit`] is not given.
pub const DEFAULT_QUERY_LIMIT: usize = 1_000;

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
