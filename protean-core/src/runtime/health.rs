//! Dead letters and health: what an operator asks of a domain whose reactions run in
//! the background. Listing, inspecting, redelivering and discarding failed deliveries, and
//! the lag and counts a health endpoint reports.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::model::element::ElementKind;
use crate::registry::{Model, StoreFacts};
use crate::runtime::engine::Engine;
use crate::runtime::engine::HandlerDescriptor;
use crate::runtime::outcome::ProcessError;
use crate::store::{
    FailedDelivery, FailureQuery, FailureStatus, FailureUpdate, OffsetDateTime, ScheduledCounts, StreamId, WorkerBeat,
};

/// The outbox and the handlers at a glance, from [`Domain::delivery_status`](crate::runtime::Domain::delivery_status).
///
/// It serializes (with serde) as a health endpoint's JSON: `oldest_undelivered` as
/// RFC 3339 text (or `null`), `lag` as a number of seconds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeliveryStatus {
    /// Events not yet delivered to every handler.
    pub undelivered: u64,
    /// The earliest [`recorded_at`](crate::store::Envelope::recorded_at) among them.
    /// While no event is committed it only moves forward (see
    /// [`OutboxStatus::oldest_undelivered`](crate::store::OutboxStatus::oldest_undelivered)).
    #[serde(with = "time::serde::rfc3339::option")]
    pub oldest_undelivered: Option<OffsetDateTime>,
    /// How long the oldest has waited (the delivery lag): zero when all are delivered.
    #[serde(serialize_with = "seconds")]
    pub lag: Duration,
    /// Failed deliveries being retried, of every handler (in the store: every
    /// process's, and those of handlers of other domains on the same store).
    pub retrying: u64,
    /// Dead letters, of every handler: deliveries that failed on their last attempt and
    /// wait to be redelivered or discarded. Alert when it is above zero.
    pub dead: u64,
    /// Events held behind dead letters (the later events of their streams, for the
    /// handlers that hold a stream behind a dead letter), of every handler.
    pub held: u64,
    /// Each event handler of the domain, by name, with those of other domains on the
    /// same store that have failures.
    pub handlers: Vec<HandlerHealth>,
    /// The sets of delivery workers seen alive (of every process on the store): started
    /// and not stopped, their last beat less than three beats old. Latest beat first.
    pub workers: Vec<WorkerBeat>,
    /// Commands process managers sent or scheduled that have not fired, and how many of
    /// them are due.
    pub scheduled: ScheduledCounts,
}

/// A duration as a number of seconds.
pub(crate) fn seconds<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// One event handler's deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HandlerHealth {
    /// The handler (`"InventoryReactions::reserve"`).
    pub handler: String,
    /// Deliveries that succeeded in this process since the domain was built (workers,
    /// inline delivery and redeliveries).
    pub delivered: u64,
    /// Events it failed on that are being retried (in the store: every process's).
    pub retrying: u64,
    /// Its dead letters.
    pub dead: u64,
    /// Events held behind its dead letters.
    pub held: u64,
}

/// What redelivering or discarding a dead letter delivered, and what failed again.
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use = "a redelivery may fail again: check `failed`"]
pub struct Redelivered {
    /// The (handler, event id) pairs delivered: the redelivered dead letter, then the
    /// events that were held behind it, in stream order.
    pub delivered: Vec<(String, Uuid)>,
    /// Dead letters that failed again, as now stored (one more attempt, the new error).
    pub failed: Vec<FailedDelivery>,
}

/// [`Domain::delivery_status`](crate::runtime::Domain::delivery_status), on an engine.
pub(crate) async fn delivery_status(engine: &Engine) -> Result<DeliveryStatus, ProcessError> {
    let status = engine.store.outbox_status().await?;
    let lag = status.oldest_undelivered.map_or(Duration::ZERO, |oldest| {
        Duration::try_from(OffsetDateTime::now_utc() - oldest).unwrap_or(Duration::ZERO)
    });
    let mut handlers: Vec<HandlerHealth> = engine
        .delivered
        .iter()
        .map(|(name, count)| HandlerHealth {
            handler: (*name).to_owned(),
            delivered: count.load(Ordering::Relaxed),
            ..HandlerHealth::default()
        })
        .collect();
    for counts in status.failures {
        let entry = match handlers.iter_mut().find(|h| h.handler == counts.handler) {
            Some(entry) => entry,
            None => {
                // A handler of another domain on the same store.
                handlers.push(HandlerHealth { handler: counts.handler.clone(), ..HandlerHealth::default() });
                handlers.last_mut().expect("just pushed")
            }
        };
        (entry.retrying, entry.dead, entry.held) = (counts.retrying, counts.dead, counts.held);
    }
    handlers.sort_by(|a, b| a.handler.cmp(&b.handler));
    let now = OffsetDateTime::now_utc();
    let mut workers = engine.store.worker_beats().await?;
    workers.retain(|beat| beat.alive_at(now));
    let scheduled = engine.store.count_scheduled(now).await?;
    let total = |count: fn(&HandlerHealth) -> u64| handlers.iter().map(count).sum();
    let status = DeliveryStatus {
        undelivered: status.undelivered,
        oldest_undelivered: status.oldest_undelivered,
        lag,
        retrying: total(|h| h.retrying),
        dead: total(|h| h.dead),
        held: total(|h| h.held),
        handlers,
        workers,
        scheduled,
    };
    // The lag and undelivered gauges are set from every status read (docs/metrics.md).
    let dead = status.handlers.iter().map(|h| (h.handler.as_str(), h.dead));
    engine.metrics.status(status.lag, status.undelivered, dead);
    Ok(status)
}

