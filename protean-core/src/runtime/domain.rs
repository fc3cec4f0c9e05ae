//! The [`Domain`]: the checked model, the engine that runs it, and every operation an
//! application calls on it. [`DomainBuilder`] chooses its elements and its store.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use tracing::Instrument;
use uuid::Uuid;

use crate::model::element::{Aggregate, Command};
use crate::model::error::StoreError;
use crate::model::identity::Identifier;
use crate::registry::{registered, ElementDescriptor, MessageKind, Model, ModelError, ModelProblem};
use crate::runtime::context::{read_model, replayed, stream_of, Context, ReadModel};
use crate::runtime::engine::{DeliveryPolicy, Engine};
use crate::runtime::handler::{registered_handlers, HandlerDescriptor, Route};
use crate::runtime::idempotency::{first_outcome, ReplyType};
use crate::runtime::outcome::{Delivered, DeliveryFailure, ProcessError, Processed};
use crate::runtime::policy::{DeliveryMode, RetryPolicy};
use crate::runtime::projection::AsKey;
use crate::runtime::workers::{WorkerConfig, Workers};
use crate::store::{Cause, Envelope, MemoryStore, Store};

/// Chooses which registered elements and handlers form a domain, and where it keeps its data.
#[derive(Clone)]
pub struct DomainBuilder {
    modules: Vec<String>,
    store: Option<Arc<dyn Store>>,
    conflict_retries: u32,
    lease: std::time::Duration,
    snapshot_every: u64,
    mode: DeliveryMode,
    retry: RetryPolicy,
    per_handler: Vec<(String, RetryPolicy)>,
}

impl Default for DomainBuilder {
    fn default() -> Self {
        DomainBuilder {
            modules: Vec::new(),
            store: None,
            conflict_retries: 3,
            lease: std::time::Duration::from_secs(30),
            snapshot_every: 100,
            mode: DeliveryMode::Inline,
            retry: RetryPolicy::default(),
            per_handler: Vec::new(),
        }
    }
}

