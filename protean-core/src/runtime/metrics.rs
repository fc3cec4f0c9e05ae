//! Metrics through the [`metrics`](::metrics) facade: the handles of every counter, gauge
//! and histogram a domain records, registered once when the domain is built and kept
//! here, so that recording one costs a map lookup by a `&'static str` and an atomic
//! update, with no label allocated per call. Without a recorder installed the handles are
//! no-ops. docs/metrics.md lists every metric, its labels and when it is recorded.

use std::time::{Duration, Instant};

use ::metrics::{Counter, Gauge, Histogram, Unit};
use foldhash::{HashMap, HashMapExt};

use crate::runtime::outcome::ProcessError;
use crate::store::{Envelope, OffsetDateTime};

/// Commands given to `Domain::process`, by command type and outcome.
pub(crate) const COMMANDS: &str = "protean_commands_total";
/// How long `Domain::process` took, by command type.
pub(crate) const COMMAND_DURATION: &str = "protean_command_duration_seconds";
/// Commands sent or scheduled by process managers that fired, by command type and outcome.
pub(crate) const SCHEDULED: &str = "protean_scheduled_commands_total";
/// Successful deliveries, by handler.
pub(crate) const DELIVERIES: &str = "protean_deliveries_total";
/// Failed delivery attempts, by handler.
pub(crate) const FAILURES: &str = "protean_delivery_failures_total";
/// Deliveries dead-lettered by the workers, by handler.
pub(crate) const DEAD_LETTERED: &str = "protean_dead_letters_total";
/// From an event's `recorded_at` to its handler's commit, by handler.
pub(crate) const REACTION_LATENCY: &str = "protean_reaction_latency_seconds";
/// The age of the oldest undelivered event.
pub(crate) const LAG: &str = "protean_delivery_lag_seconds";
/// Events not yet delivered to every handler.
pub(crate) const UNDELIVERED: &str = "protean_undelivered_events";
/// Dead letters waiting to be redelivered or discarded, by handler.
pub(crate) const DEAD_WAITING: &str = "protean_dead_letters_waiting";
/// Events a projection's latest rebuild has applied.
pub(crate) const REBUILD_DONE: &str = "protean_rebuild_events_done";
/// Events a projection's latest rebuild has to apply.
pub(crate) const REBUILD_TOTAL: &str = "protean_rebuild_events_total";

/// The handles of one command type.
struct CommandMetrics {
    processed: Counter,
    rejected: Counter,
    conflicted: Counter,
    failed: Counter,
    duration: Histogram,
    fired: Counter,
    refused: Counter,
    fire_failed: Counter,
}

impl CommandMetrics {
    fn new(command: &'static str) -> Self {
        let outcome = |outcome: &'static str| ::metrics::counter!(COMMANDS, "command" => command, "outcome" => outcome);
        let scheduled =
            |outcome: &'static str| ::metrics::counter!(SCHEDULED, "command" => command, "outcome" => outcome);
        CommandMetrics {
            processed: outcome("processed"),
            rejected: outcome("rejected"),
            conflicted: outcome("conflicted"),
            failed: outcome("failed"),
            duration: ::metrics::histogram!(COMMAND_DURATION, "command" => command),
            fired: scheduled("fired"),
            refused: scheduled("refused"),
            fire_failed: scheduled("failed"),
        }
    }
}

/// The handles of one event handler (a handler method, a process manager's step or an
/// async projector).
struct HandlerMetrics {
    delivered: Counter,
    failed: Counter,
    dead_lettered: Counter,
    latency: Histogram,
    dead_waiting: Gauge,
}

impl HandlerMetrics {
    fn new(handler: &'static str) -> Self {
        HandlerMetrics {
            delivered: ::metrics::counter!(DELIVERIES, "handler" => handler),
            failed: ::metrics::counter!(FAILURES, "handler" => handler),
            dead_lettered: ::metrics::counter!(DEAD_LETTERED, "handler" => handler),
            latency: ::metrics::histogram!(REACTION_LATENCY, "handler" => handler),
            dead_waiting: ::metrics::gauge!(DEAD_WAITING, "handler" => handler),
        }
    }
}

/// Every metric handle of a domain, registered with the recorder in place when the
/// domain is built (the global one, or a thread's local one at that moment).
pub(crate) struct Metrics {
    commands: HashMap<&'static str, CommandMetrics>,
    handlers: HashMap<&'static str, HandlerMetrics>,
    /// Each projection's rebuild progress: (done, total).
    rebuilds: HashMap<&'static str, (Gauge, Gauge)>,
    lag: Gauge,
    undelivered: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("commands", &self.commands.len())
            .field("handlers", &self.handlers.len())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// The handles of these command types, event handlers and projections, described
    /// to the recorder.
    pub(crate) fn new(
        commands: impl IntoIterator<Item = &'static str>,
        handlers: impl IntoIterator<Item = &'static str>,
        projections: impl IntoIterator<Item = &'static str>,
    ) -> Self {
        describe();
        let commands = commands.into_iter().map(|c| (c, CommandMetrics::new(c)));
        let handlers = handlers.into_iter().map(|h| (h, HandlerMetrics::new(h)));
        let rebuilds = projections.into_iter().map(|p| {
            let gauge = |name: &'static str| ::metrics::gauge!(name, "projection" => p);
            (p, (gauge(REBUILD_DONE), gauge(REBUILD_TOTAL)))
        });
        let mut metrics = Metrics {
            commands: HashMap::new(),
            handlers: HashMap::new(),
            rebuilds: HashMap::new(),
            lag: ::metrics::gauge!(LAG),
            undelivered: ::metrics::gauge!(UNDELIVERED),
        };
        metrics.commands.extend(commands);
        metrics.handlers.extend(handlers);
        metrics.rebuilds.extend(rebuilds);
        metrics
    }

