//! The [`Schedule`] port: commands that process managers send or schedule, kept until a
//! worker fires them.

use std::time::Duration;

use uuid::Uuid;

use crate::store::{BoxFuture, OffsetDateTime, Scheduled, StoreError};

/// Scheduled commands: claimed with a lease when due, completed once fired, listed per
/// process manager instance.
pub trait Schedule: Send + Sync + 'static {
    /// Claims up to `limit` scheduled commands due at `now` (earliest first) that no
    /// one holds, for `lease`: a claim whose lease ran out may be taken again.
    fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Scheduled>, StoreError>>;

    /// Forgets a scheduled command: it was fired.
    fn complete_scheduled(&self, id: Uuid) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Frees this store's claims on scheduled commands, so any worker may fire them.
    fn release_scheduled(&self, ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// When the earliest pending scheduled command is due (claimed or not), if any.
    fn next_due(&self) -> BoxFuture<'_, Result<Option<OffsetDateTime>, StoreError>>;

    /// The pending scheduled commands of one process manager instance, earliest first.
    fn scheduled_of<'a>(
        &'a self,
        owner: &'a str,
        owner_key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Scheduled>, StoreError>>;
}
