//! Process managers: the state of a flow across aggregates, moved on by events and
//! acting only by sending commands.
//!
//! `#[process_manager]` on a struct holding the flow's state, and on an impl block of
//! it, registers one step per method. A method without `self` **starts** a flow (it
//! returns the new state); a method taking `&mut self` moves an existing flow on. Each
//! event is routed to its flow by a correlation field of the event
//! (`#[process_manager(correlate = order_id)]` on the struct, or `#[correlate(field)]`
//! on a method): the field's value is the flow's key.
//!
//! A step runs in its own unit of work, like an event handler: the flow's state is
//! stored and versioned like an aggregate's (optimistic, run again on a conflict), and
//! the commands it sends ([`Flow::send`]) or schedules ([`Flow::schedule_after`],
//! [`Flow::schedule_at`]) are written in the same transaction, with the event's handled
//! record. Workers fire them once due, each under its own id, so a crash neither loses
//! nor doubles one. [`Flow::end`] ends the flow: later events for its key are ignored.

use std::any::Any;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tracing::Instrument;
use uuid::Uuid;

use crate::model::element::{const_str_eq, Command, Event};
use crate::model::error::{DomainError, StoreError};
use crate::model::identity::Identifier;
use crate::runtime::engine::Engine;
use crate::runtime::idempotency::ReplyType;
use crate::runtime::outcome::ProcessError;
use crate::runtime::read_model::{AsKey, ReadModel};
use crate::store::envelope::{Cause, Envelope, StreamId};
use crate::store::{Batch, BoxFuture, Cancel, Commit, Committed, Handled, Scheduled};

/// The state of a flow across aggregates: what `#[process_manager]` implements on the
/// struct.
pub trait ProcessManager: Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync + 'static {
    /// Its name: the flows' records are kept under it (`"Fulfilment"`).
    const NAME: &'static str;
    /// The field of the events it takes that holds the flow's key, unless a step names
    /// its own; `""` when every step names one.
    const CORRELATE: &'static str;
}

/// Something a process manager may not load or change: every aggregate.
#[diagnostic::on_unimplemented(
    message = "a process manager cannot load or change `{Self}`: it acts only by sending commands",
    label = "process managers do not load aggregates",
    note = "send a command to `{Self}` with `ctx.send(..)`; its handler changes it in its own transaction",
    note = "to decide on another aggregate's data, keep it in the flow's state or read a projection with `ctx.read`"
)]
pub trait LoadableInFlow {}

/// `Self` is the context a step of process manager `P` receives: `Flow<P>`.
#[diagnostic::on_unimplemented(
    message = "a step of `{P}` receives `&mut Flow<{P}>`, not `&mut {Self}`",
    label = "write `ctx: &mut Flow<{P}>`",
    note = "a process manager acts through its flow context: it sends and schedules commands, and ends the flow"
)]
pub trait FlowOf<P: ProcessManager> {}

impl<P: ProcessManager> FlowOf<P> for Flow<P> {}

/// What a step of a flow does besides changing its state: the commands it sends and
/// schedules, the deadlines it cancels, and whether it ends the flow.
pub struct Flow<P: ProcessManager> {
    engine: Arc<Engine>,
    cause: Cause,
    key: String,
    scheduled: Vec<Scheduled>,
    cancelled: Vec<String>,
    ended: bool,
    error: Option<DomainError>,
    _p: std::marker::PhantomData<fn() -> P>,
}

impl<P: ProcessManager> std::fmt::Debug for Flow<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("process", &P::NAME)
            .field("key", &self.key)
            .field("cause", &self.cause)
            .field("scheduled", &self.scheduled.iter().map(|s| &*s.type_name).collect::<Vec<_>>())
            .field("cancelled", &self.cancelled)
            .field("ended", &self.ended)
            .finish()
    }
}

