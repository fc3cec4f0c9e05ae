//! The [`Deliveries`] port: which handler handled which message, failed deliveries and
//! dead letters, and events held behind them.

use uuid::Uuid;

use std::borrow::Cow;

#[cfg(doc)]
use crate::store::ports::Handled;
use crate::store::{BoxFuture, Envelope, OffsetDateTime, StoreError, StreamId};

/// Handled records (each message handled once per handler), failed deliveries with their
/// attempts, dead letters, and the events of a stream held behind one.
pub trait Deliveries: Send + Sync + 'static {
    /// Whether `handler` has handled `message_id`.
    fn is_handled<'a>(&'a self, handler: &'a str, message_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// What `handler` recorded when it handled `message_id`: `None` when it has not,
    /// `Some(outcome)` when it has (see [`Handled::outcome`]).
    fn handled_outcome<'a>(
        &'a self,
        handler: &'a str,
        message_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<Option<String>>, StoreError>>;

    /// Where `handler` stands with `event`, in one read: handled, held behind a dead
    /// letter of its stream, attempts so far (see [`HandlerState`]).
    fn handler_state<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<HandlerState, StoreError>>;

    /// Records a failed attempt, or an event held behind a dead letter: the first one
    /// for a (handler, event) pair inserts it (first and last error and time), later
    /// ones update the status, the last error and time, and count one more attempt
    /// (not for [`FailureStatus::Held`]). Returns the attempts counted. It writes what it
    /// is given: a delivery worker holds an event with
    /// [`hold_behind_dead_letter`](Deliveries::hold_behind_dead_letter), which checks that a
    /// dead letter is still ahead in the same step.
    fn record_failure(&self, update: FailureUpdate) -> BoxFuture<'_, Result<u32, StoreError>>;

    /// Holds `event` for `handler` behind a dead letter of its stream, if one is still
    /// there: what a delivery worker does with an event of a stream its handler holds.
    /// The decision and the write are one atomic step.
    ///
    /// When a failure of `handler` that is [dead](FailureStatus::Dead) or
    /// [held](FailureStatus::Held) is stored for an earlier event of the same stream
    /// (a lower sequence), records `event` as held (`reason` as its error, at `at`; an
    /// existing held record keeps its first error and time) and returns `true`.
    /// Otherwise it holds nothing, forgets a held record of `event` itself (one whose
    /// dead letter is gone), and returns `false`: the caller delivers the event. A dead
    /// letter or a retried failure of `event` itself is left as it is.
    ///
    /// Atomic against [`remove_failure`](Deliveries::remove_failure) of the failures ahead:
    /// either the held record is written first, and a
    /// [`failed_deliveries`](Deliveries::failed_deliveries) listing made after that removal
    /// finds it, or the removal comes first and `event` is not held. So a redelivery or a
    /// discard that releases the stream until a listing finds nothing held cannot miss an
    /// event held at the same moment, and no event is held once nothing is ahead of it.
    /// Stores decide it inside one transaction or lock (PostgreSQL locks the failure
    /// ahead that it found, so that removing it waits for the held record's commit).
    fn hold_behind_dead_letter<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
        reason: &'a str,
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// The failed delivery of `event_id` to `handler`, whatever its status, with its
    /// whole event; `None` when there is none. A lookup by key, not a scan.
    fn failed_delivery<'a>(
        &'a self,
        handler: &'a str,
        event_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<FailedDelivery>, StoreError>>;

    /// The failed deliveries matching `query`, in the order their events were stored.
    fn failed_deliveries(&self, query: FailureQuery) -> BoxFuture<'_, Result<Vec<FailedDelivery>, StoreError>>;

    /// Forgets the failed delivery of `event_id` to `handler` (it was delivered after
    /// all, or discarded); whether there was one.
    fn remove_failure<'a>(&'a self, handler: &'a str, event_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>>;
}

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

impl FailedDelivery {
    /// This failed delivery as the JSON an operator reads (`ops dead-letters --json`, the
    /// operations API): handler, event id, type, version, stream (`Aggregate/id`),
    /// sequence, correlation id, status, attempts, first and last errors with their times
    /// (RFC 3339), and the event's payload (as JSON; `null` if it is not JSON).
    pub fn to_json(&self) -> serde_json::Value {
        let time = |at: OffsetDateTime| {
            at.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| at.to_string())
        };
        let payload: serde_json::Value = serde_json::from_str(&self.event.payload).unwrap_or(serde_json::Value::Null);
        serde_json::json!({
            "handler": self.handler,
            "event_id": self.event.id,
            "event_type": self.event.type_name,
            "event_version": self.event.version,
            "stream": self.event.stream.to_string(),
            "sequence": self.event.sequence,
            "correlation_id": self.event.correlation_id,
            "status": self.status.as_str(),
            "attempts": self.attempts,
            "first_error": self.first_error,
            "last_error": self.last_error,
            "first_failed_at": time(self.first_failed_at),
            "last_failed_at": time(self.last_failed_at),
            "payload": payload,
        })
    }
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
