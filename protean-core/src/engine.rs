//! The engine behind [`Domain::process`]: routes a command to its one handler, runs it
//! in a unit of work, commits, and delivers the raised events to their handlers, each
//! in its own unit of work, keeping every delivery that failed so it can be retried.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use foldhash::{HashMap, HashMapExt};
use uuid::Uuid;

use crate::context::{stream_of, Context, ReadModel};
use crate::element::{Aggregate, Command};
use crate::envelope::{Cause, Envelope};
use crate::error::DomainError;
use crate::handler::{HandlerDescriptor, MessageKind, Route};
use crate::identity::Identifier;
use crate::model::Domain;
use crate::store::{Committed, Store, StoreError, VersionConflict};

/// Why processing a command (or delivering an event) failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProcessError {
    /// The command or event was refused: invalid fields, a broken invariant, a business
    /// rule, something not found. Nothing was written.
    #[error("`{type_name}` was rejected: {error}")]
    Rejected {
        /// The stable type name of the command or event refused (`"Order.PlaceOrder"`).
        type_name: &'static str,
        /// Why.
        error: DomainError,
    },
    /// Another unit of work changed the aggregate first, on every attempt allowed.
    #[error(transparent)]
    Conflict(#[from] VersionConflict),
    /// No handler takes this command in this domain.
    #[error(
        "no handler takes the command `{0}`: add a method taking it to a `#[handler(part_of = ..)]` of its aggregate"
    )]
    Unhandled(&'static str),
    /// Loading or saving failed.
    #[error(transparent)]
    Store(StoreError),
    /// The command committed, but handlers reacting to its events failed: what
    /// [`Processed::all_delivered`] makes of a [`Processed`] with failures. The events
    /// are kept, and [`Domain::retry_failed`] delivers them again.
    #[error("{} reaction(s) failed: {}", failures.len(), failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    ReactionsFailed {
        /// Each failed delivery.
        failures: Vec<DeliveryFailure>,
    },
}

impl From<StoreError> for ProcessError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(conflict) => ProcessError::Conflict(conflict),
            other => ProcessError::Store(other),
        }
    }
}

impl ProcessError {
    /// Classifies a handler's error: store failures stay store failures, the rest is a rejection.
    pub fn from_domain(message: &'static str, error: DomainError) -> Self {
        match error {
            DomainError::Store(store) => store.into(),
            error => ProcessError::Rejected { type_name: message, error },
        }
    }

    /// The domain error of a rejection.
    pub fn rejection(&self) -> Option<&DomainError> {
        match self {
            ProcessError::Rejected { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// An event one handler failed to handle. The event is kept, and
/// [`Domain::retry_failed`] delivers it to that handler again.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryFailure {
    /// The handler method that failed.
    pub handler: &'static HandlerDescriptor,
    /// The event it was given.
    pub event: Envelope,
    /// What went wrong on the last attempt.
    pub error: ProcessError,
}

impl std::fmt::Display for DeliveryFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed on {} #{} of {}: {}",
            self.handler.name(),
            self.event.type_name,
            self.event.sequence,
            self.event.stream,
            self.error
        )
    }
}

/// What processing a command did, and what its handler handed back.
///
/// The command is committed once `process` returns `Ok`, but the handlers reacting to
/// its events may have failed: [`failures`](Self::failures) lists them. Use the outcome
/// ([`all_delivered`](Self::all_delivered) turns any failure into an error).
#[derive(Debug, Clone, PartialEq)]
#[must_use = "reactions to the command may have failed: call `.all_delivered()?`, or check `failures`"]
pub struct Processed<R = ()> {
    /// The handler's reply: the `returns = T` the command declares, `()` otherwise.
    pub reply: R,
    /// The id of the command (the correlation id of everything that followed).
    pub command_id: Uuid,
    /// What the command's own unit of work wrote (nothing when it changed nothing).
    pub committed: Vec<Committed>,
    /// Every event raised: the command's first, then those of the handlers that
    /// reacted, in delivery order.
    pub events: Vec<Envelope>,
    /// Deliveries that failed; also kept by the domain until retried.
    pub failures: Vec<DeliveryFailure>,
}

impl<R> Processed<R> {
    /// The type names of all events raised, in order.
    pub fn event_types(&self) -> Vec<&str> {
        self.events.iter().map(|e| &*e.type_name).collect()
    }