impl fmt::Debug for DomainBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainBuilder")
            .field("modules", &self.modules)
            .field("store", &self.store.as_ref().map(|_| "..."))
            .field("conflict_retries", &self.conflict_retries)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl DomainBuilder {
    /// Includes the elements declared in this module or below it (a `module_path!()`
    /// prefix, such as `"my_app::orders"`). With no module given, every registered
    /// element is included. A module in which (and below which) no element or handler
    /// is declared makes [`build`](Self::build) fail with [`BuildError::UnknownModule`].
    pub fn module(mut self, prefix: impl Into<String>) -> Self {
        self.modules.push(prefix.into());
        self
    }

    /// Keeps the domain's aggregates and events in `store` (by default a new
    /// [`MemoryStore`](crate::store::MemoryStore)).
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Shares a store with other domains or with code that inspects it.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// How many times a handler runs again, in a fresh unit of work, when its commit
    /// meets a version conflict (default 3). With 0, the first conflict is returned.
    pub fn conflict_retries(mut self, retries: u32) -> Self {
        self.conflict_retries = retries;
        self
    }

    /// How long [`Domain::deliver_pending`] holds the undelivered events it claims
    /// before another relay may claim them (default 30 s): longer than delivering a
    /// batch takes.
    pub fn delivery_lease(mut self, lease: std::time::Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Snapshots an event-sourced aggregate every `events` events (default 100; 0 never),
    /// so that loading replays at most that many events, however long the stream.
    pub fn snapshot_every(mut self, events: u64) -> Self {
        self.snapshot_every = events;
        self
    }

    /// When reactions run: [`DeliveryMode::Inline`] (the default) inside
    /// [`Domain::process`], or [`DeliveryMode::Background`], by the delivery
    /// [workers](Domain::workers) after `process` has returned.
    pub fn delivery(mut self, mode: DeliveryMode) -> Self {
        self.mode = mode;
        self
    }

    /// How delivery workers retry a failing handler, and what they do after its last
    /// attempt, for every handler without a policy of its own
    /// (default: [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The retry policy of one event handler, named as in reports and dead letters
    /// (`"InventoryReactions::reserve"`). [`build`](Self::build) fails when no event
    /// handler of the domain has that name.
    pub fn handler_policy(mut self, handler: impl Into<String>, policy: RetryPolicy) -> Self {
        self.per_handler.push((handler.into(), policy));
        self
    }

    /// Collects the matching descriptors and handlers and checks the model: what the
    /// compiler cannot see, such as a command with no handler or with two
    /// ([`BuildError::Model`]). A module given to [`module`](Self::module) that matches
    /// no registered element or handler is [`BuildError::UnknownModule`].
    pub fn build(self) -> Result<Domain, BuildError> {
        self.check_modules()?;
        Ok(self.checked_model()?)
    }

    /// [`build`](Self::build) once the modules are known to match.
    fn checked_model(self) -> Result<Domain, ModelError> {
        let included = |path: &str| self.modules.is_empty() || self.modules.iter().any(|m| in_module(path, m));
        let elements: Vec<&'static ElementDescriptor> = registered().filter(|d| included(d.module_path)).collect();
        let mut handlers: Vec<&'static HandlerDescriptor> =
            registered_handlers().filter(|h| included(h.info.module_path)).collect();
        // Delivery follows this order: the same in every run, whatever the link order.
        handlers.sort_by(|a, b| {
            (a.info.handler, a.info.method, a.info.module_path).cmp(&(
                b.info.handler,
                b.info.method,
                b.info.module_path,
            ))
        });
        let model = Model::checked(elements, handlers.iter().map(|h| h.info).collect(), |aggregate, event| {
            crate::runtime::sourcing::applier(aggregate, event).is_some()
        })?;
        let mut per_handler = foldhash::HashMap::default();
        let mut problems = Vec::new();
        for (name, policy) in &self.per_handler {
            match handlers.iter().find(|h| h.info.id == name && h.info.kind == MessageKind::Event) {
                Some(handler) => {
                    per_handler.insert(handler.info.id, *policy);
                }
                None => problems.push(ModelProblem {
                    element: name.clone(),
                    message: "a retry policy names an event handler this domain does not have: name it as \
                              `Handler::method`, as in `DeliveryFailure` reports"
                        .into(),
                }),
            }
        }
        if !problems.is_empty() {
            return Err(ModelError { problems });
        }
        let delivery = DeliveryPolicy { mode: self.mode, retry: self.retry, per_handler };
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let engine =
            Arc::new(Engine::new(store, &handlers, self.conflict_retries, self.lease, self.snapshot_every, delivery));
        Ok(Domain { model, engine })
    }
}

impl DomainBuilder {
    /// Refuses the first module given that no registered element or handler is declared
    /// in or below.
    fn check_modules(&self) -> Result<(), BuildError> {
        let declared = || registered().map(|d| d.module_path).chain(registered_handlers().map(|h| h.info.module_path));
        let Some(unknown) = self.modules.iter().find(|m| !declared().any(|path| in_module(path, m))) else {
            return Ok(());
        };
        // Every module that declares something, and the modules above it: any of them
        // would have matched.
        let mut known: Vec<String> = declared()
            .flat_map(|path| path.match_indices("::").map(|(end, _)| &path[..end]).chain([path]))
            .map(str::to_owned)
            .collect();
        known.sort_unstable();
        known.dedup();
        known.sort_by_cached_key(|candidate| edit_distance(unknown, candidate));
        Err(BuildError::UnknownModule { module: unknown.clone(), known })
    }
}

fn in_module(path: &str, prefix: &str) -> bool {
    path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with("::"))
}

/// The Levenshtein distance between `a` and `b`, by characters: how many characters to
/// insert, delete or replace to make one the other.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let replace = previous[j] + usize::from(ca != *cb);
            current[j + 1] = replace.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// Why [`DomainBuilder::build`] refused to build a domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A module given to [`DomainBuilder::module`] in which, and below which, no
    /// registered element or handler is declared: a misspelt path, or one that is not
    /// what `module_path!()` gives where the elements are declared (it starts with the
    /// crate's name, `my_app::orders`, not `crate::orders`).
    #[error("{}", unknown_module(module, known))]
    UnknownModule {
        /// The module given.
        module: String,
        /// The modules that declare registered elements or handlers, and the modules
        /// above them: what `module` may name. The closest to `module` (fewest characters
        /// to change) first.
        known: Vec<String>,
    },
    /// The chosen elements break rules of the model the compiler cannot see.
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl BuildError {
    /// The model's problems, when that is what refused the domain.
    pub fn model(&self) -> Option<&ModelError> {
        match self {
            BuildError::Model(error) => Some(error),
            BuildError::UnknownModule { .. } => None,
        }
    }
}

