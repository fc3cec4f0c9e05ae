//! Delivery workers: reactions off the request path. A [`Workers`] handle claims
//! undelivered events per stream, with a lease, and gives each to its handlers, each in
//! its own unit of work, retrying or dead-lettering what fails (`stream.rs`). What they
//! promise, and how to run them, is in `docs/delivery.md` ("Workers").

mod beat;
mod stream;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::runtime::engine::Engine;
use stream::{by_stream, work_stream};

/// How delivery workers claim and run work.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Streams worked at once (default 16); a stream whose handler is retrying an event
    /// counts until that handler has settled the stream's claimed events.
    pub concurrency: usize,
    /// Events claimed at a time (default 128).
    pub batch: usize,
    /// How long a claim holds before another worker may take it over, if this one
    /// stops renewing it (default 30 s). Claims are renewed every third of it. On
    /// PostgreSQL a crashed process's claims are free at once, whatever their lease.
    pub lease: Duration,
    /// The longest a worker sleeps without looking at the outbox (default 1 s): the
    /// fallback when no signal arrives.
    pub poll_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 16,
            batch: 128,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
        }
    }
}

impl WorkerConfig {
    /// This configuration working `streams` streams at once (at least 1).
    pub fn concurrency(mut self, streams: usize) -> Self {
        self.concurrency = streams.max(1);
        self
    }

    /// This configuration claiming `events` events at a time (at least 1).
    pub fn batch(mut self, events: usize) -> Self {
        self.batch = events.max(1);
        self
    }

    /// This configuration with claims leased for `lease`.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// This configuration polling at least every `interval`.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }
}

/// Delivery workers not started yet: from [`Domain::workers`](crate::runtime::Domain::workers).
///
/// # Seeing failures
///
/// In background delivery `process` returns before the reactions run, so their failures
/// reach no caller: the workers log them through [`tracing`](https://docs.rs/tracing)
/// (each failed attempt, each dead letter, each store error), and
/// [`Domain::delivery_status`](crate::runtime::Domain::delivery_status) and
/// [`Domain::dead_letters`](crate::runtime::Domain::dead_letters) report them. Install a
/// `tracing` subscriber to see the log (`tracing_subscriber::fmt::init()`, from the
/// `tracing-subscriber` crate). While no global subscriber is installed, the workers say
/// so once on stderr when they start, and write each dead letter there too, so that a
/// handler failing for good is never silent; installing any global subscriber (even
/// `tracing::subscriber::NoSubscriber`, to silence them) leaves stderr alone.
#[derive(Debug)]
#[must_use = "workers do nothing until started: call `.start()`"]
pub struct Workers {
    engine: Arc<Engine>,
    config: WorkerConfig,
}

/// Workers must be started inside a tokio runtime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "delivery workers start on a tokio runtime: call `start()` from within one (`#[tokio::main]`, `Runtime::block_on`)"
)]
pub struct NoRuntime;

impl Workers {
    pub(crate) fn new(engine: Arc<Engine>, config: WorkerConfig) -> Self {
        Workers { engine, config }
    }

    /// Starts the workers on the current tokio runtime; they run until
    /// [`WorkerHandle::shutdown`] (or until the handle is dropped, which stops them
    /// without waiting).
    ///
    /// With no global `tracing` subscriber installed, says once on stderr (in this
    /// process) that failures would go unseen, and how to see them; see
    /// [Seeing failures](Workers#seeing-failures).
    pub fn start(self) -> Result<WorkerHandle, NoRuntime> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NoRuntime)?;
        if unobserved() {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| say(format_args!("{UNOBSERVED}")));
        }
        let shared = Arc::new(Shared {
            beat: beat::first(self.config.lease),
            engine: self.engine,
            config: self.config,
            stop: Stop::default(),
            counts: Counts::default(),
            inflight: Mutex::new(HashSet::new()),
        });
        let task = runtime.spawn(run(Arc::clone(&shared)));
        Ok(WorkerHandle { shared, task: Some(task) })
    }
}

/// What [`Workers::start`] writes on stderr, once, when no `tracing` subscriber is installed.
const UNOBSERVED: &str = "protean: delivery workers started with no tracing subscriber installed: their failures \
     (failed attempts, dead letters, store errors) are logged through `tracing` and shown nowhere. Install a \
     subscriber to see them (`tracing_subscriber::fmt::init()`); until then each dead letter is also written \
     here. `Domain::delivery_status()` and `Domain::dead_letters()` report them at any time.";

/// Whether no global `tracing` subscriber is installed: what the workers log is lost.
fn unobserved() -> bool {
    !tracing::dispatcher::has_been_set()
}