    /// `Ok(())` when every reaction succeeded; otherwise
    /// [`ProcessError::ReactionsFailed`] with the failures (the command itself stays
    /// committed, and the failed events are kept for [`Domain::retry_failed`]).
    ///
    /// `domain.process(command).await?.all_delivered()?;`
    pub fn all_delivered(&self) -> Result<(), ProcessError> {
        failed(&self.failures)
    }

    /// The same outcome with another reply.
    pub(crate) fn with_reply<T>(self, reply: T) -> Processed<T> {
        let Processed { reply: _, command_id, committed, events, failures } = self;
        Processed { reply, command_id, committed, events, failures }
    }
}

/// What a delivery run did: the events delivered and the deliveries that failed.
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use = "deliveries may have failed: check `failures`"]
pub struct Delivered {
    /// Every event delivered, with those the handlers raised in turn, in delivery order.
    pub events: Vec<Envelope>,
    /// Deliveries that failed; also kept by the domain until retried.
    pub failures: Vec<DeliveryFailure>,
}

impl Delivered {
    /// `Ok(())` when no delivery failed; otherwise [`ProcessError::ReactionsFailed`]
    /// with the failures (kept for [`Domain::retry_failed`] as well).
    pub fn all_delivered(&self) -> Result<(), ProcessError> {
        failed(&self.failures)
    }
}

fn failed(failures: &[DeliveryFailure]) -> Result<(), ProcessError> {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ProcessError::ReactionsFailed { failures: failures.to_vec() })
    }
}

/// The runtime half of a [`Domain`]: store, routes and retry policy.
pub struct Engine {
    store: Arc<dyn Store>,
    commands: HashMap<&'static str, &'static HandlerDescriptor>,
    events: HashMap<&'static str, Vec<&'static HandlerDescriptor>>,
    conflict_retries: u32,
    lease: std::time::Duration,
    snapshot_every: u64,
    failures: Mutex<Vec<DeliveryFailure>>,
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
    ) -> Self {
        let mut commands = HashMap::new();
        let mut events: HashMap<&'static str, Vec<&'static HandlerDescriptor>> = HashMap::new();
        for &handler in handlers {
            match handler.kind {
                MessageKind::Command => {
                    commands.insert(handler.type_name, handler);
                }
                MessageKind::Event => events.entry(handler.type_name).or_default().push(handler),
            }
        }
        Engine { store, commands, events, conflict_retries, lease, snapshot_every, failures: Mutex::new(Vec::new()) }
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

    fn failures(&self) -> MutexGuard<'_, Vec<DeliveryFailure>> {
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) async fn read_model<V: ReadModel>(&self, key: &str) -> Result<Option<V>, StoreError> {
        let Some(json) = self.store.read_model(V::NAME, key).await? else { return Ok(None) };
        let stream = crate::envelope::StreamId::new(V::NAME, key);
        serde_json::from_str(&json).map(Some).map_err(|e| StoreError::corrupt(&stream, 0, e.to_string()))
    }

    /// Delivers the events of a commit (and, breadth first, those their handlers raise).
    pub(crate) async fn deliver_committed(self: &Arc<Self>, command_id: Uuid, committed: Vec<Committed>) -> Processed {
        let first = committed.iter().flat_map(|c| c.events.iter().cloned()).collect();
        let Delivered { events, failures } = self.deliver(first).await;
        Processed { reply: (), command_id, committed, events, failures }
    }

    /// Delivers `events` to every handler of each, then what those handlers raised, and
    /// so on; returns every event delivered and every failure (also kept for retrying).
    pub(crate) async fn deliver(self: &Arc<Self>, events: Vec<Envelope>) -> Delivered {
        self.deliver_checked(events, false).await
    }

    /// [`deliver`](Self::deliver); with `redelivery`, handlers that already handled an
    /// event are skipped. Events every handler took are marked delivered in the store.
    async fn deliver_checked(self: &Arc<Self>, events: Vec<Envelope>, redelivery: bool) -> Delivered {
        let mut queue: VecDeque<Envelope> = events.into();
        let mut delivered = Vec::with_capacity(queue.len());
        let mut done = Vec::with_capacity(queue.len());
        let mut failures = Vec::new();
        // A stream whose event failed waits: its later events are not delivered before it.
        let mut stalled: std::collections::HashSet<crate::envelope::StreamId> = std::collections::HashSet::new();
        while let Some(event) = queue.pop_front() {
            if stalled.contains(&event.stream) {
                continue; // left undelivered; `deliver_pending` brings it in order
            }
            let mut complete = true;
            let handlers = self.events.get(&*event.type_name).map(Vec::as_slice).unwrap_or_default();
            // Fresh events with no handler, or whose only handler succeeded, were marked
            // delivered in the transaction that wrote them or handled them.
            let marked = !redelivery && handlers.len() <= 1;
            for &handler in handlers {
                if redelivery && matches!(self.store.is_handled(handler.id, event.id).await, Ok(true)) {
                    continue;
                }
                match self.run_event_handler(handler, &event).await {
                    Ok(committed) => queue.extend(committed.into_iter().flat_map(|c| c.events)),
                    Err(error) => {
                        complete = false;
                        failures.push(DeliveryFailure { handler, event: event.clone(), error });
                    }
                }
            }
            if !complete {
                stalled.insert(event.stream.clone());
            } else if !marked {
                done.push(event.id);
            }
            delivered.push(event);
        }
        if !done.is_empty() {
            // Not marking is safe: the events are claimed again later, and the handlers
            // that took them skip them.
            let _ = self.store.mark_delivered(done).await;
        }
        if !failures.is_empty() {
            let mut kept = self.failures();
            for failure in &failures {
                // One entry per handler and event: the latest error.
                let same = |f: &DeliveryFailure| f.handler.id == failure.handler.id && f.event.id == failure.event.id;
                match kept.iter_mut().find(|f| same(f)) {
                    Some(entry) => *entry = failure.clone(),
                    None => kept.push(failure.clone()),
                }
            }
        }
        Delivered { events: delivered, failures }
    }

    async fn run_event_handler(
        self: &Arc<Self>,
        handler: &'static HandlerDescriptor,
        event: &Envelope,
    ) -> Result<Vec<Committed>, ProcessError> {
        match handler.route {
            Route::Event(route) => route(self, event, handler.id).await,
            Route::Command(_) => Err(ProcessError::Unhandled(handler.type_name)),
        }
    }
}