/// [`Domain::delivery_failures`](crate::runtime::Domain::delivery_failures), on an engine.
pub(crate) async fn delivery_failures(
    engine: &Engine,
    query: FailureQuery,
) -> Result<Vec<FailedDelivery>, ProcessError> {
    Ok(engine.store.failed_deliveries(query).await?)
}

/// [`Domain::dead_letters`](crate::runtime::Domain::dead_letters), on an engine.
pub(crate) async fn dead_letters(engine: &Engine) -> Result<Vec<FailedDelivery>, ProcessError> {
    let query = FailureQuery { status: Some(FailureStatus::Dead), ..FailureQuery::default() };
    delivery_failures(engine, query).await
}

/// [`Domain::redeliver`](crate::runtime::Domain::redeliver), on an engine.
pub(crate) async fn redeliver(
    engine: &Arc<Engine>,
    handler: &str,
    event_id: Uuid,
) -> Result<Redelivered, ProcessError> {
    let failure = releasable(engine, handler, event_id).await?;
    let descriptor = descriptor(engine, &failure)?;
    let stream = failure.event.stream.clone();
    let mut redelivered = Redelivered::default();
    let released = match failure.status {
        FailureStatus::Dead => deliver_again(engine, descriptor, failure, &mut redelivered).await?,
        _ => true, // stranded: it and what is held after it go out in order
    };
    if released {
        release_held(engine, descriptor, stream, &mut redelivered).await?;
    }
    Ok(redelivered)
}

/// [`Domain::redeliver_all`](crate::runtime::Domain::redeliver_all), on an engine.
pub(crate) async fn redeliver_all(engine: &Arc<Engine>) -> Result<Redelivered, ProcessError> {
    let mut all = Redelivered::default();
    for failure in dead_letters(engine).await? {
        redeliver_into(engine, &failure, &mut all).await?;
    }
    let held = FailureQuery { status: Some(FailureStatus::Held), ..FailureQuery::default() };
    let mut streams = HashSet::new();
    for failure in delivery_failures(engine, held).await? {
        // The first held delivery of each handler's stream: the others go out behind it.
        if streams.insert((failure.handler.clone(), failure.event.stream.clone())) {
            redeliver_into(engine, &failure, &mut all).await?;
        }
    }
    Ok(all)
}

