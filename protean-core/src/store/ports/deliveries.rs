//! The [`Deliveries`] port: which handler handled which message, failed deliveries and
//! dead letters, and events held behind them.

use uuid::Uuid;

use crate::store::{
    BoxFuture, Envelope, FailedDelivery, FailureQuery, FailureUpdate, HandlerState, OffsetDateTime, StoreError,
};
#[cfg(doc)]
use crate::store::{FailureStatus, Handled};

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
    /// finds it, or the removal comes first and `event` is not held. So a replay or a
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
