//! The [`Schedule`] port: commands that process managers send or schedule, kept until a
//! worker fires them.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::store::{BoxFuture, OffsetDateTime, StoreError};

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

    /// Up to `limit` pending scheduled commands of every process manager, claimed or not,
    /// earliest due first (ties by id): what an operator lists.
    fn pending_scheduled(&self, limit: usize) -> BoxFuture<'_, Result<Vec<Scheduled>, StoreError>>;

    /// Cancels the pending scheduled command `id`: it is never fired. `false` when there
    /// is none (fired, cancelled, or never scheduled). A worker that claimed it before
    /// may still be firing it.
    fn cancel_scheduled(&self, id: Uuid) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// How many commands are pending, and how many of them are due at `now`.
    fn count_scheduled(&self, now: OffsetDateTime) -> BoxFuture<'_, Result<ScheduledCounts, StoreError>>;
}

/// Scheduled commands at a glance: [`Schedule::count_scheduled`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScheduledCounts {
    /// Commands sent or scheduled that have not fired.
    pub pending: u64,
    /// Those of them due: a number that stays above zero while workers run tells that
    /// they cannot fire them (see the workers' log).
    pub due: u64,
}

/// A command a process manager sent or scheduled, kept in its unit of work's
/// transaction until a worker fires it: processed (idempotently, under `id`) once due.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Scheduled {
    /// The command's id: it is processed with this id, so firing it twice changes
    /// nothing the second time.
    pub id: Uuid,
    /// The process manager that sent it (`"Fulfilment"`).
    pub owner: Cow<'static, str>,
    /// The instance that sent it (its correlation key).
    pub owner_key: String,
    /// A deadline's name, by which it can be cancelled; `None` for a command sent now.
    pub name: Option<String>,
    /// When it is due.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// The command's stable type name (`"Order.CancelOrder"`).
    pub type_name: Cow<'static, str>,
    /// The command, as JSON.
    pub payload: Arc<str>,
    /// The conversation it belongs to.
    pub correlation_id: Uuid,
    /// The event whose handling sent it.
    pub causation_id: Uuid,
}

/// Cancels the pending deadlines of one process manager instance with one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancel {
    /// The process manager.
    pub owner: Cow<'static, str>,
    /// The instance.
    pub owner_key: String,
    /// The deadline's name.
    pub name: String,
}
