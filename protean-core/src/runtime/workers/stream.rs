//! One stream's claimed events, worked in order: each handler given each event, retried
//! after its backoff on a task of its own when it fails, dead-lettered or held behind a
//! dead letter, and the event finished once every handler has settled it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::{joined, say, unobserved, Counts, Shared};
use crate::runtime::engine::{Engine, HandlerDescriptor};
use crate::runtime::policy::WhenDead;
use crate::store::{Envelope, FailureStatus, FailureUpdate, HandlerState, OffsetDateTime};

/// Claimed events grouped by stream, each group in claim (so stream) order, the groups
/// in the order of their first event.
pub(super) fn by_stream(events: Vec<Envelope>) -> Vec<Vec<Envelope>> {
    let mut groups: Vec<Vec<Envelope>> = Vec::new();
    let mut index: foldhash::HashMap<crate::store::StreamId, usize> = foldhash::HashMap::default();
    for event in events {
        match index.get(&event.stream) {
            Some(&i) => groups[i].push(event),
            None => {
                index.insert(event.stream.clone(), groups.len());
                groups.push(vec![event]);
            }
        }
    }
    groups
}

/// One stream's claimed events, shared by the stream's task and the tasks of the
/// handlers split off from it: how many handlers have yet to settle each event.
struct StreamWork {
    events: Vec<Envelope>,
    /// Per event (same index), its handlers that have not settled it yet.
    unsettled: Vec<AtomicUsize>,
}

impl StreamWork {
    fn new(engine: &Engine, events: Vec<Envelope>) -> Self {
        let unsettled = events.iter().map(|e| AtomicUsize::new(engine.handler_count(&e.type_name))).collect();
        StreamWork { events, unsettled }
    }

    /// The events from the `from`-th on that `handler` takes (by index, in stream
    /// order), each with the handler's descriptor for its type.
    fn taken_by(&self, engine: &Engine, handler: &str, from: usize) -> Vec<(usize, &'static HandlerDescriptor)> {
        let taken = self.events.iter().enumerate().skip(from);
        taken.filter_map(|(i, event)| Some((i, engine.event_handler(handler, &event.type_name)?))).collect()
    }

    /// One handler has settled the `i`-th event; the last one finishes it (see [`finish`]).
    async fn settled(&self, shared: &Shared, i: usize, marked: bool) {
        if self.unsettled[i].fetch_sub(1, Ordering::AcqRel) == 1 {
            finish(shared, &self.events[i], marked).await;
        }
    }
}

/// Works one stream's claimed events, in order, until done or stopped. Each event is
/// given to its handlers one after the other, in their order (by name). A handler that
/// fails is split off: a task of its own retries the event after the backoff, then
/// gives the handler its later events of the stream, in order; the other handlers go
/// on here without waiting for it. An event is finished once every handler settled it.
pub(super) async fn work_stream(shared: Arc<Shared>, events: Vec<Envelope>) {
    let work = Arc::new(StreamWork::new(&shared.engine, events));
    let mut alone: JoinSet<()> = JoinSet::new();
    let mut split: Vec<&'static str> = Vec::new();
    'events: for (i, event) in work.events.iter().enumerate() {
        if shared.stop.is_set() {
            break; // what is not finished stays in `inflight`, and is released
        }
        let handlers = shared.engine.events.get(&*event.type_name).map(Vec::as_slice).unwrap_or_default();
        if handlers.is_empty() {
            // No handler takes it (claimed again after a crash): only to be marked.
            finish(&shared, event, false).await;
            continue;
        }
        for &handler in handlers {
            if split.contains(&handler.info.id) {
                continue; // its own task gives it the event
            }
            match attempt(&shared, handler, event).await {
                Attempt::Settled(marked) => work.settled(&shared, i, marked).await,
                Attempt::Failed(failed) => {
                    split.push(handler.info.id);
                    let events = work.taken_by(&shared.engine, handler.info.id, i);
                    alone.spawn(retry_alone(Arc::clone(&shared), Arc::clone(&work), events, failed));
                }
                Attempt::Stopped => break 'events,
            }
        }
    }
    while let Some(done) = alone.join_next().await {
        joined(done);
    }
}