impl Domain {
    /// Processes a command: validates it, runs its handler in a unit of work, commits the
    /// one aggregate it changed (with an optimistic version check, retried on conflict),
    /// then delivers the raised events to their handlers.
    ///
    /// Returns an error when the command is refused or cannot be committed. On success
    /// the [`Processed`] outcome carries the handler's reply (what the command declares
    /// with `returns = T`); failures of the event handlers after the commit are reported
    /// in [`Processed::failures`] and kept for [`retry_failed`](Self::retry_failed), and
    /// [`Processed::all_delivered`] turns them into an error.
    pub async fn process<C: Command>(&self, command: C) -> Result<Processed<C::Reply>, ProcessError> {
        self.process_with(command, Uuid::now_v7(), None).await
    }

    /// [`process`](Self::process) with the command's id given, and optionally the
    /// correlation id of the conversation it continues.
    pub async fn process_with<C: Command>(
        &self,
        command: C,
        command_id: Uuid,
        correlation_id: Option<Uuid>,
    ) -> Result<Processed<C::Reply>, ProcessError> {
        let engine = self.engine();
        command.validate().map_err(|e| ProcessError::Rejected { type_name: C::TYPE_NAME, error: e.into() })?;
        let handler = engine.commands.get(C::TYPE_NAME).ok_or(ProcessError::Unhandled(C::TYPE_NAME))?;
        let Route::Command(route) = handler.route else { return Err(ProcessError::Unhandled(C::TYPE_NAME)) };
        let cause = Cause { causation_id: command_id, correlation_id: correlation_id.unwrap_or(command_id) };
        let (committed, reply) = route(engine, Box::new(command), cause).await?;
        let reply = *reply.downcast::<C::Reply>().map_err(|_| ProcessError::Unhandled(C::TYPE_NAME))?;
        Ok(engine.deliver_committed(command_id, committed).await.with_reply(reply))
    }

