//! The engine behind [`Domain`](crate::runtime::Domain): the store, the routes from a
//! message's type name to its handlers, and the retry and snapshot policies. Running
//! commands is in [`domain`](super::domain), delivering events in [`delivery`](super::delivery).

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use foldhash::{HashMap, HashMapExt};

use crate::registry::{HandlerInfo, MessageKind};
use crate::runtime::metrics::Metrics;
use crate::runtime::outcome::{DeliveryFailure, ProcessError};
use crate::runtime::policy::{DeliveryMode, RetryPolicy};
use crate::runtime::rows::RowSet;
use crate::store::{BoxFuture, Cause, Committed, Envelope, Scheduled, Store};
use crate::store::{ProjectionSpec, ProjectionState, StoreError};

/// How reactions are delivered and retried: what the builder chose.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryPolicy {
    pub(crate) mode: DeliveryMode,
    pub(crate) retry: RetryPolicy,
    pub(crate) per_handler: HashMap<&'static str, RetryPolicy>,
}

/// The runtime half of a [`Domain`](crate::runtime::Domain): store, routes and retry policy.
pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) commands: HashMap<&'static str, &'static HandlerDescriptor>,
    pub(crate) events: HashMap<&'static str, Vec<&'static HandlerDescriptor>>,
    pub(crate) conflict_retries: u32,
    pub(crate) lease: std::time::Duration,
    pub(crate) snapshot_every: u64,
    pub(crate) failures: Mutex<Vec<DeliveryFailure>>,
    pub(crate) delivery: DeliveryPolicy,
    /// Fired by every commit that wrote events: wakes this process's delivery workers.
    pub(crate) signal: tokio::sync::Notify,
    /// Deliveries that succeeded in this process, per handler.
    pub(crate) delivered: HashMap<&'static str, AtomicU64>,
    /// Inline projectors (each method's handler info and route), by the type name of the
    /// events they take.
    pub(crate) inline: HashMap<&'static str, Vec<(&'static HandlerInfo, ProjectorRoute)>>,
    /// Whether a process manager takes events in this domain (so sent commands are
    /// fired as part of inline delivery).
    pub(crate) flows: bool,
    /// Every projection fed by a projector of this domain.
    pub(crate) projections: HashMap<&'static str, ProjectionEntry>,
    /// The handles of this domain's metrics (docs/metrics.md).
    pub(crate) metrics: Metrics,
}

/// A projection this domain keeps: its projectors, and what is known of its state.
#[derive(Debug)]
pub(crate) struct ProjectionEntry {
    pub(crate) spec: ProjectionSpec,
    /// (event type name, projector method, its apply route) for every projector method.
    pub(crate) routes: Vec<(&'static str, &'static str, ProjectRoute)>,
    /// Whether an inline projector changes its rows: what a unit of work reads of it is
    /// then checked when the unit commits.
    pub(crate) inline: bool,
    /// Registered with the store (once per domain).
    registered: tokio::sync::OnceCell<()>,
    /// This domain created it in the store over a log that had events of its types
    /// already: it needs a rebuild before it is complete.
    pub(crate) created_over_log: std::sync::atomic::AtomicBool,
    /// The serving generation last seen with no rebuild under way; dropped on a conflict.
    serving: Mutex<Option<u64>>,
}

impl ProjectionEntry {
    /// The event type names its projectors take.
    pub(crate) fn types(&self) -> Vec<String> {
        let mut types: Vec<String> = self.routes.iter().map(|(t, _, _)| (*t).to_owned()).collect();
        types.sort();
        types.dedup();
        types
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("commands", &self.commands.keys().collect::<Vec<_>>())
            .field("events", &self.events.keys().collect::<Vec<_>>())
            .field("conflict_retries", &self.conflict_retries)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        handlers: &[&'static HandlerDescriptor],
        conflict_retries: u32,
        lease: std::time::Duration,
        snapshot_every: u64,
        delivery: DeliveryPolicy,
    ) -> Self {
        let mut commands = HashMap::new();
        let mut delivered = HashMap::new();
        let mut events: HashMap<&'static str, Vec<&'static HandlerDescriptor>> = HashMap::new();
        let mut inline: HashMap<&'static str, Vec<(&'static HandlerInfo, ProjectorRoute)>> = HashMap::new();
        let mut projections: HashMap<&'static str, ProjectionEntry> = HashMap::new();
        let flows = handlers.iter().any(|h| h.info.role == crate::registry::HandlerRole::ProcessManager);
        for &handler in handlers {
            if let Route::Project(route) = handler.route {
                let entry = projections.entry(route.projection).or_insert_with(|| ProjectionEntry {
                    spec: (route.spec)(),
                    routes: Vec::new(),
                    inline: false,
                    registered: tokio::sync::OnceCell::new(),
                    created_over_log: std::sync::atomic::AtomicBool::new(false),
                    serving: Mutex::new(None),
                });
                entry.routes.push((handler.info.type_name, handler.info.id, route.apply));
                entry.inline |= route.inline;
                if route.inline {
                    inline.entry(handler.info.type_name).or_default().push((&handler.info, route));
                    continue;
                }
            }
            match handler.info.kind {
                MessageKind::Command => {
                    commands.insert(handler.info.type_name, handler);
                }
                MessageKind::Event => {
                    events.entry(handler.info.type_name).or_default().push(handler);
                    delivered.insert(handler.info.id, AtomicU64::new(0));
                }
            }
        }
        let metrics = Metrics::new(commands.keys().copied(), delivered.keys().copied(), projections.keys().copied());
        Engine {
            store,
            commands,
            events,
            conflict_retries,
            lease,
            snapshot_every,
            failures: Mutex::new(Vec::new()),
            delivery,
            signal: tokio::sync::Notify::new(),
            delivered,
            inline,
            flows,
            projections,
            metrics,
        }
    }

