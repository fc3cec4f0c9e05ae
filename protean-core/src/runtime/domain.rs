//! The [`Domain`]: the checked model, the engine that runs it, and every operation an
//! application calls on it. [`DomainBuilder`] chooses its elements and its store.

use std::any::Any;
use std::sync::Arc;

use tracing::Instrument;
use uuid::Uuid;

use crate::model::element::{Aggregate, Command};
use crate::model::error::StoreError;
use crate::model::identity::Identifier;
use crate::registry::{CheckConfig, Diagnostic, Model, ModelError, StoreFacts};
use crate::runtime::builder::{BuildError, DomainBuilder};
use crate::runtime::context::{read_model, replayed, stream_of, Context};
use crate::runtime::engine::{Engine, Route};
use crate::runtime::health::{self, DeliveryStatus, Redelivered};
use crate::runtime::idempotency::{first_outcome, ReplyType};
use crate::runtime::outcome::{Delivered, DeliveryFailure, ProcessError, Processed};
use crate::runtime::policy::DeliveryMode;
use crate::runtime::process_manager::{self, Fired, ProcessManager};
use crate::runtime::projection::{read_row, Projection};
use crate::runtime::query::{query_of, Query};
use crate::runtime::read_model::{AsKey, ProjectionKey, ReadModel};
use crate::runtime::trace::{self, Trace};
use crate::runtime::views::{self, ProjectionStatus, Rebuild, RebuildReport};
use crate::runtime::workers::{WorkerConfig, Workers};
use crate::store::{Cause, Envelope, FailedDelivery, FailureQuery, OffsetDateTime, Scheduled, Store};

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
        let (model, engine) = Self::builder().checked_parts()?;
        Ok(Domain { model, engine })
    }

    /// The checked model: elements, handler methods, clusters, and the exports.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model's diagnostics as `config` asks for them: [`Model::diagnose_with`],
    /// with the findings computed elsewhere that `config` carries, and the contract's
    /// ([`contract::findings`](crate::contract::findings): upcaster gaps, and with
    /// [`CheckConfig::lock`] the changes from the contract lock). What `ops check`
    /// reports.
    pub fn check(&self, config: &CheckConfig) -> Vec<Diagnostic> {
        let contract = crate::contract::findings(&self.model, config.lock_path());
        self.model.diagnose_with(&config.clone().extra(contract))
    }

    /// What the store holds for the rules that read it (`W003 event-never-stored`,
    /// `E004 scheduled-command-without-handler`), to hand to
    /// [`CheckConfig::store_facts`]: one count of stored events per event type of the
    /// model (each a count over the event log), and the pending scheduled commands by
    /// type, among the first 100 000 earliest due.
    pub async fn store_facts(&self) -> Result<StoreFacts, ProcessError> {
        health::store_facts(&self.engine, &self.model).await
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The store this domain keeps its aggregates and events in.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.engine.store()
    }

    /// Closes the domain's store, for every clone of the domain (see [`Records::close`](crate::store::Records::close)):
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
        let started = std::time::Instant::now();
        let outcome = self.run_command(command, cause, idempotent).instrument(span.clone()).await;
        self.engine.metrics.command_done(C::TYPE_NAME, &outcome, started);
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

impl DomainBuilder {
    /// Collects the matching descriptors and handlers and checks the model: what the
    /// compiler cannot see, such as a command with no handler or with two
    /// ([`BuildError::Model`]). A module given to [`module`](Self::module) that matches
    /// no registered element or handler is [`BuildError::UnknownModule`].
    pub fn build(self) -> Result<Domain, BuildError> {
        self.check_modules()?;
        let (model, engine) = self.checked_parts()?;
        Ok(Domain { model, engine })
    }
}

// Reading and rebuilding projections (the work is in `views.rs`).
impl Domain {
    /// The row of projection `V` under `key` (of `V`'s key type), from the copy serving
    /// reads.
    pub async fn projection<V: Projection>(
        &self,
        key: &(impl AsKey<V::Key> + ?Sized),
    ) -> Result<Option<V>, ProcessError> {
        Ok(read_row::<V>(self.engine(), V::NAME, &key.key_text()).await?)
    }

    /// A query over the rows of projection `V`, executed by the store; see [`Query`]. It
    /// returns at most 1,000 rows unless [`Query::limit`] says otherwise;
    /// [`Query::fetch_page`] says whether more follow.
    pub fn query<V: Projection>(&self) -> Query<V> {
        query_of::<V, ProcessError>(Arc::clone(self.engine()), None)
    }