/// How many known modules [`BuildError::UnknownModule`]'s message lists.
const MODULES_LISTED: usize = 8;

fn unknown_module(module: &str, known: &[String]) -> String {
    let mut message = format!(
        "no registered element or handler is declared in module `{module}` or below it: \
         `DomainBuilder::module` takes a `module_path!()` prefix"
    );
    if known.is_empty() {
        message.push_str(", and no element is registered in this program");
        return message;
    }
    let listed: Vec<String> = known.iter().take(MODULES_LISTED).map(|m| format!("`{m}`")).collect();
    message.push_str("; the modules that have some are, closest first: ");
    message.push_str(&listed.join(", "));
    if known.len() > MODULES_LISTED {
        message.push_str(&format!(" (and {} more)", known.len() - MODULES_LISTED));
    }
    message
}

/// A domain: the checked model built from the registry, its handlers, and the engine
/// that processes commands against a store. Cloning it is cheap and shares the engine.
///
/// ```
/// # extern crate protean_core as protean;
/// use protean::runtime::{BuildError, Domain};
///
/// // A module that declares nothing is refused, naming the modules that do.
/// let error = Domain::builder().module("no::such::module").build().unwrap_err();
/// assert!(matches!(error, BuildError::UnknownModule { .. }));
/// ```
#[derive(Debug, Clone)]
pub struct Domain {
    model: Model,
    engine: Arc<Engine>,
}

impl Domain {
    /// Starts choosing elements from the registry.
    pub fn builder() -> DomainBuilder {
        DomainBuilder::default()
    }

    /// Every registered element, checked.
    pub fn from_registry() -> Result<Domain, ModelError> {
        // No module is given, so none is unknown: only the model is checked.
        Self::builder().checked_model()
    }

    /// The checked model: elements, handler methods, clusters, and the exports.
    pub fn model(&self) -> &Model {
        &self.model
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The store this domain keeps its aggregates and events in.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.engine.store()
    }