impl<P: ProcessManager> Flow<P> {
    fn new(engine: Arc<Engine>, cause: Cause, key: String) -> Self {
        Flow {
            engine,
            cause,
            key,
            scheduled: Vec::new(),
            cancelled: Vec::new(),
            ended: false,
            error: None,
            _p: std::marker::PhantomData,
        }
    }

    /// The flow's key: the correlation field's value.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Why this step runs: the event (its id is the causation id of the commands sent)
    /// and its conversation.
    pub fn cause(&self) -> Cause {
        self.cause
    }

    fn push<C: Command>(&mut self, name: Option<String>, due_at: OffsetDateTime, command: C) {
        match serde_json::to_string(&command) {
            Ok(json) => self.scheduled.push(Scheduled {
                id: Uuid::now_v7(),
                owner: Cow::Borrowed(P::NAME),
                owner_key: self.key.clone(),
                name,
                due_at,
                type_name: Cow::Borrowed(C::TYPE_NAME),
                payload: json.into(),
                correlation_id: self.cause.correlation_id,
                causation_id: self.cause.causation_id,
            }),
            Err(e) => {
                self.error = Some(DomainError::Store(StoreError::Serialize {
                    what: format!("the command {} sent by {}", C::TYPE_NAME, P::NAME),
                    reason: e.to_string(),
                }))
            }
        }
    }

    /// Sends `command` once this step commits.
    pub fn send<C: Command>(&mut self, command: C) {
        self.push(None, OffsetDateTime::now_utc(), command);
    }

    /// Schedules `command` to be sent after `delay`, under `name` (to cancel it): a
    /// deadline. Scheduling a name again adds another deadline; cancel the first.
    pub fn schedule_after<C: Command>(&mut self, name: impl Into<String>, delay: Duration, command: C) {
        let due = OffsetDateTime::now_utc() + delay;
        self.push(Some(name.into()), due, command);
    }

    /// Schedules `command` to be sent at `at`, under `name` (to cancel it).
    pub fn schedule_at<C: Command>(&mut self, name: impl Into<String>, at: OffsetDateTime, command: C) {
        self.push(Some(name.into()), at, command);
    }

    /// Cancels this flow's pending deadlines named `name` (those scheduled by earlier
    /// steps; one scheduled in this step is dropped too).
    pub fn cancel(&mut self, name: &str) {
        self.scheduled.retain(|s| s.name.as_deref() != Some(name));
        self.cancelled.push(name.to_owned());
    }

    /// Ends the flow once this step commits: its state is kept, marked ended, and later
    /// events for its key are ignored. Pending deadlines are cancelled.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// Whether [`end`](Self::end) was called in this step.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// A read model by key (a projection, kept current by its projectors), of its key
    /// type ([`ReadModel::Key`]): `ctx.read::<LoanView>(&event.loan_id)`.
    pub async fn read<V: ReadModel>(&self, key: &(impl AsKey<V::Key> + ?Sized)) -> Result<Option<V>, DomainError> {
        Ok(crate::runtime::context::read_model::<V>(&self.engine, &key.key_text()).await?)
    }

    /// Refused at compile time: a process manager does not load aggregates (see
    /// [`LoadableInFlow`]).
    pub fn load<T: LoadableInFlow>(&mut self, id: &Identifier<T>) -> Result<T, DomainError> {
        let _ = id;
        Err(DomainError::rule("a process manager cannot load aggregates"))
    }
}

/// A step of process manager `P` that starts a flow on event `E`. Implemented by
/// `#[process_manager]` for a method without `self`.
pub trait StartFlow<P: ProcessManager, E: Event>: 'static {
    /// The event field that holds the flow's key.
    const CORRELATE: &'static str;
    /// Calls the method.
    fn start<'a>(ctx: &'a mut Flow<P>, event: &'a E) -> BoxFuture<'a, Result<P, DomainError>>;
}

