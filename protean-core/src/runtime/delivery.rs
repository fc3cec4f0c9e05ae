//! Delivery: each event to every handler that reacts to it, each in its own unit of
//! work; failures are kept for [`Domain::retry_failed`](crate::runtime::Domain::retry_failed).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, MutexGuard};

use tracing::Instrument;
use uuid::Uuid;

use crate::runtime::engine::{Engine, HandlerDescriptor, Route};
use crate::runtime::outcome::{Delivered, DeliveryFailure, ProcessError, Processed};
use crate::store::{Committed, Envelope, StreamId};

impl Engine {
    pub(crate) fn failures(&self) -> MutexGuard<'_, Vec<DeliveryFailure>> {
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
        // A handler that failed on an event of a stream is not given the stream's later
        // events (they stay undelivered; `deliver_pending` brings them in order); the
        // other handlers go on.
        let mut stalled: HashSet<(&'static str, StreamId)> = HashSet::new();
        while let Some(event) = queue.pop_front() {
            let mut complete = true;
            let mut given = false;
            let handlers = self.events.get(&*event.type_name).map(Vec::as_slice).unwrap_or_default();
            // Fresh events with no handler, or whose only handler succeeded, were marked
            // delivered in the transaction that wrote them or handled them.
            let marked = !redelivery && handlers.len() <= 1;
            for &handler in handlers {
                if !stalled.is_empty() && stalled.contains(&(handler.info.id, event.stream.clone())) {
                    complete = false;
                    continue;
                }
                given = true;
                let outcome = if redelivery {
                    match self.store.is_handled(handler.info.id, event.id).await {
                        Ok(true) => continue,
                        Ok(false) => self.run_event_handler(handler, &event).await,
                        // Not knowing is not "not handled": the delivery fails and is retried.
                        Err(error) => Err(ProcessError::from(error)),
                    }
                } else {
                    self.run_event_handler(handler, &event).await
                };
                match outcome {
                    Ok(committed) => {
                        self.count_delivered(handler.info.id);
                        queue.extend(committed.into_iter().flat_map(|c| c.events));
                    }
                    Err(error) => {
                        complete = false;
                        stalled.insert((handler.info.id, event.stream.clone()));
                        failures.push(DeliveryFailure { handler: handler.info, event: event.clone(), error });
                    }
                }
            }
            if complete && !marked {
                done.push(event.id);
            }
            if given || handlers.is_empty() {
                delivered.push(event);
            }
        }
        self.mark_delivered(done).await;
        if self.flows {
            // Commands the process managers sent: fired now, delivered the same way.
            if let Err(error) = self.fire_due(time::OffsetDateTime::now_utc(), 100, self.lease).await {
                tracing::warn!(error = &error as &dyn std::error::Error, "could not fire sent commands; they wait");
            }
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

    /// Marks events delivered. A failure is logged and not returned: the events are
    /// claimed again later, and the handlers that took them skip them.
    async fn mark_delivered(&self, events: Vec<Uuid>) {
        if events.is_empty() {
            return;
        }
        let count = events.len();
        if let Err(error) = self.store.mark_delivered(events).await {
            tracing::warn!(
                events = count,
                error = &error as &dyn std::error::Error,
                "could not mark events delivered; they will be claimed and skipped again"
            );
        }
    }

    /// Runs one handler on one event, in its own unit of work, inside a `deliver` span.
    pub(crate) async fn run_event_handler(
        self: &Arc<Self>,
        handler: &'static HandlerDescriptor,
        event: &Envelope,
    ) -> Result<Vec<Committed>, ProcessError> {
        let span = tracing::info_span!(
            "deliver",
            handler = handler.info.id,
            event = &*event.type_name,
            event_id = %event.id,
            stream = %event.stream,
            sequence = event.sequence,
            correlation_id = %event.correlation_id,
        );
        let outcome = async {
            match handler.route {
                Route::Event(route) => route(self, event, handler.info.id).await,
                Route::Project(route) => {
                    crate::runtime::projection::deliver_to_projector(self, event, handler.info.id, &route).await
                }
                Route::Command(_) => Err(ProcessError::Unhandled(handler.info.type_name)),
            }
        }
        .instrument(span.clone())
        .await;
        self.metrics.delivered(handler.info.id, event, outcome.is_ok());
        if let Err(error) = &outcome {
            span.in_scope(|| tracing::warn!(error = error as &dyn std::error::Error, "delivery failed"));
        }
        outcome
    }

    /// The event handler registered as `id` for events of `type_name`.
    pub(crate) fn event_handler(&self, id: &str, type_name: &str) -> Option<&'static HandlerDescriptor> {
        self.events.get(type_name)?.iter().copied().find(|h| h.info.id == id)
    }

    /// Claims and delivers what the store holds undelivered, batch by batch.
    pub(crate) async fn deliver_pending(self: &Arc<Self>) -> Result<Delivered, ProcessError> {
        const BATCH: usize = 256;
        let mut delivered = Vec::new();
        let mut failures = Vec::new();
        let mut seen = HashSet::new();
        loop {
            let claimed = self.store.claim_undelivered(BATCH, self.lease).await?;
            // An event met again in this call failed (or could not be marked): it waits for
            // the next call. Stop when only such events come back.
            let fresh: Vec<Envelope> = claimed.into_iter().filter(|e| seen.insert(e.id)).collect();
            if fresh.is_empty() {
                break;
            }
            tracing::debug!(events = fresh.len(), "claimed undelivered events");
            let Delivered { events: more, failures: failed } = self.deliver_checked(fresh, true).await;
            seen.extend(more.iter().map(|e| e.id));
            delivered.extend(more);
            failures.extend(failed);
        }
        Ok(Delivered { events: delivered, failures })
    }

    /// Delivers each failed event again to the handler that failed on it.
    pub(crate) async fn retry_failed(self: &Arc<Self>) -> Delivered {
        let pending = std::mem::take(&mut *self.failures());
        let mut delivered = Vec::new();
        let mut failures = Vec::new();
        for (i, failure) in pending.iter().enumerate() {
            let failure = failure.clone();
            let Some(handler) = self.event_handler(failure.handler.id, &failure.event.type_name) else {
                continue; // only this engine's handlers fail here
            };
            tracing::info!(handler = handler.info.id, event_id = %failure.event.id, "retrying a failed delivery");
            match self.run_event_handler(handler, &failure.event).await {
                Ok(committed) => {
                    // The event is delivered only when no handler of it is still to be retried
                    // here, nor failing now.
                    let same = |f: &DeliveryFailure| f.event.id == failure.event.id;
                    let waiting = pending[i + 1..].iter().any(same)
                        || self.failures().iter().any(same)
                        || failures.iter().any(same);
                    if !waiting {
                        self.mark_delivered(vec![failure.event.id]).await;
                    }
                    let raised = committed.into_iter().flat_map(|c| c.events).collect();
                    let Delivered { events: more, failures: failed } = self.deliver(raised).await;
                    delivered.extend(more);
                    failures.extend(failed);
                }
                Err(error) => {
                    let failure = DeliveryFailure { error, ..failure };
                    self.failures().push(failure.clone());
                    failures.push(failure);
                }
            }
        }
        Delivered { events: delivered, failures }
    }
}