    /// Closes the domain's store, for every clone of the domain (see [`Store::close`]):
    /// the work already sent to it is done, what it holds is released (SQLite checkpoints
    /// its WAL and leaves no `-wal` file; PostgreSQL closes its connections), and from
    /// then on every operation that reaches the store fails with [`StoreError::Closed`].
    /// Call it at the end of a run, after [shutting down](crate::runtime::WorkerHandle::shutdown)
    /// the delivery workers, which use the store. The memory store has nothing to close
    /// and stays usable.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.engine.store().close().await
    }

    /// Processes a command: validates it, runs its handler in a unit of work, commits the
    /// one aggregate it changed (with an optimistic version check, retried on conflict),
    /// then, in [inline](DeliveryMode::Inline) delivery, delivers the raised events to
    /// their handlers. In [background](DeliveryMode::Background) delivery it returns once
    /// the unit of work is committed, and the [workers](Self::workers) deliver.
    ///
    /// Returns an error when the command is refused or cannot be committed. On success
    /// the [`Processed`] outcome carries the handler's reply (what the command declares
    /// with `returns = T`); failures of the event handlers after the commit (inline) are
    /// reported in [`Processed::failures`] and kept for [`retry_failed`](Self::retry_failed),
    /// and [`Processed::all_delivered`] turns them into an error.
    ///
    /// The command gets a fresh id; to make a command idempotent, give it an id with
    /// [`process_with`](Self::process_with).
    pub async fn process<C: Command>(&self, command: C) -> Result<Processed<C::Reply>, ProcessError> {
        let command_id = Uuid::now_v7();
        self.process_as(command, Cause::command(command_id), false).await
    }

    /// [`process`](Self::process) with the command's id given (a client's idempotency
    /// key), and optionally the correlation id of the conversation it continues.
    ///
    /// The id is recorded in the unit of work's transaction, with the reply: a command
    /// with an id already processed (a client retrying, in this process or another,
    /// even at the same moment) changes nothing, and is handed the first outcome (its
    /// reply, and what it wrote, read back). A command that was refused recorded
    /// nothing: sent again, it runs again.
    pub async fn process_with<C: Command>(
        &self,
        command: C,
        command_id: Uuid,
        correlation_id: Option<Uuid>,
    ) -> Result<Processed<C::Reply>, ProcessError> {
        let cause = Cause { causation_id: command_id, correlation_id: correlation_id.unwrap_or(command_id) };
        self.process_as(command, cause, true).await
    }

    pub(crate) async fn process_as<C: Command>(
        &self,
        command: C,
        cause: Cause,
        idempotent: bool,
    ) -> Result<Processed<C::Reply>, ProcessError> {
        let span = tracing::info_span!(
            "command",
            command = C::TYPE_NAME,
            command_id = %cause.causation_id,
            correlation_id = %cause.correlation_id,
            attempt = tracing::field::Empty,
        );
        let outcome = self.run_command(command, cause, idempotent).instrument(span.clone()).await;
        if let Err(error) = &outcome {
            span.in_scope(|| match error {
                ProcessError::Rejected { .. } | ProcessError::RejectedByProjector { .. } => {
                    tracing::info!(error = error as &dyn std::error::Error, "command rejected")
                }
                _ => tracing::warn!(error = error as &dyn std::error::Error, "command failed"),
            });
        }
        outcome
    }

    async fn run_command<C: Command>(
        &self,
        command: C,
        cause: Cause,
        idempotent: bool,
    ) -> Result<Processed<C::Reply>, ProcessError> {
        self.engine.run_command(command, cause, idempotent).await
    }

    /// A unit of work for application code (seeding data, a migration, an admin task):
    /// load, add or remove aggregates of `A`, then [`commit`](Context::commit) it.
    pub fn unit_of_work<A: Aggregate>(&self) -> Context<A> {
        Context::new(Arc::clone(&self.engine), Cause::command(Uuid::now_v7()), A::NAME)
    }

    /// A copy of an aggregate as stored, for reading (a query, a test). Change
    /// aggregates through commands or a [`unit_of_work`](Self::unit_of_work).
    pub async fn get<A: Aggregate>(&self, id: &Identifier<A>) -> Result<Option<A>, ProcessError> {
        let mut ctx = self.unit_of_work::<A>();
        Ok(ctx.find(id).await.map_err(|e| ProcessError::from_domain(A::NAME, e))?.map(|a| a.clone()))
    }

    /// An event-sourced aggregate as it was after the event with sequence `up_to`:
    /// rebuilt from the latest snapshot at or before it and the events up to it.
    /// `Ok(None)` when the aggregate does not exist.
    pub async fn get_as_of<A: Aggregate>(&self, id: &Identifier<A>, up_to: u64) -> Result<Option<A>, ProcessError> {
        let stream = stream_of(id);
        let store = self.engine.store.as_ref();
        if store.load(&stream).await?.is_none() {
            return Ok(None);
        }
        let state = replayed::<A>(store, &stream, id, Some(up_to)).await?;
        Ok(Some(state))
    }

    /// The events an aggregate raised, in order, as stored.
    pub async fn events_of<A: Aggregate>(&self, id: &Identifier<A>) -> Result<Vec<Envelope>, ProcessError> {
        Ok(self.engine.store.stream(&stream_of(id)).await?)
    }

    /// Delivers already committed events (read back from the store, or built by a test)
    /// to their handlers, as if they had just been raised.
    pub async fn deliver(&self, events: Vec<Envelope>) -> Delivered {
        self.engine.deliver(events).await
    }

    /// Delivers what the store holds undelivered: events committed by a process that
    /// stopped before delivering them, or whose handlers failed. Each stream's events
    /// come in order; handlers that already handled an event skip it (their handled
    /// messages are recorded in their own transactions), so delivery is at least once
    /// and the effects happen once. Call it when the application starts, and from time
    /// to time. Returns what was delivered and what failed.
    pub async fn deliver_pending(&self) -> Result<Delivered, ProcessError> {
        self.engine.deliver_pending().await
    }

    /// Every delivery that failed and has not been retried successfully yet.
    pub fn failed_deliveries(&self) -> Vec<DeliveryFailure> {
        self.engine.failures().clone()
    }

    /// Delivers each failed event again to the handler that failed on it. Returns the
    /// events delivered; what fails again stays in
    /// [`failed_deliveries`](Self::failed_deliveries) and is returned as well.
    pub async fn retry_failed(&self) -> Delivered {
        self.engine.retry_failed().await
    }

    /// Delivery workers for this domain, to [`start`](Workers::start) on the current
    /// tokio runtime: they deliver what the outbox holds, in any
    /// [delivery mode](DeliveryMode). Start them in every process that should share the
    /// work: on PostgreSQL any number of processes may, each stream being worked by one
    /// worker at a time.
    pub fn workers(&self, config: WorkerConfig) -> Workers {
        Workers::new(Arc::clone(&self.engine), config)
    }

    /// How reactions are delivered in this domain.
    pub fn delivery_mode(&self) -> DeliveryMode {
        self.engine.delivery.mode
    }

    /// A read model by key (of its key type, [`ReadModel::Key`]).
    pub async fn read_model<V: ReadModel>(
        &self,
        key: &(impl AsKey<V::Key> + ?Sized),
    ) -> Result<Option<V>, ProcessError> {
        Ok(read_model::<V>(&self.engine, &key.key_text()).await?)
    }

    /// Writes a read model (from a projection or application code) under `key` (of its
    /// key type, [`ReadModel::Key`]).
    pub async fn put_read_model<V: ReadModel>(
        &self,
        key: &(impl AsKey<V::Key> + ?Sized),
        value: &V,
    ) -> Result<(), ProcessError> {
        let json = serde_json::to_string(value)
            .map_err(|e| StoreError::Serialize { what: format!("read model {}", V::NAME), reason: e.to_string() })?;
        Ok(self.engine.store.put_read_model(V::NAME, &key.key_text(), json).await?)
    }
}

