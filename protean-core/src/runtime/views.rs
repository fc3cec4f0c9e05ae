//! Reading and rebuilding projections from a [`Domain`]: get by key, queries executed by
//! the store, status, and blue/green rebuilds from the event log.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::Instrument;

use crate::model::error::{DomainError, StoreError};
use crate::runtime::context::{record_read, Reads};
use crate::runtime::domain::Domain;
use crate::runtime::engine::{Engine, ProjectionEntry};
use crate::runtime::outcome::ProcessError;
use crate::runtime::projection::{read_as, read_row, Projection, ProjectionKey, RowSet};
use crate::store::{BuildState, FilterOp, RowFilter, RowOrder, RowQuery, RowRead, RowVersion};

/// A query that cannot be run as written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// Queries filter and order only on declared fields (`#[index]`), which stores index.
    #[error("`{projection}` has no declared field `{field}` to query on (declared with #[index]: {declared:?})")]
    NotIndexed {
        /// The projection.
        projection: &'static str,
        /// The field asked for.
        field: String,
        /// The fields it declares.
        declared: &'static [&'static str],
    },
    /// A filter compares with a string, number, boolean or null only.
    #[error("`{field}` can be compared with a string, number, boolean or null, not with {value}")]
    NotScalar {
        /// The field.
        field: String,
        /// The value given, as JSON.
        value: String,
    },
    /// A rebuild needs the projection's projectors.
    #[error("no projector of `{0}` is registered in this domain")]
    NoProjector(&'static str),
}

/// A query over a projection's rows, built step by step and executed by the store:
/// every filter must hold; rows come in the given order, then by key.
///
/// ```no_run
/// # extern crate protean_core as protean;
/// # use protean::runtime::{Domain, Projection};
/// # async fn demo<V: Projection>(domain: &Domain) -> Result<(), protean::runtime::ProcessError> {
/// let suspended: Vec<V> = domain.query::<V>().eq("status", "suspended").order_by("name").limit(20).fetch().await?;
/// # Ok(()) }
/// ```
///
/// A query from a handler's unit of work ([`Context::query`]) fails with a
/// [`DomainError`], so that `?` works in the handler; one from a [`Domain`] with a
/// [`ProcessError`]. `E` is which.
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

/// What a [`Query`] fails with: [`ProcessError`] from a [`Domain`], [`DomainError`] from
/// a handler's unit of work (a query that cannot run as written is then a
/// [`StoreError::Unsupported`] naming why). Implemented by those two only.
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
        query: RowQuery { projection: V::NAME.into(), filters: Vec::new(), order: Vec::new(), limit: 1_000, offset: 0 },
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
    fn declared(&mut self, field: &str) -> bool {
        if V::INDEXED.contains(&field) {
            return true;
        }
        self.error.get_or_insert(QueryError::NotIndexed {
            projection: V::NAME,
            field: field.to_owned(),
            declared: V::INDEXED,
        });
        false
    }

    /// Keeps the rows whose `field` compares with `value` by `op`.
    pub fn filter(mut self, field: &str, op: FilterOp, value: impl Serialize) -> Self {
        if !self.declared(field) {
            return self;
        }
        match serde_json::to_value(value) {
            Ok(
                value @ (serde_json::Value::Null
                | serde_json::Value::Bool(_)
                | serde_json::Value::Number(_)
                | serde_json::Value::String(_)),
            ) => {
                self.query.filters.push(RowFilter { field: field.to_owned(), op, value });
            }
            Ok(other) => {
                self.error.get_or_insert(QueryError::NotScalar { field: field.to_owned(), value: other.to_string() });
            }
            Err(e) => {
                self.error.get_or_insert(QueryError::NotScalar { field: field.to_owned(), value: e.to_string() });
            }
        }
        self
    }

    /// Keeps the rows whose `field` equals `value` (`None`/null: missing or null).
    pub fn eq(self, field: &str, value: impl Serialize) -> Self {
        self.filter(field, FilterOp::Eq, value)
    }

    /// Keeps the rows whose `field` differs from `value`.
    pub fn ne(self, field: &str, value: impl Serialize) -> Self {
        self.filter(field, FilterOp::Ne, value)
    }

    /// Keeps the rows whose `field` is less than `value`.
    pub fn lt(self, field: &str, value: impl Serialize) -> Self {
        self.filter(field, FilterOp::Lt, value)
    }

    /// Keeps the rows whose `field` is at most `value`.
    pub fn le(self, field: &str, value: impl Serialize) -> Self {
        self.filter(field, FilterOp::Le, value)
    }

    /// Keeps the rows whose `field` is greater than `value`.
    pub fn gt(self, field: &str, value: impl Serialize) -> Self {
        self.filter(field, FilterOp::Gt, value)
    }

    /// Keeps the rows whose `field` is at least `value`.
    pub fn ge(self, field: &str, value: impl Serialize) -> Self {
        self.filter(field, FilterOp::Ge, value)
    }

    /// Orders by `field`, smallest first (after the orders given before).
    pub fn order_by(mut self, field: &str) -> Self {
        if self.declared(field) {
            self.query.order.push(RowOrder { field: field.to_owned(), descending: false });
        }
        self
    }

    /// Orders by `field`, largest first (after the orders given before).
    pub fn order_by_desc(mut self, field: &str) -> Self {
        if self.declared(field) {
            self.query.order.push(RowOrder { field: field.to_owned(), descending: true });
        }
        self
    }

    /// At most `rows` rows (1,000 unless given).
    pub fn limit(mut self, rows: usize) -> Self {
        self.query.limit = rows;
        self
    }

    /// Skips the first `rows` rows.
    pub fn offset(mut self, rows: usize) -> Self {
        self.query.offset = rows;
        self
    }

    /// Runs the query.
    pub async fn fetch(self) -> Result<Vec<V>, E> {
        self.run().await.map_err(E::from_process)
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

/// Where a projection stands: its serving copy, how far it got, and a rebuild under way.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionStatus {
    /// The projection.
    pub projection: &'static str,
    /// The version the serving copy was built at.
    pub version: u32,
    /// The version the code declares: when it differs, the projection needs a rebuild.
    pub declared_version: u32,
    /// The serving copy.
    pub generation: u64,
    /// The highest log position whose changes the serving copy holds.
    pub checkpoint: u64,
    /// Events its projectors take stored after the checkpoint: how far behind it is
    /// (an upper bound: events of other streams may be applied out of log order).
    pub lag: u64,
    /// A rebuild under way.
    pub build: Option<BuildState>,
}

