//! What a store keeps about delivery beyond the outbox itself: failed deliveries
//! (retrying, dead-lettered, or held behind a dead letter), the state of one handler
//! for one event, and the counts a health endpoint reports.

use std::borrow::Cow;

use time::OffsetDateTime;

use crate::model::error::StoreError;
use crate::store::envelope::{Envelope, StreamId};

/// Where a failed delivery of one event to one handler stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureStatus {
    /// The handler failed on it and will be given it again after a backoff; the event
    /// stays undelivered (and the handler's later events of its stream wait) meanwhile.
    Retrying,
    /// The handler failed on every attempt allowed: a dead letter, waiting for someone
    /// to replay or discard it.
    Dead,
    /// Never tried: an earlier event of its stream is dead for this handler, and the
    /// handler holds its streams in order, so this one waits behind it.
    Held,
}

impl FailureStatus {
    /// The name stores keep (`"retrying"`, `"dead"`, `"held"`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureStatus::Retrying => "retrying",
            FailureStatus::Dead => "dead",
            FailureStatus::Held => "held",
        }
    }

    /// The status a stored name stands for; for any other text,
    /// [`StoreError::Corrupt`] naming the failed delivery's event (its stream and sequence).
    pub fn parse(text: &str, event: &Envelope) -> Result<Self, StoreError> {
        match text {
            "retrying" => Ok(FailureStatus::Retrying),
            "dead" => Ok(FailureStatus::Dead),
            "held" => Ok(FailureStatus::Held),
            other => Err(StoreError::Corrupt {
                stream: event.stream.clone(),
                position: event.sequence,
                reason: format!("a failed delivery has the unknown status `{other}`"),
            }),
        }
    }
}

impl std::fmt::Display for FailureStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed delivery of one event to one handler, as the store keeps it (durably, so a
/// restarted process knows how many attempts were made, and dead letters survive).
#[derive(Debug, Clone, PartialEq)]
pub struct FailedDelivery {
    /// The handler (`"InventoryReactions::reserve"`).
    pub handler: String,
    /// The event it failed on.
    pub event: Envelope,
    /// Retrying, dead, or held behind a dead letter.
    pub status: FailureStatus,
    /// How many times the handler ran on it and failed (0 for a held one).
    pub attempts: u32,
    /// The error of the first attempt (for a held one: which dead letter it waits behind).
    pub first_error: String,
    /// The error of the latest attempt.
    pub last_error: String,
    /// When the first attempt failed (or it was held).
    pub first_failed_at: OffsetDateTime,
    /// When the latest attempt failed.
    pub last_failed_at: OffsetDateTime,
}

/// One failed attempt, or one event held behind a dead letter, to record with
/// [`Deliveries::record_failure`](crate::store::Deliveries::record_failure).
#[derive(Debug, Clone)]
pub struct FailureUpdate {
    /// The handler.
    pub handler: Cow<'static, str>,
    /// The event (its id, stream and sequence are kept with the failure).
    pub event: Envelope,
    /// The status after this update: [`Retrying`](FailureStatus::Retrying) or
    /// [`Dead`](FailureStatus::Dead) count one more attempt;
    /// [`Held`](FailureStatus::Held) counts none.
    pub status: FailureStatus,
    /// What went wrong (or why it is held).
    pub error: String,
    /// When.
    pub at: OffsetDateTime,
}

/// Which failed deliveries [`Deliveries::failed_deliveries`](crate::store::Deliveries::failed_deliveries)
/// lists: every criterion given must match. The default lists all, up to 1,000.
#[derive(Debug, Clone)]
pub struct FailureQuery {
    /// Only this handler's.
    pub handler: Option<String>,
    /// Only events of this stream.
    pub stream: Option<StreamId>,
    /// Only failures in this status.
    pub status: Option<FailureStatus>,
    /// At most this many, in the order the events were stored.
    pub limit: usize,
}

impl Default for FailureQuery {
    fn default() -> Self {
        FailureQuery { handler: None, stream: None, status: None, limit: 1_000 }
    }
}

impl FailureQuery {
    /// Whether a failure matches, for stores that filter in Rust.
    pub fn matches(&self, failure: &FailedDelivery) -> bool {
        self.handler.as_deref().is_none_or(|h| h == failure.handler)
            && self.stream.as_ref().is_none_or(|s| *s == failure.event.stream)
            && self.status.is_none_or(|s| s == failure.status)
    }
}

/// Where one handler stands with one event, in one read: what a delivery worker asks
/// before running the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HandlerState {
    /// The handler has handled it (its unit of work committed).
    pub handled: bool,
    /// An event of the same stream is dead or held for this handler (so, when the
    /// handler holds its streams, this one may have to wait too: a worker then asks
    /// [`Deliveries::hold_behind_dead_letter`](crate::store::Deliveries::hold_behind_dead_letter),
    /// which decides it in one step with the write). A failure of this very event that
    /// is dead or held counts.
    pub held: bool,
    /// The attempts already made on this event (0 when none failed).
    pub attempts: u32,
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