/// A step of process manager `P` that moves a flow on with event `E`. Implemented by
/// `#[process_manager]` for a method taking `&mut self`.
pub trait ContinueFlow<P: ProcessManager, E: Event>: 'static {
    /// The event field that holds the flow's key.
    const CORRELATE: &'static str;
    /// Calls the method.
    fn step<'a>(state: &'a mut P, ctx: &'a mut Flow<P>, event: &'a E) -> BoxFuture<'a, Result<(), DomainError>>;
}

/// Compile-time check that a step's context is `Flow<P>`.
pub const fn assert_flow_of<T: FlowOf<P>, P: ProcessManager>() {}

/// The names of an event's fields: what `#[event]` implements, so that a process
/// manager's step is checked, when it compiles, to take events holding the field its
/// flows are keyed by.
#[doc(hidden)]
pub trait FieldNames {
    /// The fields, in declaration order.
    const FIELD_NAMES: &'static [&'static str];
    /// The keys the fields are stored under in the event's JSON, in the same order:
    /// their names, unless serde renames them.
    const STORED_NAMES: &'static [&'static str] = Self::FIELD_NAMES;
}

/// The key field `field` of event `E` is stored under in its JSON.
fn stored_name<E: FieldNames>(field: &str) -> &str {
    match E::FIELD_NAMES.iter().position(|f| *f == field) {
        Some(position) => E::STORED_NAMES.get(position).copied().unwrap_or(field),
        None => field,
    }
}

/// What a process manager rejected at compile time (see the macros' fallback) gives as
/// its correlation field, so that its steps are not reported as well.
#[doc(hidden)]
pub const REJECTED_CORRELATE: &str = "?";

/// Whether event `E` lacks `field`, the struct's correlation field a step routes `E` by.
/// Not for `""` (no field named: reported on its own) nor for a rejected process manager.
#[doc(hidden)]
pub const fn lacks_correlation_field<E: FieldNames>(field: &str) -> bool {
    if field.is_empty() || const_str_eq(field, REJECTED_CORRELATE) {
        return false;
    }
    let mut i = 0;
    while i < E::FIELD_NAMES.len() {
        if const_str_eq(E::FIELD_NAMES[i], field) {
            return false;
        }
        i += 1;
    }
    true
}

/// The length in bytes of `parts` put together: the size of [`text_concat`]'s array.
#[doc(hidden)]
pub const fn text_len(parts: &[&str]) -> usize {
    let (mut len, mut i) = (0, 0);
    while i < parts.len() {
        len += parts[i].len();
        i += 1;
    }
    len
}