/// [`redeliver`]s `failure` into `all`; nothing when there is nothing to redeliver any
/// more (an earlier redelivery of the same stream settled it) or it waits behind a dead letter
/// (one that failed again).
async fn redeliver_into(
    engine: &Arc<Engine>,
    failure: &FailedDelivery,
    all: &mut Redelivered,
) -> Result<(), ProcessError> {
    match redeliver(engine, &failure.handler, failure.event.id).await {
        Ok(redelivered) => {
            all.delivered.extend(redelivered.delivered);
            all.failed.extend(redelivered.failed);
            Ok(())
        }
        Err(ProcessError::NoDeadLetter { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}

/// [`Domain::discard`](crate::runtime::Domain::discard), on an engine.
pub(crate) async fn discard(engine: &Arc<Engine>, handler: &str, event_id: Uuid) -> Result<Redelivered, ProcessError> {
    let failure = releasable(engine, handler, event_id).await?;
    let descriptor = descriptor(engine, &failure)?;
    engine.store.remove_failure(handler, event_id).await?;
    let (status, stream) = (failure.status, failure.event.stream);
    tracing::warn!(handler, event_id = %event_id, stream = %stream, %status, "failed delivery discarded");
    let mut redelivered = Redelivered::default();
    release_held(engine, descriptor, stream, &mut redelivered).await?;
    Ok(redelivered)
}

/// The failed delivery of `event_id` to `handler` that a redelivery or a discard may act on:
/// a dead letter, or a held delivery with no dead letter or retried failure of its
/// handler and stream ahead of it (stranded). Otherwise [`ProcessError::NoDeadLetter`].
async fn releasable(engine: &Engine, handler: &str, event_id: Uuid) -> Result<FailedDelivery, ProcessError> {
    let none = || ProcessError::NoDeadLetter { handler: handler.to_owned(), event_id };
    let failure = engine.store.failed_delivery(handler, event_id).await?.ok_or_else(none)?;
    match failure.status {
        FailureStatus::Dead => Ok(failure),
        FailureStatus::Held if !waits(engine, &failure).await? => Ok(failure),
        _ => Err(none()),
    }
}

/// Whether a dead letter or a retried failure of the same handler and stream comes
/// before the held delivery `held`: the first of each, looked up by status.
async fn waits(engine: &Engine, held: &FailedDelivery) -> Result<bool, ProcessError> {
    for status in [FailureStatus::Dead, FailureStatus::Retrying] {
        let query = FailureQuery {
            handler: Some(held.handler.clone()),
            stream: Some(held.event.stream.clone()),
            status: Some(status),
            limit: 1,
        };
        let first = engine.store.failed_deliveries(query).await?;
        if first.first().is_some_and(|f| f.event.sequence < held.event.sequence) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn descriptor(engine: &Engine, failure: &FailedDelivery) -> Result<&'static HandlerDescriptor, ProcessError> {
    engine
        .event_handler(&failure.handler, &failure.event.type_name)
        .ok_or_else(|| ProcessError::NoDeadLetter { handler: failure.handler.clone(), event_id: failure.event.id })
}

/// Runs `handler` on a failed delivery's event once. `Ok(true)` when delivered (or
/// already handled): forgotten, and recorded in `redelivered`; `Ok(false)` when it failed
/// again: dead, with one more attempt, in `redelivered.failed`.
async fn deliver_again(
    engine: &Arc<Engine>,
    handler: &'static HandlerDescriptor,
    failure: FailedDelivery,
    redelivered: &mut Redelivered,
) -> Result<bool, ProcessError> {
    let event = &failure.event;
    let outcome = if engine.store.is_handled(handler.info.id, event.id).await? {
        Ok(Vec::new())
    } else {
        engine.run_event_handler(handler, event).await
    };
    match outcome {
        Ok(committed) => {
            engine.store.remove_failure(handler.info.id, event.id).await?;
            engine.count_delivered(handler.info.id);
            redelivered.delivered.push((handler.info.id.to_owned(), event.id));
            if engine.inline() {
                // What the handler raised goes on as in `process`; failures are kept for `retry_failed`.
                let raised = committed.into_iter().flat_map(|c| c.events).collect();
                let _ = engine.deliver(raised).await;
            }
            Ok(true)
        }
        Err(error) => {
            let update = FailureUpdate {
                handler: handler.info.id.into(),
                event: event.clone(),
                status: FailureStatus::Dead,
                error: error.to_string(),
                at: OffsetDateTime::now_utc(),
            };
            let attempts = engine.store.record_failure(update).await?;
            let last_error = error.to_string();
            redelivered.failed.push(FailedDelivery {
                status: FailureStatus::Dead,
                attempts,
                last_error,
                last_failed_at: OffsetDateTime::now_utc(),
                ..failure
            });
            Ok(false)
        }
    }
}

/// Delivers, in stream order, the events of `stream` held for `handler` that no dead
/// letter (nor retried failure) comes before any more: the first ones listed, up to the
/// first failure that is not held. Lists again after each page, until none is left or
/// one fails (it becomes the stream's dead letter, holding the rest).
///
/// It cannot miss an event a worker holds meanwhile: a worker writes a held record only
/// while a failure ahead of it is still stored
/// ([`Deliveries::hold_behind_dead_letter`](crate::store::Deliveries::hold_behind_dead_letter)),
/// and the listing that ends the release comes after the last of those was removed.
async fn release_held(
    engine: &Arc<Engine>,
    handler: &'static HandlerDescriptor,
    stream: StreamId,
    redelivered: &mut Redelivered,
) -> Result<(), ProcessError> {
    loop {
        let query = FailureQuery {
            handler: Some(handler.info.id.to_owned()),
            stream: Some(stream.clone()),
            status: None,
            limit: 100,
        };
        let failures = engine.store.failed_deliveries(query).await?;
        let free: Vec<FailedDelivery> = failures.into_iter().take_while(|f| f.status == FailureStatus::Held).collect();
        if free.is_empty() {
            return Ok(()); // all delivered, or another dead letter (or a retry) comes first
        }
        for failure in free {
            if !deliver_again(engine, handler, failure, redelivered).await? {
                return Ok(()); // the new dead letter holds the rest
            }
        }
    }
}

/// The old name of [`Redelivered`]: a dead letter is redelivered, not redelivered like an
/// event stream.
#[deprecated(since = "0.2.0", note = "renamed `Redelivered`")]
pub type Replayed = Redelivered;

/// At most this many pending scheduled commands (earliest due first) are read for
/// [`store_facts`].
pub(crate) const SCHEDULED_READ: usize = 100_000;

/// What the store holds for the rules that read it: how many events of each of the
/// model's event types (one count per type), and the pending scheduled commands by type
/// (the first [`SCHEDULED_READ`], earliest due first).
pub(crate) async fn store_facts(engine: &Engine, model: &Model) -> Result<StoreFacts, ProcessError> {
    let store = engine.store();
    let mut facts = StoreFacts::default();
    for event in model.of_kind(ElementKind::Event) {
        let count = store.log_count(0, &[event.type_name.to_owned()]).await?;
        facts.events.insert(event.type_name.to_owned(), count);
    }
    for scheduled in store.pending_scheduled(SCHEDULED_READ).await? {
        *facts.scheduled.entry(scheduled.type_name.into_owned()).or_default() += 1;
    }
    Ok(facts)
}
