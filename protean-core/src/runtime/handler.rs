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
use crate::runtime::context::{Context, ContextOf, SameAggregate};
use crate::runtime::engine::{CommandOutcome, Engine, HandlerDescriptor};
use crate::runtime::outcome::ProcessError;
use crate::store::envelope::{Cause, Envelope};
use crate::store::{BoxFuture, Committed};

/// Lists who handles a message, on the rustdoc pages of everything involved.
///
/// `#[handler(part_of = A)]` on `impl H` implements `Handles<M, H>` for `A` for each
/// command or event `M` that a method of the block takes; `#[process_manager]` on
/// `impl P` implements `Handles<E, P>` for `P` for each event a step takes. Rustdoc shows
/// a trait impl on the page of its type and on the pages of the types in its parameters,
/// so each impl appears three times, each time under a name that tells it apart: on the
/// aggregate's page (what changes it, and through which handler), on the message's page
/// (who reacts to it) and on the handler's page (what it handles). Projectors have
/// [`FedBy`](crate::runtime::FedBy) for the same purpose.
///
/// A marker for documentation only: nothing requires it, and nothing else implements it.
pub trait Handles<M, Via> {}

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
///
/// Only one attempt depends on the types; the retry loop is `retry_command`, compiled
/// once here rather than once per handler method in the user's crate.
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
    let mut command = match command.downcast::<C>() {
        Ok(command) => Some(*command),
        Err(_) => return Box::pin(std::future::ready(Err(ProcessError::Unhandled(C::TYPE_NAME)))),
    };
    // The last attempt takes the command; earlier ones clone it in case of a conflict.
    let attempt = move |last: bool| -> BoxFuture<'a, Result<CommandOutcome, ProcessError>> {
        match if last { command.take() } else { command.clone() } {
            Some(command) => command_once::<A, C, H>(engine, cause, command, idempotent),
            // Not reached: no attempt follows the last.
            None => Box::pin(std::future::ready(Err(ProcessError::Unhandled(C::TYPE_NAME)))),
        }
    };
    Box::pin(retry_command(engine, Box::new(attempt)))
}

/// One attempt of a command handler, as `run_command` retries it: `last` when no other
/// attempt follows (the command is then moved rather than cloned).
type CommandAttempt<'a> = Box<dyn FnMut(bool) -> BoxFuture<'a, Result<CommandOutcome, ProcessError>> + Send + 'a>;

/// Runs `attempt` until it meets no version conflict, or as many times as the domain's
/// retry policy allows.
async fn retry_command(engine: &Arc<Engine>, mut attempt: CommandAttempt<'_>) -> Result<CommandOutcome, ProcessError> {
    let retries = engine.conflict_retries();
    let mut tries = 0;
    loop {
        tracing::Span::current().record("attempt", tries + 1);
        if tries >= retries {
            return attempt(true).await;
        }
        match attempt(false).await {
            Err(ProcessError::Conflict(conflict)) => {
                tries += 1;
                conflicted(&conflict, tries, retries);
            }
            outcome => return outcome,
        }
    }
}

fn command_once<'a, A, C, H>(
    engine: &'a Arc<Engine>,
    cause: Cause,
    command: C,
    idempotent: bool,
) -> BoxFuture<'a, Result<CommandOutcome, ProcessError>>
where
    A: Aggregate,
    C: Command,
    H: HandleCommand<A, C>,
{
    Box::pin(async move {
        let mut ctx = Context::<A>::new(Arc::clone(engine), cause, C::TYPE_NAME);
        let outcome = H::handle(&mut ctx, command).await;
        commit_command::<A, C>(ctx, outcome, idempotent).await
    })
}

/// Commits the unit of work of a command whose handler returned `outcome`, with the
/// reply when the command is `idempotent`: everything after the handler, without a
/// future of its own per command type.
fn commit_command<A: Aggregate, C: Command>(
    mut ctx: Context<A>,
    outcome: Result<C::Reply, DomainError>,
    idempotent: bool,
) -> BoxFuture<'static, Result<CommandOutcome, ProcessError>> {
    let reply = match outcome {
        Ok(reply) => reply,
        Err(error) => return Box::pin(std::future::ready(Err(ProcessError::from_domain(C::TYPE_NAME, error)))),
    };
    if idempotent {
        match serde_json::to_string(&reply) {
            Ok(json) => ctx.record_command(json),
            Err(e) => {
                return Box::pin(std::future::ready(Err(ProcessError::Store(
                    crate::model::error::StoreError::Serialize {
                        what: format!("the reply to {}", C::TYPE_NAME),
                        reason: e.to_string(),
                    },
                ))))
            }
        }
    }
    Box::pin(with_reply(ctx.commit_unit(), Box::new(reply)))
}

/// The outcome of a command's unit of work once `commit` is done: what it committed,
/// and `reply`.
async fn with_reply(
    commit: BoxFuture<'static, Result<Vec<Committed>, ProcessError>>,
    reply: Box<dyn Any + Send>,
) -> Result<CommandOutcome, ProcessError> {
    Ok((commit.await?, reply))
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
    let event = match envelope.event::<E>() {
        Ok(event) => Arc::new(event),
        Err(error) => return Box::pin(std::future::ready(Err(ProcessError::Store(error)))),
    };
    let attempt = move || -> EventAttemptFuture<'a> {
        let event = Arc::clone(&event);
        Box::pin(async move {
            let mut ctx = Context::<A>::handling(Arc::clone(engine), envelope, E::TYPE_NAME, handler);
            if let Err(error) = H::handle(&mut ctx, &event).await {
                return Err(ProcessError::from_domain(E::TYPE_NAME, error));
            }
            Ok(ctx.commit_unit())
        })
    };
    Box::pin(retry_event(engine, Box::new(attempt)))
}

/// One attempt of an event handler: its error, or once it succeeded, its unit's commit.
type EventAttemptFuture<'a> =
    BoxFuture<'a, Result<BoxFuture<'static, Result<Vec<Committed>, ProcessError>>, ProcessError>>;

/// Runs an event handler's `attempt` (a handler's error ends it) until its commit meets
/// no version conflict, or as many times as the domain's retry policy allows.
async fn retry_event<'a>(
    engine: &'a Arc<Engine>,
    mut attempt: Box<dyn FnMut() -> EventAttemptFuture<'a> + Send + 'a>,
) -> Result<Vec<Committed>, ProcessError> {
    let retries = engine.conflict_retries();
    let mut tries = 0;
    loop {
        match attempt().await?.await {
            Err(ProcessError::Conflict(conflict)) if tries < retries => {
                tries += 1;
                conflicted(&conflict, tries, retries);
            }
            outcome => return outcome,
        }
    }
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
