//! The [`Outbox`] port: claiming undelivered events for delivery, in stream order.

use std::time::Duration;

use uuid::Uuid;

use crate::store::ports::FailureStatus;
use crate::store::{BoxFuture, Envelope, OffsetDateTime, StoreError};

/// The transactional outbox: events a commit stored start undelivered; delivery workers
/// claim them with a lease, renew or release their claims, and mark them delivered.
pub trait Outbox: Send + Sync + 'static {
    /// Claims up to `limit` undelivered events for `lease`, oldest first. An event is
    /// claimable when it is not claimed by someone else and no earlier event of its
    /// stream is still undelivered, so each stream is delivered in order even with
    /// several relays. A claim belongs to the store that made it: a store whose owner is
    /// gone (a crashed process) holds nothing, whatever the lease says, so that a
    /// restarted process gets its events at once (see each store for how it knows).
    fn claim_undelivered(&self, limit: usize, lease: Duration) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>>;

    /// Extends the lease of this store's claims on `event_ids` (those not delivered yet)
    /// to `lease` from now: what a delivery worker does while it works a stream.
    fn renew_claims(&self, event_ids: Vec<Uuid>, lease: Duration) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Frees this store's claims on `event_ids`, so any worker may claim them at once:
    /// what a worker does with what it claimed and did not deliver, when it stops.
    fn release_claims(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Marks events delivered to every handler.
    fn mark_delivered(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// How many events are undelivered, since when, and the failed deliveries per
    /// handler: cheap enough for a health endpoint.
    fn outbox_status(&self) -> BoxFuture<'_, Result<OutboxStatus, StoreError>>;

    /// A signal that fires when another process may have committed undelivered events
    /// (PostgreSQL's `LISTEN/NOTIFY`), so delivery workers wake without polling. `None`
    /// when the store has no such channel: commits in this process wake
    /// the workers anyway, and they poll at a bounded interval as a fallback.
    fn outbox_signal(&self) -> Option<std::sync::Arc<tokio::sync::Notify>>;

    /// Records a set of delivery workers' sign of life: inserts or replaces the beat of
    /// `beat.id`, and forgets beats not renewed for a day.
    fn beat_worker(&self, beat: WorkerBeat) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The last beat of every set of delivery workers on this store (every process's),
    /// latest first.
    fn worker_beats(&self) -> BoxFuture<'_, Result<Vec<WorkerBeat>, StoreError>>;
}

/// A set of delivery workers' sign of life, renewed while it runs: what an operator's
/// status lists as the workers seen alive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkerBeat {
    /// The worker set, one per [`Workers::start`](crate::runtime::Workers::start).
    pub id: uuid::Uuid,
    /// The host it runs on (`HOSTNAME`, else `/etc/hostname`; empty when neither says).
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it last beat.
    #[serde(with = "time::serde::rfc3339")]
    pub seen_at: OffsetDateTime,
    /// How often it beats, in milliseconds.
    pub every_ms: u64,
    /// Whether it stopped gracefully (its last beat).
    pub stopped: bool,
}

impl WorkerBeat {
    /// Whether it counts as alive at `now`: not stopped, and its last beat is less than
    /// three beats old.
    pub fn alive_at(&self, now: OffsetDateTime) -> bool {
        let window = time::Duration::milliseconds(i64::try_from(self.every_ms.saturating_mul(3)).unwrap_or(i64::MAX));
        !self.stopped && self.seen_at.checked_add(window).is_none_or(|until| until > now)
    }
}

/// How many failed deliveries one handler has, by status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureCounts {
    /// The handler.
    pub handler: String,
    /// Being retried.
    pub retrying: u64,
    /// Dead letters.
    pub dead: u64,
    /// Held behind a dead letter.
    pub held: u64,
}

/// The outbox at a glance: cheap to read (indexes, not scans of the log), for a health
/// endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxStatus {
    /// Events not yet delivered to every handler.
    pub undelivered: u64,
    /// The earliest [`recorded_at`](Envelope::recorded_at) among them (`None` when all
    /// are delivered): not the time of the first of them in the log, which need not be
    /// the earliest (an event's time is taken before its commit puts it in the log). So
    /// while no event is committed it only moves forward, as events are delivered; a
    /// commit can move it back by at most the time that commit took.
    pub oldest_undelivered: Option<OffsetDateTime>,
    /// Failed deliveries per handler (handlers with none are left out), by handler name.
    pub failures: Vec<FailureCounts>,
}

impl OutboxStatus {
    /// Builds the per-handler counts from `(handler, status, count)` rows.
    pub fn count_failures<'a>(rows: impl IntoIterator<Item = (&'a str, FailureStatus, u64)>) -> Vec<FailureCounts> {
        let mut counts: std::collections::BTreeMap<&str, FailureCounts> = std::collections::BTreeMap::new();
        for (handler, status, n) in rows {
            let entry = counts
                .entry(handler)
                .or_insert_with(|| FailureCounts { handler: handler.to_owned(), ..Default::default() });
            match status {
                FailureStatus::Retrying => entry.retrying += n,
                FailureStatus::Dead => entry.dead += n,
                FailureStatus::Held => entry.held += n,
            }
        }
        counts.into_values().collect()
    }
}