    /// Records a command of type `command` given to `Domain::process` that ended with
    /// `outcome`, having started at `started`.
    pub(crate) fn command_done<T>(&self, command: &str, outcome: &Result<T, ProcessError>, started: Instant) {
        let Some(metrics) = self.commands.get(command) else { return };
        metrics.duration.record(started.elapsed());
        let counter = match outcome {
            Ok(_) => &metrics.processed,
            Err(ProcessError::Rejected { .. } | ProcessError::RejectedByProjector { .. }) => &metrics.rejected,
            Err(ProcessError::Conflict(_)) => &metrics.conflicted,
            Err(_) => &metrics.failed,
        };
        counter.increment(1);
    }

    /// Records commands of type `command` sent or scheduled by process managers that
    /// were fired: processed, refused (dropped) and failed (to be fired again later).
    pub(crate) fn fired(&self, command: &str, fired: u64, refused: u64, failed: u64) {
        let Some(metrics) = self.commands.get(command) else { return };
        metrics.fired.increment(fired);
        metrics.refused.increment(refused);
        metrics.fire_failed.increment(failed);
    }

    /// Records a delivery of `event` to `handler` that succeeded (with the time from the
    /// event's commit to now) or failed.
    pub(crate) fn delivered(&self, handler: &str, event: &Envelope, ok: bool) {
        let Some(metrics) = self.handlers.get(handler) else { return };
        if ok {
            metrics.delivered.increment(1);
            let latency = OffsetDateTime::now_utc() - event.recorded_at;
            metrics.latency.record(latency.as_seconds_f64().max(0.0));
        } else {
            metrics.failed.increment(1);
        }
    }

    /// Records a delivery to `handler` dead-lettered.
    pub(crate) fn dead_lettered(&self, handler: &str) {
        if let Some(metrics) = self.handlers.get(handler) {
            metrics.dead_lettered.increment(1);
        }
    }

    /// Sets a projection's rebuild gauges: `done` of `total` events applied.
    pub(crate) fn rebuild(&self, projection: &str, done: u64, total: u64) {
        if let Some((done_gauge, total_gauge)) = self.rebuilds.get(projection) {
            done_gauge.set(done as f64);
            total_gauge.set(total as f64);
        }
    }

    /// Sets the gauges from a delivery status just read: the `lag`, the `undelivered`
    /// count, and the dead letters waiting of each handler of this domain (`dead`:
    /// handler name and count).
    pub(crate) fn status<'a>(&self, lag: Duration, undelivered: u64, dead: impl IntoIterator<Item = (&'a str, u64)>) {
        self.lag.set(lag.as_secs_f64());
        self.undelivered.set(undelivered as f64);
        for (handler, count) in dead {
            if let Some(metrics) = self.handlers.get(handler) {
                metrics.dead_waiting.set(count as f64);
            }
        }
    }
}

/// Describes every metric (its unit and meaning) to the current recorder: the `# HELP`
/// lines of a Prometheus scrape.
fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        COMMANDS,
        "Commands given to Domain::process, by command type and outcome (processed, rejected, conflicted, failed)"
    );
    describe_histogram!(COMMAND_DURATION, Unit::Seconds, "How long Domain::process took, by command type");
    describe_counter!(
        SCHEDULED,
        "Commands sent or scheduled by process managers that were fired, by command type and outcome (fired, refused, failed)"
    );
    describe_counter!(DELIVERIES, "Successful deliveries of an event to a handler, by handler");
    describe_counter!(FAILURES, "Failed delivery attempts, by handler");
    describe_counter!(
        DEAD_LETTERED,
        "Deliveries that failed on their last attempt and became dead letters, by handler"
    );
    describe_histogram!(
        REACTION_LATENCY,
        Unit::Seconds,
        "From an event's commit (recorded_at) to its handler's success, by handler"
    );
    describe_gauge!(LAG, Unit::Seconds, "Age of the oldest undelivered event (0 when all are delivered)");
    describe_gauge!(UNDELIVERED, "Events not yet delivered to every handler");
    describe_gauge!(DEAD_WAITING, "Dead letters waiting to be redelivered or discarded, by handler");
    describe_gauge!(REBUILD_DONE, "Events the projection's latest rebuild has applied, by projection");
    describe_gauge!(REBUILD_TOTAL, "Events the projection's latest rebuild has to apply, by projection");
}

/// How often running delivery workers refresh the lag and undelivered gauges.
pub(crate) fn gauge_interval(poll_interval: Duration) -> Duration {
    poll_interval.max(Duration::from_secs(5))
}