/// How far a rebuild got: what [`Rebuild::on_progress`] is told after each batch.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildProgress {
    /// The projection.
    pub projection: &'static str,
    /// Events applied so far by this run.
    pub done: u64,
    /// Events to apply, as counted when the run started (more may arrive).
    pub total: u64,
    /// Since the run started.
    pub elapsed: Duration,
    /// Events applied per second so far.
    pub rate: f64,
}

/// What a finished rebuild did.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildReport {
    /// The projection.
    pub projection: &'static str,
    /// The copy that now serves reads.
    pub generation: u64,
    /// Events applied.
    pub events: u64,
    /// How long it took.
    pub elapsed: Duration,
    /// Events applied per second.
    pub rate: f64,
}

type ProgressFn = Box<dyn FnMut(&RebuildProgress) + Send>;

/// A blue/green rebuild of one projection: replays the event log into a fresh copy
/// while the old copy keeps serving reads, then switches to it in one step. Live
/// updates of the old copy pause meanwhile (the rebuild covers their events); an
/// interrupted rebuild is resumed by the next one once its lease ran out.
pub struct Rebuild {
    engine: Arc<Engine>,
    projection: &'static str,
    batch: usize,
    lease: Duration,
    progress: Option<ProgressFn>,
}

impl std::fmt::Debug for Rebuild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rebuild").field("projection", &self.projection).field("batch", &self.batch).finish()
    }
}

impl Rebuild {
    /// Calls `report` after each batch with how far the rebuild got.
    pub fn on_progress(mut self, report: impl FnMut(&RebuildProgress) + Send + 'static) -> Self {
        self.progress = Some(Box::new(report));
        self
    }

    /// Events read and rows written per transaction (1,000 unless given).
    pub fn batch(mut self, events: usize) -> Self {
        self.batch = events.max(1);
        self
    }

    /// How long another builder waits for this one to write before taking over (30 s
    /// unless given).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Runs it to the switch. `None` when another builder is at work on it.
    pub async fn run(self) -> Result<Option<RebuildReport>, ProcessError> {
        let span = tracing::info_span!("rebuild", projection = self.projection);
        self.run_in_span().instrument(span).await
    }