    /// The inline projectors taking events of this type.
    pub(crate) fn inline_projectors(
        &self,
        type_name: &str,
    ) -> impl Iterator<Item = &(&'static HandlerInfo, ProjectorRoute)> + '_ {
        self.inline.get(type_name).into_iter().flatten()
    }

    /// Whether some inline projector takes events of some type.
    pub(crate) fn has_inline_projectors(&self) -> bool {
        !self.inline.is_empty()
    }

    /// The projection `name` of this domain.
    pub(crate) fn projection(&self, name: &str) -> Option<&ProjectionEntry> {
        self.projections.get(name)
    }

    /// Whether what a unit of work reads of projection `name` is checked when it commits:
    /// when an inline projector keeps it, so that its rows change only in the
    /// transactions of the events they come from.
    pub(crate) fn checks_reads_of(&self, name: &str) -> bool {
        self.projections.get(name).is_some_and(|entry| entry.inline)
    }

    /// Registers the projection with the store, once per domain: the state the store
    /// returned when this call registered it, `None` when it was registered before.
    pub(crate) async fn ensure_registered(
        &self,
        entry: &ProjectionEntry,
    ) -> Result<Option<ProjectionState>, StoreError> {
        let mut registered = None;
        entry
            .registered
            .get_or_try_init(|| async {
                let state = self.store.register_projection(entry.spec.clone()).await?;
                if state.created && self.store.log_count(0, &entry.types()).await? > 0 {
                    entry.created_over_log.store(true, Ordering::Relaxed);
                }
                registered = Some(state);
                Ok::<(), StoreError>(())
            })
            .await?;
        Ok(registered)
    }

    /// Where the projection stands in the store, registering it first if this domain
    /// has not yet.
    pub(crate) async fn register_projection(&self, entry: &ProjectionEntry) -> Result<ProjectionState, StoreError> {
        if let Some(state) = self.ensure_registered(entry).await? {
            return Ok(state);
        }
        self.store
            .projection_state(&entry.spec.name)
            .await?
            .ok_or_else(|| StoreError::Unsupported(format!("the store lost the projection `{}`", entry.spec.name)))
    }

    /// Where the projection a projector changes stands: its serving copy, and whether
    /// a rebuild runs. A serving copy with no rebuild is remembered until a conflict
    /// says otherwise ([`forget_projection_state`](Self::forget_projection_state)); a
    /// rebuild is never taken from memory (it may have finished).
    pub(crate) async fn projection_state(&self, route: &ProjectorRoute) -> Result<ProjectionState, StoreError> {
        let entry = self
            .projections
            .get(route.projection)
            .ok_or_else(|| StoreError::Unsupported(format!("no projection `{}` in this domain", route.projection)))?;
        if let Some(generation) = *entry.serving.lock().unwrap_or_else(std::sync::PoisonError::into_inner) {
            return Ok(ProjectionState {
                name: route.projection.to_owned(),
                version: entry.spec.version,
                generation,
                built_through: 0,
                checkpoint: 0,
                build: None,
                created: false,
            });
        }
        let state = self.register_projection(entry).await?;
        if state.build.is_none() {
            *entry.serving.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(state.generation);
        }
        Ok(state)
    }

    /// Forgets the remembered serving copies of every projection.
    pub(crate) fn forget_projection_states(&self) {
        for name in self.projections.keys() {
            self.forget_projection_state(name);
        }
    }

    /// Forgets the remembered serving copy of a projection (after a conflict or a switch).
    pub(crate) fn forget_projection_state(&self, projection: &str) {
        if let Some(entry) = self.projections.get(projection) {
            *entry.serving.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
    }

    /// Wakes the delivery workers: events were committed. One waiting worker loop wakes
    /// now, and one that is claiming at this moment finds a permit when it next waits.
    pub(crate) fn wake(&self) {
        self.signal.notify_waiters();
        self.signal.notify_one();
    }

    /// Counts a successful delivery to `handler`.
    pub(crate) fn count_delivered(&self, handler: &str) {
        if let Some(count) = self.delivered.get(handler) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The retry policy of `handler`.
    pub(crate) fn retry_policy(&self, handler: &str) -> RetryPolicy {
        self.delivery.per_handler.get(handler).copied().unwrap_or(self.delivery.retry)
    }

    /// Whether reactions run inline, in `process`.
    pub(crate) fn inline(&self) -> bool {
        self.delivery.mode == DeliveryMode::Inline
    }

    /// The store this engine writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// An event-sourced aggregate is snapshotted every this many events (0: never).
    pub fn snapshot_every(&self) -> u64 {
        self.snapshot_every
    }

    /// How many handlers take events of this type.
    pub fn handler_count(&self, type_name: &str) -> usize {
        self.events.get(type_name).map_or(0, Vec::len)
    }

    /// How many times a unit of work is run again after a version conflict.
    pub fn conflict_retries(&self) -> u32 {
        self.conflict_retries
    }
}

/// What a command's unit of work committed, and its handler's reply (a `C::Reply`).
pub type CommandOutcome = (Vec<Committed>, Box<dyn Any + Send>);

/// Runs a command's handler in a unit of work and commits it.
/// With `idempotent`, the command's id is recorded in its unit of work's transaction.
pub type CommandRoute = for<'a> fn(
    &'a Arc<Engine>,
    Box<dyn Any + Send>,
    Cause,
    bool,
) -> BoxFuture<'a, Result<CommandOutcome, ProcessError>>;

/// Runs one event handler in its own unit of work and commits it.
pub type EventRoute =
    for<'a> fn(&'a Arc<Engine>, &'a Envelope, &'static str) -> BoxFuture<'a, Result<Vec<Committed>, ProcessError>>;

/// Fires one scheduled command: decodes it as its command and processes it under its own id
/// (idempotently), caused by the event that sent it, in its conversation.
pub type FireRoute = for<'a> fn(&'a Arc<Engine>, &'a Scheduled) -> BoxFuture<'a, Result<(), ProcessError>>;

/// How the engine calls a handler method.
#[derive(Clone, Copy)]
pub enum Route {
    /// A command handler.
    Command(CommandRoute),
    /// An event handler (or a process manager's step).
    Event(EventRoute),
    /// A projector method.
    Project(ProjectorRoute),
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Route::Command(_) => "Route::Command",
            Route::Event(_) => "Route::Event",
            Route::Project(_) => "Route::Project",
        })
    }
}

