//! The [`Outbox`] port: claiming undelivered events for delivery, in stream order.

use std::time::Duration;

use uuid::Uuid;

use crate::store::{BoxFuture, Envelope, OutboxStatus, StoreError};

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
}
