//! Committing a unit of work: the changed aggregates checked and written with their
//! events, and what the unit records besides (inline projections' rows, the handled
//! record, delivered marks, an idempotent command's reply), atomically.

use std::borrow::Cow;
use std::sync::{Arc, PoisonError};

use super::{stream_of, unserializable, Context, EVENT_SOURCED_HEAD};
use crate::model::element::{Aggregate, RaisedEvent};
use crate::model::validation::{Path, Phase, ValidationError};
use crate::runtime::engine::Engine;
use crate::runtime::outcome::{ProcessError, Processed};
use crate::store::envelope::{Cause, Envelope, StreamId};
use crate::store::{Batch, BoxFuture, Commit, Committed, Handled, RowRead, StoreError};

impl<A: Aggregate> Context<A> {
    /// Commits this unit of work, then (in inline delivery) delivers the events it raised
    /// to their handlers, each in its own unit of work; in background delivery the
    /// workers do. For application code holding a context from
    /// [`Domain::unit_of_work`](crate::runtime::Domain::unit_of_work); a handler's
    /// context is committed by the engine when the handler returns `Ok`.
    pub async fn commit(self) -> Result<Processed, ProcessError> {
        let engine = Arc::clone(&self.engine);
        let message_id = self.cause.causation_id;
        let committed = self.commit_unit().await?;
        if engine.inline() {
            return Ok(engine.deliver_committed(message_id, committed).await);
        }
        let events = committed.iter().flat_map(|c| c.events.iter().cloned()).collect();
        Ok(Processed { reply: (), command_id: message_id, committed, events, failures: Vec::new() })
    }

    /// Checks and writes the changed aggregates with their events, atomically; an empty
    /// list when nothing changed.
    ///
    /// Only the checks and the writing of the changed aggregates as JSON depend on `A`;
    /// the rest, in `finish_unit`, is compiled once in this crate rather than once per
    /// aggregate type of the user's (a future per aggregate type would be generated for
    /// every handler's crate).
    pub(crate) fn commit_unit(mut self) -> BoxFuture<'static, Result<Vec<Committed>, ProcessError>> {
        match self.commits() {
            Ok(commits) => {
                let Context { engine, cause, message, handled, delivered, reply, reads, .. } = self;
                let reads = reads
                    .into_inner()
                    .map(|reads| std::mem::take(&mut *reads.lock().unwrap_or_else(PoisonError::into_inner)))
                    .unwrap_or_default();
                Box::pin(finish_unit(Unit { engine, cause, message, handled, delivered, reply, reads }, commits))
            }
            Err(error) => Box::pin(std::future::ready(Err(error))),
        }
    }

    /// The commits of the changed aggregates, checked: what `commit_unit`
    /// writes.
    fn commits(&mut self) -> Result<Vec<Commit>, ProcessError> {
        let mut commits = Vec::new();
        for tracked in &mut self.tracked {
            let stream = tracked.stream.take().unwrap_or_else(|| stream_of(tracked.state.id()));
            let state = if tracked.removed {
                if tracked.loaded.is_none() {
                    continue; // added and removed in this unit: never stored
                }
                None
            } else if A::EVENT_SOURCED {
                // The events are the state: nothing raised, nothing to write.
                if tracked.state.pending_events().is_empty() {
                    continue;
                }
                Some(Arc::from(EVENT_SOURCED_HEAD))
            } else {
                let unchanged = tracked.state.pending_events().is_empty();
                let loaded = tracked.loaded.as_deref();
                // Unchanged (same JSON, no events): nothing to write, and no copy of the text made.
                let state = crate::json::with_json(&tracked.state, |json| {
                    (!(unchanged && loaded == Some(json))).then(|| Arc::<str>::from(json))
                })
                .map_err(|e| unserializable(&stream, e))?;
                let Some(state) = state else { continue };
                Some(state)
            };
            if !tracked.removed {
                let rejected = |e: ValidationError| ProcessError::from_domain(self.message, e.into());
                // Pre-invariants, on the state as loaded: whether it may change at all.
                if let Some(original) = &tracked.original {
                    let mut errors = ValidationError::default();
                    tracked.state.check_pre_of_change(original, &Path::Root, &mut errors);
                    errors.into_result().map_err(rejected)?;
                }
                tracked.state.check(Phase::Post).map_err(rejected)?;
            }
            let loaded_version = tracked.state.__meta().version;
            let raised = tracked.state.take_events();
            checked_events(&raised, self.message)?;
            let mut snapshot = None;
            if A::EVENT_SOURCED && !tracked.removed {
                let (before, every) = (tracked.state.__meta().sequence, self.engine.snapshot_every());
                let after = before + raised.len() as u64;
                if every > 0 && after / every > before / every {
                    let json = crate::json::to_shared(&tracked.state).map_err(|e| unserializable(&stream, e))?;
                    snapshot = Some(json);
                }
            }
            let events = envelopes(&self.engine, raised, &stream, self.cause, &mut self.delivered)?;
            // An event-sourced aggregate's version counts its events; any other's, its commits.
            let advance = if A::EVENT_SOURCED { events.len() as u64 } else { 1 };
            commits.push(Commit { stream, expected_version: loaded_version, advance, state, events, snapshot });
        }
        Ok(commits)
    }
}