    /// A unit of work for application code (seeding data, a migration, an admin task):
    /// load, add or remove aggregates of `A`, then [`commit`](Context::commit) it.
    pub fn unit_of_work<A: Aggregate>(&self) -> Context<A> {
        Context::new(Arc::clone(self.engine()), Cause::command(Uuid::now_v7()), A::NAME)
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
        let store = self.engine().store.as_ref();
        if store.load(&stream).await?.is_none() {
            return Ok(None);
        }
        let state = crate::context::replayed::<A>(store, &stream, id, Some(up_to)).await?;
        Ok(Some(state))
    }

    /// The events an aggregate raised, in order, as stored.
    pub async fn events_of<A: Aggregate>(&self, id: &Identifier<A>) -> Result<Vec<Envelope>, ProcessError> {
        Ok(self.engine().store.stream(&stream_of(id)).await?)
    }

    /// Delivers already committed events (read back from the store, or built by a test)
    /// to their handlers, as if they had just been raised.
    pub async fn deliver(&self, events: Vec<Envelope>) -> Delivered {
        self.engine().deliver(events).await
    }

    /// Delivers what the store holds undelivered: events committed by a process that
    /// stopped before delivering them, or whose handlers failed. Each stream's events
    /// come in order; handlers that already handled an event skip it (their handled
    /// messages are recorded in their own transactions), so delivery is at least once
    /// and the effects happen once. Call it when the application starts, and from time
    /// to time. Returns what was delivered and what failed.
    pub async fn deliver_pending(&self) -> Result<Delivered, ProcessError> {
        const BATCH: usize = 256;
        let engine = self.engine();
        let mut delivered = Vec::new();
        let mut failures = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let claimed = engine.store.claim_undelivered(BATCH, engine.lease).await?;
            // An event met again in this call failed (or could not be marked): it waits for
            // the next call. Stop when only such events come back.
            let fresh: Vec<Envelope> = claimed.into_iter().filter(|e| seen.insert(e.id)).collect();
            if fresh.is_empty() {
                break;
            }
            let Delivered { events: more, failures: failed } = engine.deliver_checked(fresh, true).await;
            seen.extend(more.iter().map(|e| e.id));
            delivered.extend(more);
            failures.extend(failed);
        }
        Ok(Delivered { events: delivered, failures })
    }

    /// Every delivery that failed and has not been retried successfully yet.
    pub fn failed_deliveries(&self) -> Vec<DeliveryFailure> {
        self.engine().failures().clone()
    }

    /// Delivers each failed event again to the handler that failed on it. Returns the
    /// events delivered; what fails again stays in
    /// [`failed_deliveries`](Self::failed_deliveries) and is returned as well.
    pub async fn retry_failed(&self) -> Delivered {
        let engine = self.engine();
        let pending = std::mem::take(&mut *engine.failures());
        let mut delivered = Vec::new();
        let mut failures = Vec::new();
        for (i, failure) in pending.iter().enumerate() {
            let failure = failure.clone();
            match engine.run_event_handler(failure.handler, &failure.event).await {
                Ok(committed) => {
                    // The event is delivered only when no handler of it is still to be retried
                    // here, nor failing now.
                    let same = |f: &DeliveryFailure| f.event.id == failure.event.id;
                    let waiting = pending[i + 1..].iter().any(same)
                        || engine.failures().iter().any(same)
                        || failures.iter().any(same);
                    if !waiting {
                        let _ = engine.store.mark_delivered(vec![failure.event.id]).await;
                    }
                    let raised = committed.into_iter().flat_map(|c| c.events).collect();
                    let Delivered { events: more, failures: failed } = engine.deliver(raised).await;
                    delivered.extend(more);
                    failures.extend(failed);
                }
                Err(error) => {
                    let failure = DeliveryFailure { error, ..failure };
                    engine.failures().push(failure.clone());
                    failures.push(failure);
                }
            }
        }
        Delivered { events: delivered, failures }
    }

    /// A read model by key.
    pub async fn read_model<V: ReadModel>(&self, key: &str) -> Result<Option<V>, ProcessError> {
        Ok(self.engine().read_model::<V>(key).await?)
    }

    /// Writes a read model (from a projection or application code).
    pub async fn put_read_model<V: ReadModel>(&self, key: &str, value: &V) -> Result<(), ProcessError> {
        let json = serde_json::to_string(value)
            .map_err(|e| StoreError::Serialize { what: format!("read model {}", V::NAME), reason: e.to_string() })?;
        Ok(self.engine().store.put_read_model(V::NAME, key, json).await?)
    }
}