/// `parts` put together, as the bytes of a compile-time message naming a const's value
/// (`N` is [`text_len`] of `parts`).
#[doc(hidden)]
pub const fn text_concat<const N: usize>(parts: &[&str]) -> [u8; N] {
    let mut out = [0u8; N];
    let (mut at, mut i) = (0, 0);
    while i < parts.len() {
        let bytes = parts[i].as_bytes();
        let mut j = 0;
        while j < bytes.len() && at < N {
            out[at] = bytes[j];
            at += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

/// The text [`text_concat`] made (whole `&str`s put together, so always UTF-8).
#[doc(hidden)]
pub const fn text_str(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => "",
    }
}

/// A flow as stored.
#[derive(Serialize, Deserialize)]
struct FlowRecord<P> {
    ended: bool,
    state: P,
}

/// The key of the flow an event belongs to: its `field`, as text.
pub(crate) fn correlation_key(envelope: &Envelope, field: &str) -> Result<String, StoreError> {
    let corrupt = |reason: String| StoreError::corrupt(&envelope.stream, envelope.sequence, reason);
    let value: serde_json::Value =
        serde_json::from_str(&envelope.payload).map_err(|e| corrupt(format!("the event does not read: {e}")))?;
    match value.get(field) {
        Some(serde_json::Value::String(text)) => Ok(text.clone()),
        Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
        Some(serde_json::Value::Bool(b)) => Ok(b.to_string()),
        Some(other) if !other.is_null() => Ok(other.to_string()),
        _ => Err(corrupt(format!(
            "`{}` has no field `{field}` to route it to its flow by (the correlation field)",
            envelope.type_name
        ))),
    }
}

/// How a step treats the flow it finds.
enum Step<P: ProcessManager, E> {
    Start(StartFn<P, E>),
    Continue(ContinueFn<P, E>),
}

/// A starting step's method, as a function.
type StartFn<P, E> = for<'b> fn(&'b mut Flow<P>, &'b E) -> BoxFuture<'b, Result<P, DomainError>>;
/// A continuing step's method, as a function.
type ContinueFn<P, E> = for<'b> fn(&'b mut P, &'b mut Flow<P>, &'b E) -> BoxFuture<'b, Result<(), DomainError>>;

/// The route of a starting step.
pub fn run_flow_start<'a, P, E, H>(
    engine: &'a Arc<Engine>,
    envelope: &'a Envelope,
    handler: &'static str,
) -> BoxFuture<'a, Result<Vec<Committed>, ProcessError>>
where
    P: ProcessManager,
    E: Event + FieldNames,
    H: StartFlow<P, E>,
{
    Box::pin(async move {
        let event = envelope.event::<E>().map_err(ProcessError::Store)?;
        let field = stored_name::<E>(if H::CORRELATE.is_empty() { P::CORRELATE } else { H::CORRELATE });
        run_step::<P, E>(engine, envelope, &event, handler, field, Step::Start(H::start)).await
    })
}

/// The route of a step moving a flow on.
pub fn run_flow_step<'a, P, E, H>(
    engine: &'a Arc<Engine>,
    envelope: &'a Envelope,
    handler: &'static str,
) -> BoxFuture<'a, Result<Vec<Committed>, ProcessError>>
where
    P: ProcessManager,
    E: Event + FieldNames,
    H: ContinueFlow<P, E>,
{
    Box::pin(async move {
        let event = envelope.event::<E>().map_err(ProcessError::Store)?;
        let field = stored_name::<E>(if H::CORRELATE.is_empty() { P::CORRELATE } else { H::CORRELATE });
        run_step::<P, E>(engine, envelope, &event, handler, field, Step::Continue(H::step)).await
    })
}

