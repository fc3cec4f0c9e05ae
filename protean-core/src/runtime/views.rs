//! Reading and rebuilding projections from a [`Domain`](crate::runtime::Domain): get by key, queries executed by
//! the store ([`Query`](crate::runtime::Query)), status, and blue/green rebuilds from
//! the event log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::runtime::engine::{Engine, ProjectionEntry};
use crate::runtime::outcome::{ProcessError, QueryError};
use crate::runtime::rows::RowSet;
use crate::store::BuildState;

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

/// [`Domain::projection_status`](crate::runtime::Domain::projection_status) of projection
/// `name`, on an engine.
pub(crate) async fn projection_status(engine: &Engine, name: &'static str) -> Result<ProjectionStatus, ProcessError> {
    let entry = engine.projection(name).ok_or(QueryError::NoProjector(name))?;
    let state = engine.register_projection(entry).await?;
    let lag = engine.store().log_count(state.checkpoint, &entry.types()).await?;
    Ok(ProjectionStatus {
        projection: name,
        version: state.version,
        declared_version: entry.spec.version,
        generation: state.generation,
        checkpoint: state.checkpoint,
        lag,
        build: state.build,
    })
}

/// [`Domain::projection_statuses`](crate::runtime::Domain::projection_statuses), on an
/// engine: every projection's status, by name.
pub(crate) async fn projection_statuses(engine: &Engine) -> Result<Vec<ProjectionStatus>, ProcessError> {
    let mut names: Vec<&'static str> = engine.projections.keys().copied().collect();
    names.sort_unstable();
    let mut statuses = Vec::with_capacity(names.len());
    for name in names {
        statuses.push(projection_status(engine, name).await?);
    }
    Ok(statuses)
}

/// [`Domain::rebuild_outdated`](crate::runtime::Domain::rebuild_outdated), on an engine.
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

pub(crate) fn rebuild_named(engine: &Arc<Engine>, projection: &'static str) -> Rebuild {
    Rebuild { engine: Arc::clone(engine), projection, batch: 1_000, lease: Duration::from_secs(30), progress: None }
}