    /// A blue/green rebuild of projection `V` from the event log; see [`Rebuild`].
    pub fn rebuild<V: Projection>(&self) -> Rebuild {
        views::rebuild_named(&self.engine, V::NAME)
    }

    /// A blue/green rebuild of the projection named `name` (its `Projection::NAME`,
    /// as an operator types it); see [`Rebuild`]. [`QueryError::UnknownProjection`]
    /// (listing the names there are) when this domain has no projection of that name.
    ///
    /// [`QueryError::UnknownProjection`]: crate::runtime::QueryError::UnknownProjection
    pub fn rebuild_by_name(&self, name: &str) -> Result<Rebuild, ProcessError> {
        Ok(views::rebuild_by_name(&self.engine, name)?)
    }

    /// Where projection `V` stands.
    pub async fn projection_status<V: Projection>(&self) -> Result<ProjectionStatus, ProcessError> {
        views::projection_status(&self.engine, V::NAME).await
    }

    /// Where every projection of this domain stands, by name: what an operator's
    /// `ops projections status` shows.
    pub async fn projection_statuses(&self) -> Result<Vec<ProjectionStatus>, ProcessError> {
        views::projection_statuses(&self.engine).await
    }

    /// Rebuilds every projection that needs it: its declared version differs from the
    /// serving copy's, this domain created it over a log that already had events of its
    /// types, or a rebuild of it was left unfinished (resumed once its builder's lease ran
    /// out). Returns what was rebuilt. Delivery workers run this when they start.
    pub async fn rebuild_outdated(&self) -> Result<Vec<RebuildReport>, ProcessError> {
        views::rebuild_outdated(&self.engine).await
    }
}

// Dead letters and health (the work is in `health.rs`).
impl Domain {
    /// The delivery lag, the undelivered count, the retries, dead letters and held events
    /// in all and of each handler, and each handler's deliveries: a few indexed reads,
    /// for a health endpoint.
    pub async fn delivery_status(&self) -> Result<DeliveryStatus, ProcessError> {
        health::delivery_status(&self.engine).await
    }

    /// The failed deliveries kept in the store that match `query` (retrying, dead or
    /// held), in the order their events were stored.
    pub async fn delivery_failures(&self, query: FailureQuery) -> Result<Vec<FailedDelivery>, ProcessError> {
        health::delivery_failures(&self.engine, query).await
    }

    /// The dead letters (up to 1,000), in the order their events were stored.
    pub async fn dead_letters(&self) -> Result<Vec<FailedDelivery>, ProcessError> {
        health::dead_letters(&self.engine).await
    }

    /// The failed delivery of `event_id` to `handler`, whatever its status, to inspect:
    /// looked up by its key in the store.
    pub async fn dead_letter(&self, handler: &str, event_id: Uuid) -> Result<Option<FailedDelivery>, ProcessError> {
        Ok(self.engine.store.failed_delivery(handler, event_id).await?)
    }

    /// Delivers a dead letter again to its handler, once (after the handler or the data
    /// was fixed). On success it is forgotten and, when the handler holds its streams,
    /// the events held behind it are delivered in order (stopping at one that fails,
    /// which becomes the stream's dead letter). On failure it stays dead, with one more
    /// attempt and the new error.
    ///
    /// A held delivery with no dead letter (nor retried failure) of its handler and
    /// stream ahead of it, one whose dead letter is gone (as an older protean could
    /// leave it), is *stranded*: redelivering it delivers the held events of its stream
    /// from the first, in order, the same way.
    ///
    /// [`ProcessError::NoDeadLetter`] when there is no such dead letter or stranded held
    /// delivery (a held one waits behind its dead letter: redeliver that one).
    pub async fn redeliver(&self, handler: &str, event_id: Uuid) -> Result<Redelivered, ProcessError> {
        health::redeliver(&self.engine, handler, event_id).await
    }

    /// [`redeliver`](Self::redeliver)s every dead letter (up to 1,000 a call), oldest event
    /// first; then releases the streams whose held deliveries have no dead letter ahead
    /// (stranded, among the first 1,000 held ones).
    pub async fn redeliver_all(&self) -> Result<Redelivered, ProcessError> {
        health::redeliver_all(&self.engine).await
    }

    /// The old name of [`redeliver`](Self::redeliver).
    #[deprecated(since = "0.2.0", note = "renamed `redeliver`: a dead letter is redelivered, not replayed")]
    pub async fn replay(&self, handler: &str, event_id: Uuid) -> Result<Redelivered, ProcessError> {
        self.redeliver(handler, event_id).await
    }

