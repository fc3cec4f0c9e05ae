//! [`forward_ports!`](crate::forward_ports): a store that wraps another writes by hand only
//! the methods it changes.

/// Forwards ports, or methods of a port, of a store that wraps another to the wrapped
/// store, so a wrapper (metrics, tracing, fault injection in tests) writes by hand only
/// the methods it changes. Two forms:
///
/// * `forward_ports!(impl for Type, to field: Port, Port, ...)` (with generics,
///   `forward_ports!(impl[S: Store] for Type<S>, to field: ...)`) implements the ports
///   named, every method forwarded;
/// * inside an `impl Port for Type` block, `forward_ports!(self.field: method, ...)`
///   writes the methods named, forwarded, beside those written by hand (the port's own
///   name stands for all its methods: `forward_ports!(self.field: Outbox)`).
///
/// `field` is the wrapped store's field: a name, or `0` for a tuple struct. The ports have
/// no default methods, so a wrapper that leaves a port out, or a method of one, is not a
/// `Store` and does not compile where one is needed; naming a method that is also
/// written by hand is a duplicate definition.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// # extern crate protean_core as protean;
/// use protean::forward_ports;
/// use protean::store::ports::{Batch, BoxFuture, Committed};
/// use protean::store::{MemoryStore, Records, Store, StoreError};
///
/// /// A store that counts commits.
/// struct Counted<S> {
///     inner: S,
///     commits: AtomicU64,
/// }
///
/// impl<S: Store> Records for Counted<S> {
///     fn commit(&self, batch: Batch) -> BoxFuture<'_, Result<Vec<Committed>, StoreError>> {
///         self.commits.fetch_add(1, Ordering::Relaxed);
///         self.inner.commit(batch)
///     }
///
///     forward_ports!(self.inner: migrate, close, load, commit_group, stream, stream_range,
///         replay_events, load_snapshot, events, log_after, log_count);
/// }
///
/// forward_ports!(impl[S: Store] for Counted<S>, to inner: Outbox, Deliveries, Projections, Schedule);
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), StoreError> {
/// let store = Counted { inner: MemoryStore::new(), commits: AtomicU64::new(0) };
/// store.commit(Batch::default()).await?;
/// assert_eq!(store.commits.load(Ordering::Relaxed), 1);
/// let _as_a_store: &dyn Store = &store;
/// # Ok(())
/// # }
/// ```
#[macro_export]
macro_rules! forward_ports {
    (impl for $ty:ty, to $field:tt: $($port:ident),+ $(,)?) => {
        $crate::forward_ports!(impl [] for $ty, to $field: $($port),+);
    };
    (impl $generics:tt for $ty:ty, to $field:tt: $($port:ident),+ $(,)?) => {
        $( $crate::forward_ports!(@port $port $generics $ty, [field $field]); )+
    };
    (self.$field:tt: $($method:ident),+ $(,)?) => {
        $crate::forward_ports!(@methods [field $field]: $($method),+);
    };
    // What follows is the macro's own: `$recv` says what a method forwards to, the field
    // `[field f]` (`&self.f`) or, for `Arc<S>`, `[deref]` (`&**self`). The `self` a receiver
    // is written with comes from the arm that writes the method's `&self`, as hygiene wants.
    (@methods $recv:tt: $($method:ident),+) => {
        $( $crate::forward_ports!(@method $recv $method); )+
    };
    (@recv $this:tt [field $field:tt]) => {
        &$this.$field
    };
    (@recv $this:tt [deref]) => {
        &**$this
    };
    (@port Records [$($generics:tt)*] $ty:ty, $recv:tt) => {
        impl<$($generics)*> $crate::store::ports::Records for $ty {
            $crate::forward_ports!(@methods $recv: migrate, close, load, commit, commit_group, stream, stream_range, replay_events, load_snapshot, events, log_after, log_count);
        }
    };
    (@port Outbox [$($generics:tt)*] $ty:ty, $recv:tt) => {
        impl<$($generics)*> $crate::store::ports::Outbox for $ty {
            $crate::forward_ports!(@methods $recv: claim_undelivered, renew_claims, release_claims, mark_delivered, outbox_status, outbox_signal, beat_worker, worker_beats);
        }
    };
    (@port Deliveries [$($generics:tt)*] $ty:ty, $recv:tt) => {
        impl<$($generics)*> $crate::store::ports::Deliveries for $ty {
            $crate::forward_ports!(@methods $recv: is_handled, handled_outcome, handler_state, record_failure, hold_behind_dead_letter, failed_delivery, failed_deliveries, remove_failure);
        }
    };
    (@port Projections [$($generics:tt)*] $ty:ty, $recv:tt) => {
        impl<$($generics)*> $crate::store::ports::Projections for $ty {
            $crate::forward_ports!(@methods $recv: register_projection, projection_state, projection_row, query_projection, begin_build, write_build, finish_build, read_model, put_read_model);
        }
    };
    (@port Schedule [$($generics:tt)*] $ty:ty, $recv:tt) => {
        impl<$($generics)*> $crate::store::ports::Schedule for $ty {
            $crate::forward_ports!(@methods $recv: claim_due, complete_scheduled, release_scheduled, next_due, scheduled_of, pending_scheduled, cancel_scheduled, count_scheduled);
        }
    };
    (@method $recv:tt Records) => {
        $crate::forward_ports!(@methods $recv: migrate, close, load, commit, commit_group, stream, stream_range, replay_events, load_snapshot, events, log_after, log_count);
    };
    (@method $recv:tt Outbox) => {
        $crate::forward_ports!(@methods $recv: claim_undelivered, renew_claims, release_claims, mark_delivered, outbox_status, outbox_signal, beat_worker, worker_beats);
    };
    (@method $recv:tt Deliveries) => {
        $crate::forward_ports!(@methods $recv: is_handled, handled_outcome, handler_state, record_failure, hold_behind_dead_letter, failed_delivery, failed_deliveries, remove_failure);
    };
    (@method $recv:tt Projections) => {
        $crate::forward_ports!(@methods $recv: register_projection, projection_state, projection_row, query_projection, begin_build, write_build, finish_build, read_model, put_read_model);
    };
    (@method $recv:tt Schedule) => {
        $crate::forward_ports!(@methods $recv: claim_due, complete_scheduled, release_scheduled, next_due, scheduled_of, pending_scheduled, cancel_scheduled, count_scheduled);
    };
    (@method $recv:tt migrate) => {
        fn migrate(&self) -> $crate::store::ports::BoxFuture<'_, Result<(), $crate::store::ports::StoreError>> {
            $crate::store::ports::Records::migrate($crate::forward_ports!(@recv self $recv))
        }
    };
    (@method $recv:tt close) => {
        fn close(&self) -> $crate::store::ports::BoxFuture<'_, Result<(), $crate::store::ports::StoreError>> {
            $crate::store::ports::Records::close($crate::forward_ports!(@recv self $recv))
        }
    };
    (@method $recv:tt load) => {
        fn load<'a>(&'a self, stream: &'a $crate::store::ports::StreamId) -> $crate::store::ports::BoxFuture<'a, Result<Option<$crate::store::ports::Record>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Records::load($crate::forward_ports!(@recv self $recv), stream)
        }
    };
    (@method $recv:tt commit) => {
        fn commit(&self, batch: $crate::store::ports::Batch) -> $crate::store::ports::BoxFuture<'_, Result<Vec<$crate::store::ports::Committed>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Records::commit($crate::forward_ports!(@recv self $recv), batch)
        }
    };
    (@method $recv:tt commit_group) => {
        fn commit_group(&self, batches: Vec<$crate::store::ports::Batch>) -> $crate::store::ports::BoxFuture<'_, Vec<Result<Vec<$crate::store::ports::Committed>, $crate::store::ports::StoreError>>> {
            $crate::store::ports::Records::commit_group($crate::forward_ports!(@recv self $recv), batches)
        }
    };
    (@method $recv:tt stream) => {
        fn stream<'a>(&'a self, stream: &'a $crate::store::ports::StreamId) -> $crate::store::ports::BoxFuture<'a, Result<Vec<$crate::store::ports::Envelope>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Records::stream($crate::forward_ports!(@recv self $recv), stream)
        }
    };
    (@method $recv:tt stream_range) => {
        fn stream_range<'a>(&'a self, stream: &'a $crate::store::ports::StreamId, after: u64, up_to: Option<u64>) -> $crate::store::ports::BoxFuture<'a, Result<Vec<$crate::store::ports::Envelope>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Records::stream_range($crate::forward_ports!(@recv self $recv), stream, after, up_to)
        }
    };
    (@method $recv:tt replay_events) => {
        fn replay_events<'a>(&'a self, stream: &'a $crate::store::ports::StreamId, after: u64, up_to: Option<u64>) -> $crate::store::ports::BoxFuture<'a, Result<$crate::store::ports::ReplayEvents, $crate::store::ports::StoreError>> {
            $crate::store::ports::Records::replay_events($crate::forward_ports!(@recv self $recv), stream, after, up_to)
        }
    };
    (@method $recv:tt load_snapshot) => {
        fn load_snapshot<'a>(&'a self, stream: &'a $crate::store::ports::StreamId, at_most: Option<u64>) -> $crate::store::ports::BoxFuture<'a, Result<Option<$crate::store::ports::Snapshot>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Records::load_snapshot($crate::forward_ports!(@recv self $recv), stream, at_most)
        }
    };
    (@method $recv:tt events) => {
        fn events(&self, from: u64, limit: usize) -> $crate::store::ports::BoxFuture<'_, Result<Vec<$crate::store::ports::Envelope>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Records::events($crate::forward_ports!(@recv self $recv), from, limit)
        }
    };
    (@method $recv:tt log_after) => {
        fn log_after<'a>(&'a self, after: u64, limit: usize, types: &'a [String]) -> $crate::store::ports::BoxFuture<'a, Result<Vec<$crate::store::ports::Logged>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Records::log_after($crate::forward_ports!(@recv self $recv), after, limit, types)
        }
    };
    (@method $recv:tt log_count) => {
        fn log_count<'a>(&'a self, after: u64, types: &'a [String]) -> $crate::store::ports::BoxFuture<'a, Result<u64, $crate::store::ports::StoreError>> {
            $crate::store::ports::Records::log_count($crate::forward_ports!(@recv self $recv), after, types)
        }
    };
    (@method $recv:tt claim_undelivered) => {
        fn claim_undelivered(&self, limit: usize, lease: ::std::time::Duration) -> $crate::store::ports::BoxFuture<'_, Result<Vec<$crate::store::ports::Envelope>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Outbox::claim_undelivered($crate::forward_ports!(@recv self $recv), limit, lease)
        }
    };
    (@method $recv:tt renew_claims) => {
        fn renew_claims(&self, event_ids: Vec<$crate::store::ports::Uuid>, lease: ::std::time::Duration) -> $crate::store::ports::BoxFuture<'_, Result<(), $crate::store::ports::StoreError>> {
            $crate::store::ports::Outbox::renew_claims($crate::forward_ports!(@recv self $recv), event_ids, lease)
        }
    };
    (@method $recv:tt release_claims) => {
        fn release_claims(&self, event_ids: Vec<$crate::store::ports::Uuid>) -> $crate::store::ports::BoxFuture<'_, Result<(), $crate::store::ports::StoreError>> {
            $crate::store::ports::Outbox::release_claims($crate::forward_ports!(@recv self $recv), event_ids)
        }
    };
    (@method $recv:tt mark_delivered) => {
        fn mark_delivered(&self, event_ids: Vec<$crate::store::ports::Uuid>) -> $crate::store::ports::BoxFuture<'_, Result<(), $crate::store::ports::StoreError>> {
            $crate::store::ports::Outbox::mark_delivered($crate::forward_ports!(@recv self $recv), event_ids)
        }
    };
    (@method $recv:tt outbox_status) => {
        fn outbox_status(&self) -> $crate::store::ports::BoxFuture<'_, Result<$crate::store::ports::OutboxStatus, $crate::store::ports::StoreError>> {
            $crate::store::ports::Outbox::outbox_status($crate::forward_ports!(@recv self $recv))
        }
    };
    (@method $recv:tt outbox_signal) => {
        fn outbox_signal(&self) -> Option<::std::sync::Arc<$crate::store::ports::Notify>> {
            $crate::store::ports::Outbox::outbox_signal($crate::forward_ports!(@recv self $recv))
        }
    };
    (@method $recv:tt is_handled) => {
        fn is_handled<'a>(&'a self, handler: &'a str, message_id: $crate::store::ports::Uuid) -> $crate::store::ports::BoxFuture<'a, Result<bool, $crate::store::ports::StoreError>> {
            $crate::store::ports::Deliveries::is_handled($crate::forward_ports!(@recv self $recv), handler, message_id)
        }
    };
    (@method $recv:tt handled_outcome) => {
        fn handled_outcome<'a>(&'a self, handler: &'a str, message_id: $crate::store::ports::Uuid) -> $crate::store::ports::BoxFuture<'a, Result<Option<Option<String>>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Deliveries::handled_outcome($crate::forward_ports!(@recv self $recv), handler, message_id)
        }
    };
    (@method $recv:tt handler_state) => {
        fn handler_state<'a>(&'a self, handler: &'a str, event: &'a $crate::store::ports::Envelope) -> $crate::store::ports::BoxFuture<'a, Result<$crate::store::ports::HandlerState, $crate::store::ports::StoreError>> {
            $crate::store::ports::Deliveries::handler_state($crate::forward_ports!(@recv self $recv), handler, event)
        }
    };
    (@method $recv:tt record_failure) => {
        fn record_failure(&self, update: $crate::store::ports::FailureUpdate) -> $crate::store::ports::BoxFuture<'_, Result<u32, $crate::store::ports::StoreError>> {
            $crate::store::ports::Deliveries::record_failure($crate::forward_ports!(@recv self $recv), update)
        }
    };
    (@method $recv:tt hold_behind_dead_letter) => {
        fn hold_behind_dead_letter<'a>(&'a self, handler: &'a str, event: &'a $crate::store::ports::Envelope, reason: &'a str, at: $crate::store::ports::OffsetDateTime) -> $crate::store::ports::BoxFuture<'a, Result<bool, $crate::store::ports::StoreError>> {
            $crate::store::ports::Deliveries::hold_behind_dead_letter($crate::forward_ports!(@recv self $recv), handler, event, reason, at)
        }
    };
    (@method $recv:tt failed_delivery) => {
        fn failed_delivery<'a>(&'a self, handler: &'a str, event_id: $crate::store::ports::Uuid) -> $crate::store::ports::BoxFuture<'a, Result<Option<$crate::store::ports::FailedDelivery>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Deliveries::failed_delivery($crate::forward_ports!(@recv self $recv), handler, event_id)
        }
    };
    (@method $recv:tt failed_deliveries) => {
        fn failed_deliveries(&self, query: $crate::store::ports::FailureQuery) -> $crate::store::ports::BoxFuture<'_, Result<Vec<$crate::store::ports::FailedDelivery>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Deliveries::failed_deliveries($crate::forward_ports!(@recv self $recv), query)
        }
    };
    (@method $recv:tt remove_failure) => {
        fn remove_failure<'a>(&'a self, handler: &'a str, event_id: $crate::store::ports::Uuid) -> $crate::store::ports::BoxFuture<'a, Result<bool, $crate::store::ports::StoreError>> {
            $crate::store::ports::Deliveries::remove_failure($crate::forward_ports!(@recv self $recv), handler, event_id)
        }
    };
    (@method $recv:tt register_projection) => {
        fn register_projection(&self, spec: $crate::store::ports::ProjectionSpec) -> $crate::store::ports::BoxFuture<'_, Result<$crate::store::ports::ProjectionState, $crate::store::ports::StoreError>> {
            $crate::store::ports::Projections::register_projection($crate::forward_ports!(@recv self $recv), spec)
        }
    };
    (@method $recv:tt projection_state) => {
        fn projection_state<'a>(&'a self, name: &'a str) -> $crate::store::ports::BoxFuture<'a, Result<Option<$crate::store::ports::ProjectionState>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Projections::projection_state($crate::forward_ports!(@recv self $recv), name)
        }
    };
    (@method $recv:tt projection_row) => {
        fn projection_row<'a>(&'a self, name: &'a str, generation: Option<u64>, key: &'a str) -> $crate::store::ports::BoxFuture<'a, Result<Option<$crate::store::ports::Row>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Projections::projection_row($crate::forward_ports!(@recv self $recv), name, generation, key)
        }
    };
    (@method $recv:tt query_projection) => {
        fn query_projection(&self, query: $crate::store::ports::RowQuery) -> $crate::store::ports::BoxFuture<'_, Result<Vec<$crate::store::ports::Row>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Projections::query_projection($crate::forward_ports!(@recv self $recv), query)
        }
    };
    (@method $recv:tt begin_build) => {
        fn begin_build<'a>(&'a self, name: &'a str, version: u32, lease: ::std::time::Duration) -> $crate::store::ports::BoxFuture<'a, Result<Option<$crate::store::ports::BuildState>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Projections::begin_build($crate::forward_ports!(@recv self $recv), name, version, lease)
        }
    };
    (@method $recv:tt write_build) => {
        fn write_build<'a>(&'a self, name: &'a str, generation: u64, rows: Vec<(String, Option<::std::sync::Arc<str>>)>, position: u64) -> $crate::store::ports::BoxFuture<'a, Result<(), $crate::store::ports::StoreError>> {
            $crate::store::ports::Projections::write_build($crate::forward_ports!(@recv self $recv), name, generation, rows, position)
        }
    };
    (@method $recv:tt finish_build) => {
        fn finish_build<'a>(&'a self, name: &'a str, generation: u64, position: u64, types: &'a [String]) -> $crate::store::ports::BoxFuture<'a, Result<bool, $crate::store::ports::StoreError>> {
            $crate::store::ports::Projections::finish_build($crate::forward_ports!(@recv self $recv), name, generation, position, types)
        }
    };
    (@method $recv:tt read_model) => {
        fn read_model<'a>(&'a self, name: &'a str, key: &'a str) -> $crate::store::ports::BoxFuture<'a, Result<Option<String>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Projections::read_model($crate::forward_ports!(@recv self $recv), name, key)
        }
    };
    (@method $recv:tt put_read_model) => {
        fn put_read_model<'a>(&'a self, name: &'a str, key: &'a str, json: String) -> $crate::store::ports::BoxFuture<'a, Result<(), $crate::store::ports::StoreError>> {
            $crate::store::ports::Projections::put_read_model($crate::forward_ports!(@recv self $recv), name, key, json)
        }
    };
    (@method $recv:tt claim_due) => {
        fn claim_due(&self, now: $crate::store::ports::OffsetDateTime, limit: usize, lease: ::std::time::Duration) -> $crate::store::ports::BoxFuture<'_, Result<Vec<$crate::store::ports::Scheduled>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Schedule::claim_due($crate::forward_ports!(@recv self $recv), now, limit, lease)
        }
    };
    (@method $recv:tt complete_scheduled) => {
        fn complete_scheduled(&self, id: $crate::store::ports::Uuid) -> $crate::store::ports::BoxFuture<'_, Result<(), $crate::store::ports::StoreError>> {
            $crate::store::ports::Schedule::complete_scheduled($crate::forward_ports!(@recv self $recv), id)
        }
    };
    (@method $recv:tt release_scheduled) => {
        fn release_scheduled(&self, ids: Vec<$crate::store::ports::Uuid>) -> $crate::store::ports::BoxFuture<'_, Result<(), $crate::store::ports::StoreError>> {
            $crate::store::ports::Schedule::release_scheduled($crate::forward_ports!(@recv self $recv), ids)
        }
    };
    (@method $recv:tt next_due) => {
        fn next_due(&self) -> $crate::store::ports::BoxFuture<'_, Result<Option<$crate::store::ports::OffsetDateTime>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Schedule::next_due($crate::forward_ports!(@recv self $recv))
        }
    };
    (@method $recv:tt scheduled_of) => {
        fn scheduled_of<'a>(&'a self, owner: &'a str, owner_key: &'a str) -> $crate::store::ports::BoxFuture<'a, Result<Vec<$crate::store::ports::Scheduled>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Schedule::scheduled_of($crate::forward_ports!(@recv self $recv), owner, owner_key)
        }
    };
    (@method $recv:tt pending_scheduled) => {
        fn pending_scheduled(&self, limit: usize) -> $crate::store::ports::BoxFuture<'_, Result<Vec<$crate::store::ports::Scheduled>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Schedule::pending_scheduled($crate::forward_ports!(@recv self $recv), limit)
        }
    };
    (@method $recv:tt cancel_scheduled) => {
        fn cancel_scheduled(&self, id: $crate::store::ports::Uuid) -> $crate::store::ports::BoxFuture<'_, Result<bool, $crate::store::ports::StoreError>> {
            $crate::store::ports::Schedule::cancel_scheduled($crate::forward_ports!(@recv self $recv), id)
        }
    };
    (@method $recv:tt count_scheduled) => {
        fn count_scheduled(&self, now: $crate::store::ports::OffsetDateTime) -> $crate::store::ports::BoxFuture<'_, Result<$crate::store::ports::ScheduledCounts, $crate::store::ports::StoreError>> {
            $crate::store::ports::Schedule::count_scheduled($crate::forward_ports!(@recv self $recv), now)
        }
    };
    (@method $recv:tt beat_worker) => {
        fn beat_worker(&self, beat: $crate::store::ports::WorkerBeat) -> $crate::store::ports::BoxFuture<'_, Result<(), $crate::store::ports::StoreError>> {
            $crate::store::ports::Outbox::beat_worker($crate::forward_ports!(@recv self $recv), beat)
        }
    };
    (@method $recv:tt worker_beats) => {
        fn worker_beats(&self) -> $crate::store::ports::BoxFuture<'_, Result<Vec<$crate::store::ports::WorkerBeat>, $crate::store::ports::StoreError>> {
            $crate::store::ports::Outbox::worker_beats($crate::forward_ports!(@recv self $recv))
        }
    };
}