/// A handler split off from its stream's task, after failing `failed` times on the
/// first of `events` (its events of the stream from there on, in order): retries that
/// one after the backoff until settled, then settles the others in turn.
async fn retry_alone(
    shared: Arc<Shared>,
    work: Arc<StreamWork>,
    events: Vec<(usize, &'static HandlerDescriptor)>,
    failed: u32,
) {
    let mut failed = Some(failed);
    for (i, handler) in events {
        if shared.stop.is_set() {
            return; // what is not finished stays in `inflight`, and is released
        }
        let event = &work.events[i];
        let settled = match failed.take() {
            Some(failed) => retry(&shared, handler, event, failed).await,
            None => settle(&shared, handler, event).await,
        };
        let Some(marked) = settled else { return };
        work.settled(&shared, i, marked).await;
    }
}

/// An event every handler of it has settled: marked delivered (unless its only
/// handler's commit did, `marked`), counted, and no longer in flight.
async fn finish(shared: &Shared, event: &Envelope, marked: bool) {
    if !marked {
        if let Err(error) = shared.engine.store.mark_delivered(vec![event.id]).await {
            Counts::add(&shared.counts.store_errors, 1);
            tracing::warn!(
                event_id = %event.id,
                error = &error as &dyn std::error::Error,
                "could not mark an event delivered; it will be claimed again and its handlers skip it"
            );
        }
    }
    Counts::add(&shared.counts.events, 1);
    shared.inflight().remove(&event.id);
}

/// What giving an event to a handler came to.
enum Attempt {
    /// Settled: handled (now or before), dead-lettered, or held. `true` when the
    /// handler's commit marked the event delivered (it does when the handler is the
    /// event's only one).
    Settled(bool),
    /// The handler failed, for the given number of times, and is given the event again
    /// after a backoff.
    Failed(u32),
    /// The workers stopped first.
    Stopped,
}

/// Gives `event` to `handler` until it has handled it, dead-lettered it or holds it,
/// retrying after each failure's backoff: `Some(marked)` (see [`Attempt::Settled`]), or
/// `None` when stopped first.
async fn settle(shared: &Shared, handler: &'static HandlerDescriptor, event: &Envelope) -> Option<bool> {
    match attempt(shared, handler, event).await {
        Attempt::Settled(marked) => Some(marked),
        Attempt::Failed(failed) => retry(shared, handler, event, failed).await,
        Attempt::Stopped => None,
    }
}

/// Gives `event` to `handler` once, unless the handler has handled it, or holds it
/// (or must, behind a dead letter of its stream).
async fn attempt(shared: &Shared, handler: &'static HandlerDescriptor, event: &Envelope) -> Attempt {
    let Some(state) = handler_state(shared, handler, event).await else { return Attempt::Stopped };
    if state.handled {
        return Attempt::Settled(false);
    }
    if state.held && state.attempts > 0 {
        // Dead already (a worker stopped after dead-lettering it, before marking the
        // event): settled for this handler.
        return Attempt::Settled(false);
    }
    let policy = shared.engine.retry_policy(handler.info.id);
    // Held only if the dead letter is still ahead when the held record is written
    // (one step in the store): replayed or discarded meanwhile, the event is delivered.
    if state.held && policy.when_dead == WhenDead::HoldStream {
        match hold(shared, handler, event).await {
            None => return Attempt::Stopped,
            Some(true) => {
                Counts::add(&shared.counts.held, 1);
                return Attempt::Settled(false);
            }
            Some(false) => {}
        }
    }
    run_once(shared, handler, event, state.attempts).await
}

/// Gives `event` to `handler` again after the backoff of its `failed`-th failure, and
/// so on until settled: `Some(marked)`, or `None` when stopped first.
async fn retry(shared: &Shared, handler: &'static HandlerDescriptor, event: &Envelope, failed: u32) -> Option<bool> {
    let policy = shared.engine.retry_policy(handler.info.id);
    let mut failed = failed;
    loop {
        if !pause(shared, policy.backoff(failed)).await {
            return None;
        }
        match run_once(shared, handler, event, failed).await {
            Attempt::Settled(marked) => return Some(marked),
            Attempt::Failed(again) => failed = again,
            Attempt::Stopped => return None,
        }
    }
}

/// Runs `handler` on `event` once, `attempts` failed attempts having been made, and
/// records the outcome: settled (handled, or dead-lettered on the last attempt
/// allowed), or failed, to be retried.
async fn run_once(shared: &Shared, handler: &'static HandlerDescriptor, event: &Envelope, attempts: u32) -> Attempt {
    let engine = &shared.engine;
    match engine.run_event_handler(handler, event).await {
        Ok(_) => {
            Counts::add(&shared.counts.deliveries, 1);
            engine.count_delivered(handler.info.id);
            if attempts > 0 {
                if let Err(error) = engine.store.remove_failure(handler.info.id, event.id).await {
                    Counts::add(&shared.counts.store_errors, 1);
                    tracing::warn!(error = &error as &dyn std::error::Error, "could not clear a retried failure");
                }
            }
            // Its only handler's commit marks an event delivered (see `Context`).
            Attempt::Settled(engine.handler_count(&event.type_name) == 1)
        }
        Err(error) => {
            Counts::add(&shared.counts.failed_attempts, 1);
            let dead = engine.retry_policy(handler.info.id).exhausted(attempts + 1);
            let update = FailureUpdate {
                handler: handler.info.id.into(),
                event: event.clone(),
                status: if dead { FailureStatus::Dead } else { FailureStatus::Retrying },
                error: error.to_string(),
                at: OffsetDateTime::now_utc(),
            };
            let attempts = record(shared, update).await.unwrap_or(attempts + 1);
            if !dead {
                return Attempt::Failed(attempts);
            }
            Counts::add(&shared.counts.dead_lettered, 1);
            engine.metrics.dead_lettered(handler.info.id);
            tracing::error!(
                handler = handler.info.id,
                event_id = %event.id,
                stream = %event.stream,
                attempts,
                error = &error as &dyn std::error::Error,
                "delivery failed on its last attempt: dead-lettered"
            );
            if unobserved() {
                say(format_args!(
                    "protean: dead letter: `{}` failed on {} #{} of {} (event {}) {attempts} time(s), the last with: \
                     {error}; redeliver it with `Domain::redeliver` once fixed",
                    handler.info.id, event.type_name, event.sequence, event.stream, event.id
                ));
            }
            Attempt::Settled(false)
        }
    }
}

/// Where `handler` stands with `event`. `None` when stopped before the store answered.
async fn handler_state(shared: &Shared, handler: &HandlerDescriptor, event: &Envelope) -> Option<HandlerState> {
    answered(shared, handler, "could not read a handler's delivery state", || {
        shared.engine.store.handler_state(handler.info.id, event)
    })
    .await
}

/// Holds `event` for `handler` behind a dead letter of its stream, if one is still ahead
/// of it: whether it is held. An event is never settled as held without its held
/// record. `None` when stopped before the store answered.
async fn hold(shared: &Shared, handler: &HandlerDescriptor, event: &Envelope) -> Option<bool> {
    let reason = format!("held behind a dead letter of {} for this handler", event.stream);
    answered(shared, handler, "could not hold an event behind a dead letter", || {
        shared.engine.store.hold_behind_dead_letter(handler.info.id, event, &reason, OffsetDateTime::now_utc())
    })
    .await
}

/// What the store answers to `ask`; a store that fails is asked again after a pause
/// (the handler's backoff), its error logged as `what`. `None` when stopped meanwhile.
async fn answered<T, F>(shared: &Shared, handler: &HandlerDescriptor, what: &str, ask: impl Fn() -> F) -> Option<T>
where
    F: std::future::Future<Output = Result<T, crate::store::StoreError>>,
{
    let mut failed = 0;
    loop {
        match ask().await {
            Ok(answer) => return Some(answer),
            Err(error) => {
                failed += 1;
                Counts::add(&shared.counts.store_errors, 1);
                tracing::warn!(error = &error as &dyn std::error::Error, "{what}");
                let wait = shared.engine.retry_policy(handler.info.id).backoff(failed);
                if !pause(shared, wait).await {
                    return None;
                }
            }
        }
    }
}

/// Records a failure; the attempts counted, or `None` when the store failed (logged).
async fn record(shared: &Shared, update: FailureUpdate) -> Option<u32> {
    match shared.engine.store.record_failure(update).await {
        Ok(attempts) => Some(attempts),
        Err(error) => {
            Counts::add(&shared.counts.store_errors, 1);
            tracing::warn!(error = &error as &dyn std::error::Error, "could not record a failed delivery");
            None
        }
    }
}

/// Waits `wait`, or less when the workers stop: whether the wait ran out.
async fn pause(shared: &Shared, wait: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => !shared.stop.is_set(),
        _ = shared.stop.wait() => false,
    }
}