/// Writes a line on stderr; a stderr that cannot be written to is ignored (where
/// `eprintln!` would panic).
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Running delivery workers. [`shutdown`](Self::shutdown) stops them gracefully.
#[derive(Debug)]
pub struct WorkerHandle {
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl WorkerHandle {
    /// What the workers have done so far.
    pub fn report(&self) -> WorkerReport {
        self.shared.counts.report()
    }

    /// Stops the workers: they claim nothing more, finish the units of work in flight
    /// (an event whose handlers are running is finished; a backoff wait is cut short),
    /// release the claims on what they did not deliver, and report what they did.
    pub async fn shutdown(mut self) -> WorkerReport {
        self.shared.stop.set();
        if let Some(task) = self.task.take() {
            if let Err(error) = task.await {
                tracing::error!(error = &error as &dyn std::error::Error, "the delivery worker task failed");
            }
        }
        self.shared.counts.report()
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        // Stops claiming; the task finishes and releases its claims on its own.
        self.shared.stop.set();
    }
}

/// What delivery workers did: counts since they started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Events worked to the end: every handler handled it, dead-lettered it, or holds it.
    pub events: u64,
    /// Handler runs that succeeded (one per handler and event).
    pub deliveries: u64,
    /// Handler runs that failed (each retry counts).
    pub failed_attempts: u64,
    /// (Event, handler) pairs that became dead letters.
    pub dead_lettered: u64,
    /// (Event, handler) pairs held behind a dead letter of their stream.
    pub held: u64,
    /// Claims released at shutdown, on events not delivered.
    pub released: u64,
    /// Times the store failed to answer a claim, renewal or record (retried).
    pub store_errors: u64,
    /// Commands sent or scheduled by process managers that were fired.
    pub commands_fired: u64,
    /// Such commands their handler refused (dropped, and logged).
    pub commands_refused: u64,
    /// Projections rebuilt when the workers started (outdated or never built).
    pub rebuilt: u64,
}

#[derive(Debug, Default)]
struct Counts {
    events: AtomicU64,
    deliveries: AtomicU64,
    failed_attempts: AtomicU64,
    dead_lettered: AtomicU64,
    held: AtomicU64,
    released: AtomicU64,
    store_errors: AtomicU64,
    commands_fired: AtomicU64,
    commands_refused: AtomicU64,
    rebuilt: AtomicU64,
}

impl Counts {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn report(&self) -> WorkerReport {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WorkerReport {
            events: get(&self.events),
            deliveries: get(&self.deliveries),
            failed_attempts: get(&self.failed_attempts),
            dead_lettered: get(&self.dead_lettered),
            held: get(&self.held),
            released: get(&self.released),
            store_errors: get(&self.store_errors),
            commands_fired: get(&self.commands_fired),
            commands_refused: get(&self.commands_refused),
            rebuilt: get(&self.rebuilt),
        }
    }
}

/// A stop flag with a wake-up.
#[derive(Debug, Default)]
struct Stop {
    set: AtomicBool,
    notify: Notify,
}

impl Stop {
    fn set(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    async fn wait(&self) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.is_set() {
            return;
        }
        notified.await;
    }
}

#[derive(Debug)]
struct Shared {
    engine: Arc<Engine>,
    config: WorkerConfig,
    stop: Stop,
    counts: Counts,
    /// Events claimed and not yet settled: renewed while worked, released at the end.
    inflight: Mutex<HashSet<Uuid>>,
    /// This worker set's sign of life, as it first beat.
    beat: crate::store::WorkerBeat,
}