async fn run_step<P: ProcessManager, E: Event>(
    engine: &Arc<Engine>,
    envelope: &Envelope,
    event: &E,
    handler: &'static str,
    field: &str,
    step: Step<P, E>,
) -> Result<Vec<Committed>, ProcessError> {
    let type_name = E::TYPE_NAME;
    let key = correlation_key(envelope, field)?;
    let stream = StreamId::new(P::NAME, key.clone());
    let retries = engine.conflict_retries();
    let mut attempt = 0;
    loop {
        let record = engine.store().load(&stream).await?;
        let version = record.as_ref().map_or(0, |r| r.version);
        let found: Option<FlowRecord<P>> = match &record {
            Some(record) => Some(serde_json::from_str(&record.state).map_err(|e| {
                StoreError::corrupt(&stream, record.version, format!("not a valid `{}` flow: {e}", P::NAME))
            })?),
            None => None,
        };
        let mut ctx = Flow::<P>::new(Arc::clone(engine), Cause::event(envelope), key.clone());
        let state = match (&step, found) {
            (Step::Start(start), None) => Some(start(&mut ctx, event).await),
            (Step::Continue(step), Some(mut flow)) if !flow.ended => {
                Some(step(&mut flow.state, &mut ctx, event).await.map(|()| flow.state))
            }
            (Step::Start(_), Some(_)) => {
                tracing::debug!(process = P::NAME, key = %key, "a flow with this key exists; the starting event is ignored");
                None
            }
            (Step::Continue(_), _) => {
                tracing::debug!(process = P::NAME, key = %key, "no running flow with this key; the event is ignored");
                None
            }
        };
        let state = match state {
            Some(Ok(state)) => Some(state),
            Some(Err(error)) => return Err(ProcessError::from_domain(type_name, error)),
            None => None,
        };
        if let Some(error) = ctx.error.take() {
            return Err(ProcessError::from_domain(type_name, error));
        }
        let mut batch = Batch {
            handled: Some(Handled::event(handler, envelope.id)),
            delivered: if engine.handler_count(&envelope.type_name) == 1 { vec![envelope.id] } else { Vec::new() },
            ..Batch::default()
        };
        let sends = !ctx.scheduled.is_empty();
        if let Some(state) = state {
            let ended = ctx.ended;
            let json = serde_json::to_string(&FlowRecord { ended, state }).map_err(|e| {
                ProcessError::Store(StoreError::Serialize {
                    what: format!("the `{}` flow", P::NAME),
                    reason: e.to_string(),
                })
            })?;
            batch.commits.push(Commit {
                stream: stream.clone(),
                expected_version: version,
                advance: 1,
                state: Some(json.into()),
                events: Vec::new(),
                snapshot: None,
            });
            let mut cancelled = ctx.cancelled.clone();
            if ended {
                // An ended flow's deadlines will never matter: drop them all.
                let pending = engine.store().scheduled_of(P::NAME, &key).await?;
                cancelled.extend(pending.into_iter().filter_map(|s| s.name));
                cancelled.sort();
                cancelled.dedup();
            }
            batch.cancel = cancelled
                .into_iter()
                .map(|name| Cancel { owner: Cow::Borrowed(P::NAME), owner_key: key.clone(), name })
                .collect();
            batch.schedule = std::mem::take(&mut ctx.scheduled);
        }
        match engine.store().commit(batch).await {
            Ok(committed) => {
                if sends {
                    engine.wake();
                }
                return Ok(committed);
            }
            Err(StoreError::AlreadyHandled { .. }) => return Ok(Vec::new()),
            Err(StoreError::Conflict(conflict)) if attempt < retries => {
                attempt += 1;
                tracing::info!(
                    process = P::NAME,
                    key = %key,
                    expected = conflict.expected,
                    actual = conflict.actual,
                    retry = attempt,
                    "the flow changed meanwhile; running the step again"
                );
            }
            Err(error) => return Err(ProcessError::from(error)),
        }
    }
}

/// The `FireRoute` of command `C`: only the reading and checking of the command depend
/// on `C`; the rest is one function compiled here, not a future per command type in the
/// crate of every `#[handler]`.
pub fn fire_scheduled<'a, C: Command>(
    engine: &'a Arc<Engine>,
    scheduled: &'a Scheduled,
) -> BoxFuture<'a, Result<(), ProcessError>> {
    let command = serde_json::from_str::<C>(&scheduled.payload)
        .map_err(|e| unreadable_scheduled(scheduled, &e))
        .and_then(Engine::checked_command);
    Box::pin(fire_checked(engine, scheduled, C::TYPE_NAME, command, ReplyType::of::<C>()))
}

/// A scheduled command that does not read as its type.
fn unreadable_scheduled(scheduled: &Scheduled, error: &serde_json::Error) -> ProcessError {
    ProcessError::Store(StoreError::corrupt(
        &StreamId::new(scheduled.owner.clone().into_owned(), scheduled.owner_key.clone()),
        0,
        format!("the scheduled command {} does not read: {error}", scheduled.type_name),
    ))
}

/// Processes a scheduled command, read and checked (`command`), under its own id.
async fn fire_checked(
    engine: &Arc<Engine>,
    scheduled: &Scheduled,
    type_name: &'static str,
    command: Result<Box<dyn Any + Send>, ProcessError>,
    reply: ReplyType,
) -> Result<(), ProcessError> {
    let command = command?;
    let cause = Cause { causation_id: scheduled.id, correlation_id: scheduled.correlation_id };
    engine.run_erased(type_name, command, cause, true, reply).await.map(|_| ())
}