    async fn run_in_span(mut self) -> Result<Option<RebuildReport>, ProcessError> {
        let engine = Arc::clone(&self.engine);
        let entry = engine.projection(self.projection).ok_or(QueryError::NoProjector(self.projection))?;
        engine.ensure_registered(entry).await?;
        let store = Arc::clone(engine.store());
        let Some(build) = store.begin_build(self.projection, entry.spec.version, self.lease).await? else {
            return Ok(None);
        };
        engine.forget_projection_state(self.projection);
        let types = entry.types();
        let started = Instant::now();
        let total = store.log_count(build.position, &types).await?;
        tracing::info!(events = total, from = build.position, generation = build.generation, "rebuilding");
        let mut set = RowSet::building(Arc::clone(&store), self.projection, build.generation);
        let mut position = build.position;
        let mut done = 0u64;
        loop {
            let logged = store.log_after(position, self.batch, &types).await?;
            if logged.is_empty() {
                if store.finish_build(self.projection, build.generation, position, &types).await? {
                    break;
                }
                continue;
            }
            for entry_event in &logged {
                apply(entry, &mut set, &entry_event.event).await?;
                position = entry_event.position;
                done += 1;
            }
            let rows = set.flush(100_000);
            store.write_build(self.projection, build.generation, rows, position).await?;
            if let Some(report) = self.progress.as_mut() {
                report(&progress(self.projection, done, total.max(done), started));
            }
        }
        engine.forget_projection_state(self.projection);
        let elapsed = started.elapsed();
        tracing::info!(events = done, ?elapsed, "rebuilt; the new copy serves reads");
        Ok(Some(RebuildReport {
            projection: self.projection,
            generation: build.generation,
            events: done,
            elapsed,
            rate: rate(done, elapsed),
        }))
    }
}

fn rate(done: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        done as f64 / seconds
    } else {
        0.0
    }
}

fn progress(projection: &'static str, done: u64, total: u64, started: Instant) -> RebuildProgress {
    let elapsed = started.elapsed();
    RebuildProgress { projection, done, total, elapsed, rate: rate(done, elapsed) }
}

/// Applies one logged event with every projector method of the projection taking it.
async fn apply(entry: &ProjectionEntry, set: &mut RowSet, event: &crate::store::Envelope) -> Result<(), ProcessError> {
    for (type_name, method, route) in &entry.routes {
        if *type_name == event.type_name {
            route(set, event).await.inspect_err(|error| {
                tracing::warn!(
                    method,
                    event_id = %event.id,
                    error = error as &dyn std::error::Error,
                    "a projector failed in a rebuild; the rebuild stops here and resumes from its last batch"
                );
            })?;
        }
    }
    Ok(())
}

impl Domain {
    /// The row of projection `V` under `key`, from the copy serving reads.
    pub async fn projection<V: Projection>(
        &self,
        key: &(impl ProjectionKey + ?Sized),
    ) -> Result<Option<V>, ProcessError> {
        Ok(read_row::<V>(self.engine(), V::NAME, &key.key_text()).await?)
    }

    /// A query over the rows of projection `V`, executed by the store.
    pub fn query<V: Projection>(&self) -> Query<V> {
        query_of::<V, ProcessError>(Arc::clone(self.engine()), None)
    }

    /// A blue/green rebuild of projection `V` from the event log; see [`Rebuild`].
    pub fn rebuild<V: Projection>(&self) -> Rebuild {
        rebuild_named(self.engine(), V::NAME)
    }

    /// Where projection `V` stands.
    pub async fn projection_status<V: Projection>(&self) -> Result<ProjectionStatus, ProcessError> {
        let engine = self.engine();
        let entry = engine.projection(V::NAME).ok_or(QueryError::NoProjector(V::NAME))?;
        let state = engine.register_projection(entry).await?;
        let lag = engine.store().log_count(state.checkpoint, &entry.types()).await?;
        Ok(ProjectionStatus {
            projection: V::NAME,
            version: state.version,
            declared_version: entry.spec.version,
            generation: state.generation,
            checkpoint: state.checkpoint,
            lag,
            build: state.build,
        })
    }

    /// Rebuilds every projection that needs it: its declared version differs from the
    /// serving copy's, this domain created it over a log that already had events of its
    /// types, or a rebuild of it was left unfinished (resumed once its builder's lease ran
    /// out). Returns what was rebuilt. Delivery workers run this when they start.
    pub async fn rebuild_outdated(&self) -> Result<Vec<RebuildReport>, ProcessError> {
        rebuild_outdated(self.engine()).await
    }
}

/// [`Domain::rebuild_outdated`], on an engine.
pub(crate) async fn rebuild_outdated(engine: &Arc<Engine>) -> Result<Vec<RebuildReport>, ProcessError> {
    let mut reports = Vec::new();
    let mut names: Vec<&'static str> = engine.projections.keys().copied().collect();
    names.sort_unstable();
    for name in names {
        let Some(entry) = engine.projection(name) else { continue };
        let state = engine.register_projection(entry).await?;
        let unbuilt = entry.created_over_log.load(std::sync::atomic::Ordering::Relaxed);
        if state.version != entry.spec.version || unbuilt || state.build.is_some() {
            if let Some(report) = rebuild_named(engine, name).run().await? {
                entry.created_over_log.store(false, std::sync::atomic::Ordering::Relaxed);
                reports.push(report);
            }
        }
    }
    Ok(reports)
}

fn rebuild_named(engine: &Arc<Engine>, projection: &'static str) -> Rebuild {
    Rebuild { engine: Arc::clone(engine), projection, batch: 1_000, lease: Duration::from_secs(30), progress: None }
}