/// Refuses events stored with a value JSON cannot hold (a NaN): they would never read
/// back.
fn checked_events(raised: &[RaisedEvent], message: &'static str) -> Result<(), ProcessError> {
    for event in raised {
        if let Err(broken) = event.validate() {
            let mut errors = ValidationError::default();
            errors.merge_under(&Path::Root.field(event.type_name()), broken);
            return Err(ProcessError::from_domain(message, errors.into()));
        }
    }
    Ok(())
}

/// The envelopes of the events `raised` on `stream`; those no handler will ever take
/// are added to `delivered`.
fn envelopes(
    engine: &Engine,
    raised: Vec<RaisedEvent>,
    stream: &StreamId,
    cause: Cause,
    delivered: &mut Vec<uuid::Uuid>,
) -> Result<Vec<Envelope>, ProcessError> {
    let mut events = Vec::with_capacity(raised.len());
    for event in raised {
        let envelope = Envelope::new(event, stream.clone(), cause)
            .map_err(|e| unserializable(format_args!("an event of {stream}"), e))?;
        if engine.handler_count(&envelope.type_name) == 0 {
            delivered.push(envelope.id); // nothing will ever take it
        }
        events.push(envelope);
    }
    Ok(events)
}

/// What a unit of work writes besides the aggregates' commits, once they are made.
struct Unit {
    engine: Arc<Engine>,
    cause: Cause,
    message: &'static str,
    handled: Option<Handled>,
    delivered: Vec<uuid::Uuid>,
    reply: Option<String>,
    /// What the unit read and decided on: checked by the store at commit.
    reads: Vec<RowRead>,
}

/// Writes `commits` with what `unit` records (the inline projections' rows, the handled
/// record, the deliveries), atomically: the part of `Context::commit_unit` that does not
/// depend on the aggregate type.
async fn finish_unit(mut unit: Unit, commits: Vec<Commit>) -> Result<Vec<Committed>, ProcessError> {
    // Inline projectors change their rows in this transaction, from the events raised.
    let mut rows = Vec::new();
    if unit.engine.has_inline_projectors() {
        let mut inline = crate::runtime::projection::InlineRows::default();
        for envelope in commits.iter().flat_map(|c| c.events.iter()) {
            inline.apply(&unit.engine, envelope, unit.message).await?;
        }
        rows = inline.changes();
    }
    if let Some(reply) = unit.reply.take() {
        // An idempotent command: its id is recorded in this transaction, with what a
        // copy of it will be handed back.
        let outcome = crate::runtime::idempotency::outcome_json(&reply, &commits)
            .map_err(|e| unserializable(format_args!("the outcome of {}", unit.message), e))?;
        let handler = Cow::Borrowed(unit.message);
        unit.handled = Some(Handled { handler, message_id: unit.cause.causation_id, outcome: Some(outcome) });
    }
    if commits.is_empty() && unit.handled.is_none() {
        return Ok(Vec::new());
    }
    let command = unit.handled.as_ref().is_some_and(|h| h.outcome.is_some());
    let projected = !rows.is_empty() || !unit.reads.is_empty();
    let batch = Batch {
        commits,
        handled: unit.handled,
        delivered: unit.delivered,
        rows,
        reads: unit.reads,
        ..Batch::default()
    };
    match unit.engine.store().commit(batch).await {
        // A command's copy is told so: the caller hands back the first one's outcome.
        Err(error @ StoreError::AlreadyHandled { .. }) if command => Err(ProcessError::Store(error)),
        // Another delivery of the same event got there first: its effects are stored once.
        Err(StoreError::AlreadyHandled { .. }) => Ok(Vec::new()),
        Ok(committed) => {
            if committed.iter().any(|c| !c.events.is_empty()) {
                unit.engine.wake();
            }
            Ok(committed)
        }
        Err(error) => {
            if projected && matches!(error, StoreError::Conflict(_)) {
                // A row may be behind a switched copy: read the projections' state again.
                unit.engine.forget_projection_states();
            }
            Err(ProcessError::from(error))
        }
    }
}
