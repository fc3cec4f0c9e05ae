//! Reading and rebuilding projections from a [`Domain`](crate::runtime::Domain): get by key, queries executed by
//! the store ([`Query`](crate::runtime::Query)), status, and blue/green rebuilds from
//! the event log.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::runtime::engine::{Engine, ProjectionEntry};
use crate::runtime::health::seconds;
use crate::runtime::outcome::{ProcessError, QueryError};
use crate::runtime::rows::RowSet;
use crate::store::BuildState;

/// Where a projection stands: its serving copy, how far it got, and a rebuild under way.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RebuildProgress {
    /// The projection.
    pub projection: &'static str,
    /// Events applied so far by this run.
    pub done: u64,
    /// Events to apply, as counted when the run started (more may arrive).
    pub total: u64,
    /// Since the run started (in JSON: seconds).
    #[serde(serialize_with = "seconds")]
    pub elapsed: Duration,
    /// Events applied per second so far.
    pub rate: f64,
}

impl RebuildProgress {
    /// How long the rest should take at the rate so far; `None` before any event was
    /// applied.
    pub fn eta(&self) -> Option<Duration> {
        (self.rate > 0.0).then(|| Duration::from_secs_f64(self.total.saturating_sub(self.done) as f64 / self.rate))
    }
}

/// What a finished rebuild did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RebuildReport {
    /// The projection.
    pub projection: &'static str,
    /// The copy that now serves reads.
    pub generation: u64,
    /// Events applied.
    pub events: u64,
    /// How long it took (in JSON: seconds).
    #[serde(serialize_with = "seconds")]
    pub elapsed: Duration,
    /// Events applied per second.
    pub rate: f64,
}

/// How a rebuild run by [`Rebuild::run_until`] ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RebuildEnd {
    /// The new copy serves reads.
    Switched(RebuildReport),
    /// Another builder is at work on this projection (its lease has not run out):
    /// nothing was done.
    Busy,
    /// Stopped before the switch: the old copy still serves reads. The copy filled so
    /// far is kept, and the next rebuild of the same version resumes it once this one's
    /// lease ran out (see [`Rebuild::lease`]).
    Cancelled(RebuildProgress),
}

/// What a rebuild would do, found by [`Rebuild::dry_run`] without changing anything.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RebuildPlan {
    /// The projection.
    pub projection: &'static str,
    /// The version the serving copy was built at; `None` when the store has never seen
    /// the projection (a rebuild registers it).
    pub serving_version: Option<u32>,
    /// The version the code declares: the version a rebuild builds.
    pub declared_version: u32,
    /// The serving copy, which keeps serving until the switch.
    pub serving_generation: u64,
    /// The unfinished rebuild of the declared version it would take over and resume,
    /// if any (an unfinished rebuild of another version is started over).
    pub resumes: Option<BuildState>,
    /// Whether another builder is at work (its lease has not run out): a rebuild now
    /// would do nothing ([`RebuildEnd::Busy`]).
    pub busy: bool,
    /// The log position after which events would be applied.
    pub from_position: u64,
    /// The events of the projection's types stored after `from_position`, counted now.
    pub events: u64,
}

type ProgressFn = Box<dyn FnMut(&RebuildProgress) + Send>;

/// A blue/green rebuild of one projection: replays the event log into a fresh copy
/// while the old copy keeps serving reads, then switches to it in one step. Live
/// updates of the old copy pause meanwhile (the rebuild covers their events); an
/// interrupted rebuild is resumed by the next one once its lease ran out.
///
/// [`dry_run`](Self::dry_run) says what it would do; [`run`](Self::run) runs it to the
/// switch; [`run_until`](Self::run_until) stops it cleanly when a signal comes (Ctrl-C).
pub struct Rebuild {
    engine: Arc<Engine>,
    projection: &'static str,
    batch: usize,
    lease: Duration,
    from: u64,
    progress: Option<ProgressFn>,
}

impl std::fmt::Debug for Rebuild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rebuild")
            .field("projection", &self.projection)
            .field("batch", &self.batch)
            .field("from", &self.from)
            .finish()
    }
}

