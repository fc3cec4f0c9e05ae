//! Handlers: what `#[handler(part_of = X)]` registers, and the glue that runs a handler
//! method in a unit of work.
//!
//! A handler method takes `&mut Context<X>` and either a command of `X` by value (a
//! command is handled exactly once) or a reference to an event of any aggregate (an
//! event is shared by all its handlers). The macro implements [`HandleCommand`] or
//! [`HandleEvent`] for a hidden type per method and submits a [`HandlerDescriptor`]
//! whose route runs it through [`run_command`] or [`run_event`].

use std::any::Any;
use std::sync::Arc;

use crate::model::element::{Aggregate, Command, Event};
use crate::model::error::DomainError;
use crate::registry::HandlerInfo;
use crate::runtime::context::{Context, ContextOf, SameAggregate};
use crate::runtime::engine::Engine;
use crate::runtime::outcome::ProcessError;
use crate::store::envelope::{Cause, Envelope};
use crate::store::{BoxFuture, Committed};

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

/// How the engine calls a handler method.
#[derive(Clone, Copy)]
pub enum Route {
    /// A command handler.
    Command(CommandRoute),
    /// An event handler (or a process manager's step).
    Event(EventRoute),
    /// A projector method.
    Project(crate::runtime::projection::ProjectorRoute),
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
    pub fire: Option<crate::runtime::process::FireRoute>,
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

/// Every handler method registered in this program.
pub fn registered_handlers() -> impl Iterator<Item = &'static HandlerDescriptor> {
    inventory::iter::<HandlerDescriptor>.into_iter()
}

/// A handler method for command `C`, changing aggregate `A`. Implemented by `#[handler]`.
pub trait HandleCommand<A: Aggregate, C: Command>: 'static {
    /// Calls the method.
    fn handle(ctx: &mut Context<A>, command: C) -> BoxFuture<'_, Result<C::Reply, DomainError>>;
}

/// A handler method reacting to event `E` by changing aggregate `A`. Implemented by `#[handler]`.
pub trait HandleEvent<A: Aggregate, E: Event>: 'static {
    /// Calls the method.
    fn handle<'a>(ctx: &'a mut Context<A>, event: &'a E) -> BoxFuture<'a, Result<(), DomainError>>;
}

/// Compile-time check that a handler's context is `Context<A>` (see [`ContextOf`]).
pub const fn assert_context_of<T: ContextOf<A>, A: Aggregate>() {}

/// A command handler's `Ok` value as the command's reply: the type the command declares
/// (see [`Returns`](crate::model::element::Returns)).
pub fn reply<C: crate::model::element::Returns<R>, R>(reply: R) -> C::Reply {
    C::into_reply(reply)
}

/// An event handler's `Ok` value: `()` only (see [`NoReply`](crate::model::element::NoReply)).
pub fn no_reply<R: crate::model::element::NoReply>(reply: R) {
    let _ = reply;
}

/// Compile-time check that a handler's message taken by reference is an event.
pub const fn assert_event<E: Event>() {}

/// Compile-time check that a handler's message taken by value is a command of its
/// aggregate `A` (see [`SameAggregate`]).
pub const fn assert_command_of<C: Command, A: Aggregate>()
where
    C::Aggregate: SameAggregate<A>,
{
}

/// The route of a command handler: runs `H` in a unit of work on `A` and commits it,
/// running it again (with a fresh unit of work) when the commit meets a version conflict,
/// as many times as the domain's retry policy allows. With `idempotent`, the command's id
/// (the cause's causation id) is recorded in the same transaction, with its reply.
pub fn run_command<'a, A, C, H>(
    engine: &'a Arc<Engine>,
    command: Box<dyn Any + Send>,
    cause: Cause,
    idempotent: bool,
) -> BoxFuture<'a, Result<CommandOutcome, ProcessError>>
where
    A: Aggregate,
    C: Command,
    H: HandleCommand<A, C>,
{
    Box::pin(async move {
        let command = *command.downcast::<C>().map_err(|_| ProcessError::Unhandled(C::TYPE_NAME))?;
        let retries = engine.conflict_retries();
        let mut attempt = 0;
        loop {
            tracing::Span::current().record("attempt", attempt + 1);
            // The last attempt takes the command; earlier ones clone it in case of a conflict.
            if attempt >= retries {
                return command_once::<A, C, H>(engine, cause, command, idempotent).await;
            }
            match command_once::<A, C, H>(engine, cause, command.clone(), idempotent).await {
                Err(ProcessError::Conflict(conflict)) => {
                    attempt += 1;
                    conflicted(&conflict, attempt, retries);
                }
                outcome => return outcome,
            }
        }
    })
}

async fn command_once<A, C, H>(
    engine: &Arc<Engine>,
    cause: Cause,
    command: C,
    idempotent: bool,
) -> Result<CommandOutcome, ProcessError>
where
    A: Aggregate,
    C: Command,
    H: HandleCommand<A, C>,
{
    let mut ctx = Context::<A>::new(Arc::clone(engine), cause, C::TYPE_NAME);
    let reply = H::handle(&mut ctx, command).await.map_err(|error| ProcessError::from_domain(C::TYPE_NAME, error))?;
    if idempotent {
        let json = serde_json::to_string(&reply).map_err(|e| {
            ProcessError::Store(crate::model::error::StoreError::Serialize {
                what: format!("the reply to {}", C::TYPE_NAME),
                reason: e.to_string(),
            })
        })?;
        ctx.record_command(json);
    }
    Ok((ctx.commit_unit().await?, Box::new(reply)))
}

/// The route of an event handler: runs `H` in its own unit of work on `A`, caused by the
/// event, and commits it, retrying version conflicts like [`run_command`].
pub fn run_event<'a, A, E, H>(
    engine: &'a Arc<Engine>,
    envelope: &'a Envelope,
    handler: &'static str,
) -> BoxFuture<'a, Result<Vec<Committed>, ProcessError>>
where
    A: Aggregate,
    E: Event,
    H: HandleEvent<A, E>,
{
    Box::pin(async move {
        let event = envelope.event::<E>().map_err(ProcessError::Store)?;
        let retries = engine.conflict_retries();
        let mut attempt = 0;
        loop {
            let mut ctx = Context::<A>::handling(Arc::clone(engine), envelope, E::TYPE_NAME, handler);
            if let Err(error) = H::handle(&mut ctx, &event).await {
                return Err(ProcessError::from_domain(E::TYPE_NAME, error));
            }
            match ctx.commit_unit().await {
                Err(ProcessError::Conflict(conflict)) if attempt < retries => {
                    attempt += 1;
                    conflicted(&conflict, attempt, retries);
                }
                outcome => return outcome,
            }
        }
    })
}

/// Logs a version conflict that makes a handler run again.
fn conflicted(conflict: &crate::model::error::VersionConflict, attempt: u32, retries: u32) {
    tracing::info!(
        stream = %conflict.stream,
        expected = conflict.expected,
        actual = conflict.actual,
        retry = attempt,
        of = retries,
        "version conflict; running the handler again in a fresh unit of work"
    );
}