/// What firing due commands did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fired {
    /// Commands processed (or found processed already: firing is idempotent).
    pub fired: u64,
    /// Commands refused by their handler (a rule, validation): dropped, and logged.
    pub refused: u64,
    /// Commands that could not be processed now (a store error, a conflict on every
    /// attempt, no handler in this process): released, fired again later.
    pub failed: u64,
}

impl Fired {
    fn add(&mut self, other: Fired) {
        self.fired += other.fired;
        self.refused += other.refused;
        self.failed += other.failed;
    }
}

impl Engine {
    /// Claims the commands due at `now` (up to `limit` at a time, until none is left)
    /// and fires each: processed under its own id, so firing one twice changes nothing.
    pub(crate) async fn fire_due(
        self: &Arc<Self>,
        now: OffsetDateTime,
        limit: usize,
        lease: Duration,
    ) -> Result<Fired, StoreError> {
        let mut total = Fired::default();
        loop {
            let due = self.store().claim_due(now, limit.max(1), lease).await?;
            if due.is_empty() {
                return Ok(total);
            }
            let full = due.len() >= limit.max(1);
            let mut round = Fired::default();
            for scheduled in &due {
                round.add(self.fire_one(scheduled).await?);
            }
            total.add(round);
            // Only what failed is left: it waits for its next turn.
            if !full || round.fired + round.refused == 0 {
                return Ok(total);
            }
        }
    }

    async fn fire_one(self: &Arc<Self>, scheduled: &Scheduled) -> Result<Fired, StoreError> {
        let span = tracing::info_span!(
            "fire",
            command = &*scheduled.type_name,
            command_id = %scheduled.id,
            process = &*scheduled.owner,
            key = %scheduled.owner_key,
            deadline = scheduled.name.as_deref(),
        );
        let fired = self.fire_in_span(scheduled).instrument(span).await;
        fired.inspect(|f| self.metrics.fired(&scheduled.type_name, f.fired, f.refused, f.failed))
    }

    async fn fire_in_span(self: &Arc<Self>, scheduled: &Scheduled) -> Result<Fired, StoreError> {
        let Some(fire) = self.commands.get(&*scheduled.type_name).and_then(|h| h.fire) else {
            tracing::warn!("no handler in this process takes this command; it waits for one that has");
            return Ok(Fired { failed: 1, ..Fired::default() });
        };
        match fire(self, scheduled).await {
            Ok(()) => {
                self.store().complete_scheduled(scheduled.id).await?;
                Ok(Fired { fired: 1, ..Fired::default() })
            }
            Err(error @ (ProcessError::Rejected { .. } | ProcessError::RejectedByProjector { .. })) => {
                tracing::warn!(error = &error as &dyn std::error::Error, "a sent command was refused; it is dropped");
                self.store().complete_scheduled(scheduled.id).await?;
                Ok(Fired { refused: 1, ..Fired::default() })
            }
            Err(error) => {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "a sent command failed; it is fired again later"
                );
                self.store().release_scheduled(vec![scheduled.id]).await?;
                Ok(Fired { failed: 1, ..Fired::default() })
            }
        }
    }
}

/// The state of flow `key` of process manager `P`, and whether it ended, as
/// [`Domain::flow`](crate::runtime::Domain::flow) reads it; `None` when no such flow started.
pub(crate) async fn flow_of<P: ProcessManager>(engine: &Engine, key: &str) -> Result<Option<(P, bool)>, ProcessError> {
    let stream = StreamId::new(P::NAME, key);
    let Some(record) = engine.store().load(&stream).await? else { return Ok(None) };
    let flow: FlowRecord<P> = serde_json::from_str(&record.state)
        .map_err(|e| StoreError::corrupt(&stream, record.version, format!("not a valid `{}` flow: {e}", P::NAME)))?;
    Ok(Some((flow.state, flow.ended)))
}