/// The signal [`Rebuild::run_until`] stops at, polled between batches.
type Stop<'a> = Pin<&'a mut (dyn Future<Output = ()> + Send)>;

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

    /// Applies only the events stored after log position `position` (0, every event,
    /// unless given): the new copy holds no row that only earlier events wrote. For a
    /// projection whose rows come from recent events only, or to try a projector on
    /// recent history. A resumed rebuild that got further goes on from where it stopped.
    pub fn from_position(mut self, position: u64) -> Self {
        self.from = position;
        self
    }

    /// The projection this rebuilds.
    pub fn projection(&self) -> &'static str {
        self.projection
    }

    /// What the rebuild would do now — the serving copy, an unfinished rebuild it would
    /// resume, whether another builder is at work, the events it would apply — read
    /// from the store without writing anything.
    pub async fn dry_run(self) -> Result<RebuildPlan, ProcessError> {
        let entry = self.engine.projection(self.projection).ok_or(QueryError::NoProjector(self.projection))?;
        let store = self.engine.store();
        let state = store.projection_state(self.projection).await?;
        let declared_version = entry.spec.version;
        let build = state.as_ref().and_then(|state| state.build.clone());
        let busy = build.as_ref().is_some_and(|build| {
            let lease = time::Duration::try_from(self.lease).unwrap_or(time::Duration::MAX);
            build.heartbeat.checked_add(lease).is_none_or(|until| until > time::OffsetDateTime::now_utc())
        });
        let resumes = build.filter(|build| build.version == declared_version);
        let from_position = resumes.as_ref().map_or(0, |build| build.position).max(self.from);
        let events = store.log_count(from_position, &entry.types()).await?;
        Ok(RebuildPlan {
            projection: self.projection,
            serving_version: state.as_ref().map(|state| state.version),
            declared_version,
            serving_generation: state.as_ref().map_or(0, |state| state.generation),
            resumes,
            busy,
            from_position,
            events,
        })
    }

    /// Runs it to the switch. `None` when another builder is at work on it.
    pub async fn run(self) -> Result<Option<RebuildReport>, ProcessError> {
        match self.run_until(std::future::pending()).await? {
            RebuildEnd::Switched(report) => Ok(Some(report)),
            RebuildEnd::Busy | RebuildEnd::Cancelled(_) => Ok(None),
        }
    }

    /// Runs it to the switch, or until `stop` completes (for example
    /// `tokio::signal::ctrl_c()`), whichever comes first. `stop` is polled before the
    /// rebuild starts and after each batch, so a batch under way is written first; when
    /// it stops, the old copy keeps serving reads ([`RebuildEnd::Cancelled`]).
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send) -> Result<RebuildEnd, ProcessError> {
        let span = tracing::info_span!("rebuild", projection = self.projection);
        let mut stop = std::pin::pin!(stop);
        self.run_in_span(stop.as_mut()).instrument(span).await
    }

    async fn run_in_span(mut self, mut stop: Stop<'_>) -> Result<RebuildEnd, ProcessError> {
        let started = Instant::now();
        if stopped(&mut stop).await {
            return Ok(RebuildEnd::Cancelled(progress(self.projection, 0, 0, started)));
        }
        let engine = Arc::clone(&self.engine);
        let entry = engine.projection(self.projection).ok_or(QueryError::NoProjector(self.projection))?;
        engine.ensure_registered(entry).await?;
        let store = Arc::clone(engine.store());
        let Some(build) = store.begin_build(self.projection, entry.spec.version, self.lease).await? else {
            return Ok(RebuildEnd::Busy);
        };
        engine.forget_projection_state(self.projection);
        let types = entry.types();
        let mut position = build.position.max(self.from);
        let total = store.log_count(position, &types).await?;
        tracing::info!(events = total, from = position, generation = build.generation, "rebuilding");
        engine.metrics.rebuild(self.projection, 0, total);
        let mut set = RowSet::building(Arc::clone(&store), self.projection, build.generation);
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
            let now = progress(self.projection, done, total.max(done), started);
            engine.metrics.rebuild(self.projection, now.done, now.total);
            if let Some(report) = self.progress.as_mut() {
                report(&now);
            }
            if stopped(&mut stop).await {
                engine.forget_projection_state(self.projection);
                tracing::info!(events = done, position, "rebuild stopped; the old copy still serves reads");
                return Ok(RebuildEnd::Cancelled(now));
            }
        }
        engine.forget_projection_state(self.projection);
        let elapsed = started.elapsed();
        tracing::info!(events = done, ?elapsed, "rebuilt; the new copy serves reads");
        Ok(RebuildEnd::Switched(RebuildReport {
            projection: self.projection,
            generation: build.generation,
            events: done,
            elapsed,
            rate: rate(done, elapsed),
        }))
    }
}

/// Whether `stop` has completed, polled once without waiting.
async fn stopped(stop: &mut Stop<'_>) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(stop.as_mut().poll(cx).is_ready())).await
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
    Rebuild {
        engine: Arc::clone(engine),
        projection,
        batch: 1_000,
        lease: Duration::from_secs(30),
        from: 0,
        progress: None,
    }
}

/// [`Domain::rebuild_by_name`](crate::runtime::Domain::rebuild_by_name), on an engine.
pub(crate) fn rebuild_by_name(engine: &Arc<Engine>, name: &str) -> Result<Rebuild, QueryError> {
    match engine.projections.get_key_value(name) {
        Some((&projection, _)) => Ok(rebuild_named(engine, projection)),
        None => {
            let mut known: Vec<&'static str> = engine.projections.keys().copied().collect();
            known.sort_unstable();
            Err(QueryError::UnknownProjection { name: name.to_owned(), known })
        }
    }
}