impl Engine {
    /// Runs command `C` through its handler: the command is checked here, the rest is
    /// `run_erased`, compiled once in this crate rather than once per command type in
    /// the crate of every `#[handler]` (whose scheduled commands fire through here).
    pub(crate) async fn run_command<C: Command>(
        self: &Arc<Self>,
        command: C,
        cause: Cause,
        idempotent: bool,
    ) -> Result<Processed<C::Reply>, ProcessError> {
        let command = Self::checked_command(command)?;
        let processed = self.run_erased(C::TYPE_NAME, command, cause, idempotent, ReplyType::of::<C>()).await?;
        let Processed { reply, command_id, committed, events, failures } = processed;
        // Checked by `run_erased`: it is the command's reply.
        let reply = *reply.downcast::<C::Reply>().map_err(|_| ProcessError::Unhandled(C::TYPE_NAME))?;
        Ok(Processed { reply, command_id, committed, events, failures })
    }

    /// The command, boxed, once its fields and invariants are checked: refused otherwise.
    pub(crate) fn checked_command<C: Command>(command: C) -> Result<Box<dyn Any + Send>, ProcessError> {
        command.validate().map_err(|e| ProcessError::Rejected { type_name: C::TYPE_NAME, error: e.into() })?;
        Ok(Box::new(command))
    }

    /// [`run_command`](Self::run_command) of a checked command of type `type_name`,
    /// boxed, whose reply is of type `reply`.
    pub(crate) async fn run_erased(
        self: &Arc<Self>,
        type_name: &'static str,
        command: Box<dyn Any + Send>,
        cause: Cause,
        idempotent: bool,
        reply_type: ReplyType,
    ) -> Result<Processed<Box<dyn Any + Send>>, ProcessError> {
        let engine = self;
        let handler = engine.commands.get(type_name).ok_or(ProcessError::Unhandled(type_name))?;
        let Route::Command(route) = handler.route else { return Err(ProcessError::Unhandled(type_name)) };
        let command_id = cause.causation_id;
        if idempotent {
            if let Some(first) = first_outcome(engine.store.as_ref(), type_name, command_id, reply_type).await? {
                tracing::info!("a copy of a command already processed: handing back its first outcome");
                return Ok(first);
            }
        }
        let (committed, reply) = match route(engine, command, cause, idempotent).await {
            Ok(done) => done,
            // A copy racing the first (here or in another process) may be refused by the
            // state the first left, or by its recorded id: either way, the first outcome.
            Err(error) if idempotent => {
                match first_outcome(engine.store.as_ref(), type_name, command_id, reply_type).await? {
                    Some(first) => return Ok(first),
                    None => return Err(error),
                }
            }
            Err(error) => return Err(error),
        };
        if !(reply_type.is)(reply.as_ref()) {
            return Err(ProcessError::Unhandled(type_name));
        }
        if engine.inline() {
            return Ok(engine.deliver_committed(command_id, committed).await.with_reply(reply));
        }
        let events = committed.iter().flat_map(|c| c.events.iter().cloned()).collect();
        Ok(Processed { reply, command_id, committed, events, failures: Vec::new() })
    }
}