impl Shared {
    fn inflight(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.inflight.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The claiming loop: claims, hands each stream to a task, renews, waits for a signal.
async fn run(shared: Arc<Shared>) {
    let engine = Arc::clone(&shared.engine);
    let config = shared.config.clone();
    let remote = engine.store.outbox_signal();
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut tasks: JoinSet<()> = JoinSet::new();
    let renew_every = (config.lease / 3).max(Duration::from_millis(10));
    let mut renew = tokio::time::interval(renew_every);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(concurrency = config.concurrency, batch = config.batch, "delivery workers started");
    let mut helpers: JoinSet<()> = JoinSet::new();
    if !engine.projections.is_empty() {
        let shared = Arc::clone(&shared);
        helpers.spawn(async move {
            match crate::runtime::views::rebuild_outdated(&shared.engine).await {
                Ok(reports) => Counts::add(&shared.counts.rebuilt, reports.len() as u64),
                Err(error) => {
                    Counts::add(&shared.counts.store_errors, 1);
                    tracing::warn!(error = &error as &dyn std::error::Error, "could not rebuild outdated projections");
                }
            }
        });
    }
    helpers.spawn(beat::beat_loop(Arc::clone(&shared)));
    helpers.spawn(refresh_gauges(Arc::clone(&engine), crate::runtime::metrics::gauge_interval(config.poll_interval)));
    let firing = engine.flows.then(|| tokio::spawn(fire_loop(Arc::clone(&shared))));
    while !shared.stop.is_set() {
        // Listen before claiming, so that a commit made while claiming is not missed.
        let local = engine.signal.notified();
        tokio::pin!(local);
        local.as_mut().enable();
        let remote_wait = async {
            match &remote {
                Some(signal) => signal.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(remote_wait);

        let mut full = false;
        if tasks.len() < config.concurrency.max(1) {
            match engine.store.claim_undelivered(config.batch.max(1), config.lease).await {
                Ok(claimed) => {
                    full = claimed.len() >= config.batch.max(1);
                    if !claimed.is_empty() {
                        tracing::debug!(events = claimed.len(), "claimed undelivered events");
                    }
                    for stream in by_stream(claimed) {
                        shared.inflight().extend(stream.iter().map(|e| e.id));
                        let (shared, permits) = (Arc::clone(&shared), Arc::clone(&permits));
                        tasks.spawn(async move {
                            let Ok(_permit) = permits.acquire_owned().await else { return };
                            work_stream(shared, stream).await;
                        });
                    }
                }
                Err(error) => {
                    Counts::add(&shared.counts.store_errors, 1);
                    tracing::warn!(error = &error as &dyn std::error::Error, "could not claim undelivered events");
                }
            }
        }
        if full && tasks.len() < config.concurrency.max(1) {
            continue; // more may be waiting
        }
        tokio::select! {
            _ = &mut local => {}
            _ = &mut remote_wait => {}
            _ = tokio::time::sleep(config.poll_interval) => {}
            Some(done) = tasks.join_next(), if !tasks.is_empty() => joined(done),
            _ = renew.tick() => renew_claims(&shared).await,
            _ = shared.stop.wait() => {}
        }
    }
    // Graceful shutdown: the stream tasks see the stop and finish their current event;
    // the firing loop finishes the command it is on (a rebuild stops where it is, and
    // is resumed later from its last batch).
    while let Some(done) = tasks.join_next().await {
        joined(done);
    }
    if let Some(firing) = firing {
        if let Err(error) = firing.await {
            tracing::error!(error = &error as &dyn std::error::Error, "the firing loop failed");
        }
    }
    helpers.abort_all();
    while let Some(done) = helpers.join_next().await {
        if let Err(error) = done {
            if error.is_panic() {
                tracing::error!(error = &error as &dyn std::error::Error, "a worker helper task panicked");
            }
        }
    }
    let left: Vec<Uuid> = shared.inflight().drain().collect();
    if !left.is_empty() {
        match engine.store.release_claims(left.clone()).await {
            Ok(()) => Counts::add(&shared.counts.released, left.len() as u64),
            Err(error) => {
                Counts::add(&shared.counts.store_errors, 1);
                tracing::warn!(
                    events = left.len(),
                    error = &error as &dyn std::error::Error,
                    "could not release claims at shutdown; they are free when their lease runs out"
                );
            }
        }
    }
    beat::beat(&shared, true).await;
    let report = shared.counts.report();
    tracing::info!(
        events = report.events,
        deliveries = report.deliveries,
        dead_lettered = report.dead_lettered,
        released = report.released,
        "delivery workers stopped"
    );
}

fn joined(done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done {
        tracing::error!(error = &error as &dyn std::error::Error, "a delivery task panicked");
    }
}

async fn renew_claims(shared: &Shared) {
    let ids: Vec<Uuid> = shared.inflight().iter().copied().collect();
    if ids.is_empty() {
        return;
    }
    if let Err(error) = shared.engine.store.renew_claims(ids, shared.config.lease).await {
        Counts::add(&shared.counts.store_errors, 1);
        tracing::warn!(error = &error as &dyn std::error::Error, "could not renew claims");
    }
}

/// Sets the lag and undelivered gauges (docs/metrics.md) from the store's delivery status
/// every `every`, while the workers run; a status that cannot be read is skipped.
async fn refresh_gauges(engine: Arc<Engine>, every: Duration) {
    loop {
        if let Err(error) = crate::runtime::health::delivery_status(&engine).await {
            tracing::debug!(
                error = &error as &dyn std::error::Error,
                "could not read the delivery status for the gauges"
            );
        }
        tokio::time::sleep(every).await;
    }
}

/// Fires the commands process managers sent or scheduled, as they fall due: woken by
/// commits in this process, the store's signal, the next deadline, or the poll interval.
async fn fire_loop(shared: Arc<Shared>) {
    let engine = Arc::clone(&shared.engine);
    let remote = engine.store.outbox_signal();
    while !shared.stop.is_set() {
        let local = engine.signal.notified();
        tokio::pin!(local);
        local.as_mut().enable();
        let remote_wait = async {
            match &remote {
                Some(signal) => signal.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(remote_wait);
        let now = time::OffsetDateTime::now_utc();
        let stuck = match engine.fire_due(now, shared.config.batch.max(1), shared.config.lease).await {
            Ok(fired) => {
                Counts::add(&shared.counts.commands_fired, fired.fired);
                Counts::add(&shared.counts.commands_refused, fired.refused);
                fired.failed > 0
            }
            Err(error) => {
                Counts::add(&shared.counts.store_errors, 1);
                tracing::warn!(error = &error as &dyn std::error::Error, "could not fire due commands");
                true
            }
        };
        let mut wait = shared.config.poll_interval;
        if !stuck {
            if let Ok(Some(next)) = engine.store.next_due().await {
                let until = Duration::try_from(next - time::OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO);
                // A due command another worker holds stays due until fired: look again soon.
                wait = wait.min(until.max(Duration::from_millis(20)));
            }
        }
        tokio::select! {
            _ = &mut local => {}
            _ = &mut remote_wait => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shared.stop.wait() => {}
        }
    }
}