    /// The old name of [`redeliver_all`](Self::redeliver_all).
    #[deprecated(since = "0.2.0", note = "renamed `redeliver_all`")]
    pub async fn replay_all(&self) -> Result<Redelivered, ProcessError> {
        self.redeliver_all().await
    }

    /// Gives up on a dead letter: its handler never gets the event. When the handler
    /// holds its streams, the events held behind it are delivered now, in order. A
    /// stranded held delivery (see [`redeliver`](Self::redeliver)) is given up on the same way.
    /// [`ProcessError::NoDeadLetter`] when there is no such dead letter or stranded held
    /// delivery.
    pub async fn discard(&self, handler: &str, event_id: Uuid) -> Result<Redelivered, ProcessError> {
        health::discard(&self.engine, handler, event_id).await
    }
}

// Process managers' commands and flows (the work is in `process_manager.rs`).
impl Domain {
    /// Fires the commands process managers sent or scheduled that are due now. Delivery
    /// workers do this on their own; inline delivery fires sent commands as part of
    /// delivering; call it for deadlines when no workers run.
    pub async fn fire_due_commands(&self) -> Result<Fired, ProcessError> {
        self.fire_due_commands_at(OffsetDateTime::now_utc()).await
    }

    /// [`fire_due_commands`](Self::fire_due_commands) as if it were `now`: deadlines due
    /// by then fire (tests use it to let time pass).
    pub async fn fire_due_commands_at(&self, now: OffsetDateTime) -> Result<Fired, ProcessError> {
        Ok(self.engine.fire_due(now, 100, self.engine.lease).await?)
    }

    /// The commands flow `key` of process manager `P` sent or scheduled that have not
    /// fired yet, earliest first. `key` is the value of the correlation field
    /// (`&order_id`, or its text).
    ///
    /// A command is taken off the list just after its own unit of work commits, in a
    /// write of its own: a reader that sees the command's effects (in background mode,
    /// where workers fire it) may still find it listed for a moment. Firing it again
    /// then changes nothing: a fired command is idempotent by its id.
    pub async fn pending_commands<P: ProcessManager>(
        &self,
        key: &(impl ProjectionKey + ?Sized),
    ) -> Result<Vec<Scheduled>, ProcessError> {
        Ok(self.store().scheduled_of(P::NAME, &key.key_text()).await?)
    }

    /// The state of flow `key` of process manager `P`, and whether it ended; `None`
    /// when no such flow started. `key` is the value of the correlation field
    /// (`&order_id`, or its text).
    pub async fn flow<P: ProcessManager>(
        &self,
        key: &(impl ProjectionKey + ?Sized),
    ) -> Result<Option<(P, bool)>, ProcessError> {
        process_manager::flow_of::<P>(&self.engine, &key.key_text()).await
    }

    /// The causal chain of the conversation `correlation_id` (the id of its first
    /// command): its command, the events it raised, what their handlers raised, the
    /// commands process managers sent, and so on, as a tree by causation id; commands
    /// process managers sent that are still scheduled hang under the event that sent
    /// them.
    ///
    /// It reads the whole event log, a page at a time (by log position), to find the conversation's
    /// events: its cost grows with the log (O(events)), so it is for an operator's
    /// question, not for a request path. The pending commands are found among the first
    /// 10 000 pending ones (earliest due first) of every conversation. An unknown id
    /// gives an empty trace.
    pub async fn trace(&self, correlation_id: Uuid) -> Result<Trace, ProcessError> {
        trace::trace(&self.engine, correlation_id).await
    }

    /// Up to `limit` commands that process managers of every kind sent or scheduled and
    /// that have not fired yet, earliest due first: what `ops scheduled list` shows.
    pub async fn scheduled_commands(&self, limit: usize) -> Result<Vec<Scheduled>, ProcessError> {
        Ok(self.store().pending_scheduled(limit).await?)
    }

    /// Cancels the pending scheduled command `id` (its [`Scheduled::id`]): it never
    /// fires. `false` when there is none: fired, cancelled, or never scheduled. A worker
    /// that claimed it a moment before may still fire it once.
    pub async fn cancel_scheduled(&self, id: Uuid) -> Result<bool, ProcessError> {
        let cancelled = self.store().cancel_scheduled(id).await?;
        if cancelled {
            tracing::info!(%id, "a scheduled command was cancelled");
        }
        Ok(cancelled)
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
