//! [`forward_ports!`](crate::forward_ports): a store that wraps another writes by hand only
//! the ports it changes.

/// Implements ports of a store that wraps another by forwarding every method to the
/// wrapped store, so a wrapper (metrics, tracing, fault injection in tests) writes by
/// hand only the ports it changes. The ports not named, and not written by hand, are
/// missing: the wrapper is then not a `Store`, and does not compile where one is needed.
///
/// `forward_ports!(impl for Type, to field: Port, Port, ...)`, or with generics
/// `forward_ports!(impl[S: Store] for Type<S>, to field: Port, ...)`; `field` is the
/// wrapped store's field (a name, or `0` for a tuple struct).
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// use protean_core::forward_ports;
/// use protean_core::store::ports::{Batch, BoxFuture, Committed, Record, ReplayEvents, Snapshot, Logged};
/// use protean_core::store::{Envelope, MemoryStore, Records, Store, StoreError, StreamId};
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
///     // The other methods of `Records` forward too, by hand here (a port is written
///     // whole, or forwarded whole).
/// #   fn migrate(&self) -> BoxFuture<'_, Result<(), StoreError>> { self.inner.migrate() }
/// #   fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> { self.inner.close() }
/// #   fn load<'a>(&'a self, s: &'a StreamId) -> BoxFuture<'a, Result<Option<Record>, StoreError>> { self.inner.load(s) }
/// #   fn commit_group(&self, b: Vec<Batch>) -> BoxFuture<'_, Vec<Result<Vec<Committed>, StoreError>>> { self.inner.commit_group(b) }
/// #   fn stream<'a>(&'a self, s: &'a StreamId) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> { self.inner.stream(s) }
/// #   fn stream_range<'a>(&'a self, s: &'a StreamId, a: u64, u: Option<u64>) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> { self.inner.stream_range(s, a, u) }
/// #   fn replay_events<'a>(&'a self, s: &'a StreamId, a: u64, u: Option<u64>) -> BoxFuture<'a, Result<ReplayEvents, StoreError>> { self.inner.replay_events(s, a, u) }
/// #   fn load_snapshot<'a>(&'a self, s: &'a StreamId, a: Option<u64>) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> { self.inner.load_snapshot(s, a) }
/// #   fn events(&self, f: u64, l: usize) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> { self.inner.events(f, l) }
/// #   fn log_after<'a>(&'a self, a: u64, l: usize, t: &'a [String]) -> BoxFuture<'a, Result<Vec<Logged>, StoreError>> { self.inner.log_after(a, l, t) }
/// #   fn log_count<'a>(&'a self, a: u64, t: &'a [String]) -> BoxFuture<'a, Result<u64, StoreError>> { self.inner.log_count(a, t) }
/// }
///
/// forward_ports!(impl[S: Store] for Counted<S>, to inner: Outbox, Deliveries, Projections, Schedule);
///
/// fn is_a_store(_: &dyn Store) {}
/// is_a_store(&Counted { inner: MemoryStore::new(), commits: AtomicU64::new(0) });
/// ```
#[macro_export]
macro_rules! forward_ports {
    (impl for $ty:ty, to $field:tt: $($port:ident),+ $(,)?) => {
        $crate::forward_ports!(impl [] for $ty, to $field: $($port),+);
    };
    (impl $generics:tt for $ty:ty, to $field:tt: $($port:ident),+ $(,)?) => {
        $( $crate::forward_ports!(@port $port $generics $ty, $field); )+
    };
    (@port Records [$($generics:tt)*] $ty:ty, $field:tt) => {
        impl<$($generics)*> $crate::store::ports::Records for $ty {
            fn migrate(&self) -> $crate::store::ports::BoxFuture<'_, Result<(), $crate::store::ports::StoreError>> {
                $crate::store::ports::Records::migrate(&self.$field)
            }
            fn close(&self) -> $crate::store::ports::BoxFuture<'_, Result<(), $crate::store::ports::StoreError>> {
                $crate::store::ports::Records::close(&self.$field)
            }
            fn load<'a>(&'a self, stream: &'a $crate::store::ports::StreamId) -> $crate::store::ports::BoxFuture<'a, Result<Option<$crate::store::ports::Record>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Records::load(&self.$field, stream)
            }
            fn commit(&self, batch: $crate::store::ports::Batch) -> $crate::store::ports::BoxFuture<'_, Result<Vec<$crate::store::ports::Committed>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Records::commit(&self.$field, batch)
            }
            fn commit_group(&self, batches: Vec<$crate::store::ports::Batch>) -> $crate::store::ports::BoxFuture<'_, Vec<Result<Vec<$crate::store::ports::Committed>, $crate::store::ports::StoreError>>> {
                $crate::store::ports::Records::commit_group(&self.$field, batches)
            }
            fn stream<'a>(&'a self, stream: &'a $crate::store::ports::StreamId) -> $crate::store::ports::BoxFuture<'a, Result<Vec<$crate::store::ports::Envelope>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Records::stream(&self.$field, stream)
            }
            fn stream_range<'a>(&'a self, stream: &'a $crate::store::ports::StreamId, after: u64, up_to: Option<u64>) -> $crate::store::ports::BoxFuture<'a, Result<Vec<$crate::store::ports::Envelope>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Records::stream_range(&self.$field, stream, after, up_to)
            }
            fn replay_events<'a>(&'a self, stream: &'a $crate::store::ports::StreamId, after: u64, up_to: Option<u64>) -> $crate::store::ports::BoxFuture<'a, Result<$crate::store::ports::ReplayEvents, $crate::store::ports::StoreError>> {
                $crate::store::ports::Records::replay_events(&self.$field, stream, after, up_to)
            }
            fn load_snapshot<'a>(&'a self, stream: &'a $crate::store::ports::StreamId, at_most: Option<u64>) -> $crate::store::ports::BoxFuture<'a, Result<Option<$crate::store::ports::Snapshot>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Records::load_snapshot(&self.$field, stream, at_most)
            }
            fn events(&self, from: u64, limit: usize) -> $crate::store::ports::BoxFuture<'_, Result<Vec<$crate::store::ports::Envelope>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Records::events(&self.$field, from, limit)
            }
            fn log_after<'a>(&'a self, after: u64, limit: usize, types: &'a [String]) -> $crate::store::ports::BoxFuture<'a, Result<Vec<$crate::store::ports::Logged>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Records::log_after(&self.$field, after, limit, types)
            }
            fn log_count<'a>(&'a self, after: u64, types: &'a [String]) -> $crate::store::ports::BoxFuture<'a, Result<u64, $crate::store::ports::StoreError>> {
                $crate::store::ports::Records::log_count(&self.$field, after, types)
            }
        }
    };
    (@port Outbox [$($generics:tt)*] $ty:ty, $field:tt) => {
        impl<$($generics)*> $crate::store::ports::Outbox for $ty {
            fn claim_undelivered(&self, limit: usize, lease: ::std::time::Duration) -> $crate::store::ports::BoxFuture<'_, Result<Vec<$crate::store::ports::Envelope>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Outbox::claim_undelivered(&self.$field, limit, lease)
            }
            fn renew_claims(&self, event_ids: Vec<$crate::store::ports::Uuid>, lease: ::std::time::Duration) -> $crate::store::ports::BoxFuture<'_, Result<(), $crate::store::ports::StoreError>> {
                $crate::store::ports::Outbox::renew_claims(&self.$field, event_ids, lease)
            }
            fn release_claims(&self, event_ids: Vec<$crate::store::ports::Uuid>) -> $crate::store::ports::BoxFuture<'_, Result<(), $crate::store::ports::StoreError>> {
                $crate::store::ports::Outbox::release_claims(&self.$field, event_ids)
            }
            fn mark_delivered(&self, event_ids: Vec<$crate::store::ports::Uuid>) -> $crate::store::ports::BoxFuture<'_, Result<(), $crate::store::ports::StoreError>> {
                $crate::store::ports::Outbox::mark_delivered(&self.$field, event_ids)
            }
            fn outbox_status(&self) -> $crate::store::ports::BoxFuture<'_, Result<$crate::store::ports::OutboxStatus, $crate::store::ports::StoreError>> {
                $crate::store::ports::Outbox::outbox_status(&self.$field)
            }
            fn outbox_signal(&self) -> Option<::std::sync::Arc<$crate::store::ports::Notify>> {
                $crate::store::ports::Outbox::outbox_signal(&self.$field)
            }
        }
    };
    (@port Deliveries [$($generics:tt)*] $ty:ty, $field:tt) => {
        impl<$($generics)*> $crate::store::ports::Deliveries for $ty {
            fn is_handled<'a>(&'a self, handler: &'a str, message_id: $crate::store::ports::Uuid) -> $crate::store::ports::BoxFuture<'a, Result<bool, $crate::store::ports::StoreError>> {
                $crate::store::ports::Deliveries::is_handled(&self.$field, handler, message_id)
            }
            fn handled_outcome<'a>(&'a self, handler: &'a str, message_id: $crate::store::ports::Uuid) -> $crate::store::ports::BoxFuture<'a, Result<Option<Option<String>>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Deliveries::handled_outcome(&self.$field, handler, message_id)
            }
            fn handler_state<'a>(&'a self, handler: &'a str, event: &'a $crate::store::ports::Envelope) -> $crate::store::ports::BoxFuture<'a, Result<$crate::store::ports::HandlerState, $crate::store::ports::StoreError>> {
                $crate::store::ports::Deliveries::handler_state(&self.$field, handler, event)
            }
            fn record_failure(&self, update: $crate::store::ports::FailureUpdate) -> $crate::store::ports::BoxFuture<'_, Result<u32, $crate::store::ports::StoreError>> {
                $crate::store::ports::Deliveries::record_failure(&self.$field, update)
            }
            fn hold_behind_dead_letter<'a>(&'a self, handler: &'a str, event: &'a $crate::store::ports::Envelope, reason: &'a str, at: $crate::store::ports::OffsetDateTime) -> $crate::store::ports::BoxFuture<'a, Result<bool, $crate::store::ports::StoreError>> {
                $crate::store::ports::Deliveries::hold_behind_dead_letter(&self.$field, handler, event, reason, at)
            }
            fn failed_delivery<'a>(&'a self, handler: &'a str, event_id: $crate::store::ports::Uuid) -> $crate::store::ports::BoxFuture<'a, Result<Option<$crate::store::ports::FailedDelivery>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Deliveries::failed_delivery(&self.$field, handler, event_id)
            }
            fn failed_deliveries(&self, query: $crate::store::ports::FailureQuery) -> $crate::store::ports::BoxFuture<'_, Result<Vec<$crate::store::ports::FailedDelivery>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Deliveries::failed_deliveries(&self.$field, query)
            }
            fn remove_failure<'a>(&'a self, handler: &'a str, event_id: $crate::store::ports::Uuid) -> $crate::store::ports::BoxFuture<'a, Result<bool, $crate::store::ports::StoreError>> {
                $crate::store::ports::Deliveries::remove_failure(&self.$field, handler, event_id)
            }
        }
    };
    (@port Projections [$($generics:tt)*] $ty:ty, $field:tt) => {
        impl<$($generics)*> $crate::store::ports::Projections for $ty {
            fn register_projection(&self, spec: $crate::store::ports::ProjectionSpec) -> $crate::store::ports::BoxFuture<'_, Result<$crate::store::ports::ProjectionState, $crate::store::ports::StoreError>> {
                $crate::store::ports::Projections::register_projection(&self.$field, spec)
            }
            fn projection_state<'a>(&'a self, name: &'a str) -> $crate::store::ports::BoxFuture<'a, Result<Option<$crate::store::ports::ProjectionState>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Projections::projection_state(&self.$field, name)
            }
            fn projection_row<'a>(&'a self, name: &'a str, generation: Option<u64>, key: &'a str) -> $crate::store::ports::BoxFuture<'a, Result<Option<$crate::store::ports::Row>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Projections::projection_row(&self.$field, name, generation, key)
            }
            fn query_projection(&self, query: $crate::store::ports::RowQuery) -> $crate::store::ports::BoxFuture<'_, Result<Vec<$crate::store::ports::Row>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Projections::query_projection(&self.$field, query)
            }
            fn begin_build<'a>(&'a self, name: &'a str, version: u32, lease: ::std::time::Duration) -> $crate::store::ports::BoxFuture<'a, Result<Option<$crate::store::ports::BuildState>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Projections::begin_build(&self.$field, name, version, lease)
            }
            fn write_build<'a>(&'a self, name: &'a str, generation: u64, rows: Vec<(String, Option<::std::sync::Arc<str>>)>, position: u64) -> $crate::store::ports::BoxFuture<'a, Result<(), $crate::store::ports::StoreError>> {
                $crate::store::ports::Projections::write_build(&self.$field, name, generation, rows, position)
            }
            fn finish_build<'a>(&'a self, name: &'a str, generation: u64, position: u64, types: &'a [String]) -> $crate::store::ports::BoxFuture<'a, Result<bool, $crate::store::ports::StoreError>> {
                $crate::store::ports::Projections::finish_build(&self.$field, name, generation, position, types)
            }
            fn read_model<'a>(&'a self, name: &'a str, key: &'a str) -> $crate::store::ports::BoxFuture<'a, Result<Option<String>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Projections::read_model(&self.$field, name, key)
            }
            fn put_read_model<'a>(&'a self, name: &'a str, key: &'a str, json: String) -> $crate::store::ports::BoxFuture<'a, Result<(), $crate::store::ports::StoreError>> {
                $crate::store::ports::Projections::put_read_model(&self.$field, name, key, json)
            }
        }
    };
    (@port Schedule [$($generics:tt)*] $ty:ty, $field:tt) => {
        impl<$($generics)*> $crate::store::ports::Schedule for $ty {
            fn claim_due(&self, now: $crate::store::ports::OffsetDateTime, limit: usize, lease: ::std::time::Duration) -> $crate::store::ports::BoxFuture<'_, Result<Vec<$crate::store::ports::Scheduled>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Schedule::claim_due(&self.$field, now, limit, lease)
            }
            fn complete_scheduled(&self, id: $crate::store::ports::Uuid) -> $crate::store::ports::BoxFuture<'_, Result<(), $crate::store::ports::StoreError>> {
                $crate::store::ports::Schedule::complete_scheduled(&self.$field, id)
            }
            fn release_scheduled(&self, ids: Vec<$crate::store::ports::Uuid>) -> $crate::store::ports::BoxFuture<'_, Result<(), $crate::store::ports::StoreError>> {
                $crate::store::ports::Schedule::release_scheduled(&self.$field, ids)
            }
            fn next_due(&self) -> $crate::store::ports::BoxFuture<'_, Result<Option<$crate::store::ports::OffsetDateTime>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Schedule::next_due(&self.$field)
            }
            fn scheduled_of<'a>(&'a self, owner: &'a str, owner_key: &'a str) -> $crate::store::ports::BoxFuture<'a, Result<Vec<$crate::store::ports::Scheduled>, $crate::store::ports::StoreError>> {
                $crate::store::ports::Schedule::scheduled_of(&self.$field, owner, owner_key)
            }
        }
    };
}