/// One handler method, as `#[handler]` registers it.
#[derive(Debug)]
pub struct HandlerDescriptor {
    /// What the model knows of it: names, kind, the message it takes.
    pub info: HandlerInfo,
    /// How to run it.
    pub route: Route,
    /// For a command handler: how to fire its command when a process manager sent or
    /// scheduled it (decoded from JSON, processed under its own id).
    pub fire: Option<FireRoute>,
}

impl PartialEq for HandlerDescriptor {
    /// One handler method is one descriptor: compared by where it is declared.
    fn eq(&self, other: &Self) -> bool {
        self.info.id == other.info.id && self.info.module_path == other.info.module_path
    }
}

impl HandlerDescriptor {
    /// `Handler::method`, as errors and reports name it.
    pub fn name(&self) -> &'static str {
        self.info.id
    }
}

inventory::collect!(HandlerDescriptor);

/// Applies one event to a row set: what a projector method is, for delivery, inline
/// units and rebuilds alike.
pub type ProjectRoute = for<'a> fn(&'a mut RowSet, &'a Envelope) -> BoxFuture<'a, Result<(), ProcessError>>;

/// What a projector method registers beside its route: the projection it changes.
#[derive(Debug, Clone, Copy)]
pub struct ProjectorRoute {
    /// The projection's spec, read when the domain is built.
    pub spec: fn() -> ProjectionSpec,
    /// The projection's name.
    pub projection: &'static str,
    /// Runs in the unit of work that raised the event.
    pub inline: bool,
    /// Applies one event.
    pub apply: ProjectRoute,
}
