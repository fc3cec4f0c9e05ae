//! `forward!`, for a test's store wrapper: written in an `impl <Port> for <Wrapper>`
//! block, it forwards to the wrapped store (a field of the wrapper) the methods it names,
//! or every method of the port it names, so that the wrapper writes by hand only the
//! methods it changes:
//!
//! ```ignore
//! impl Records for Forgetful {
//!     fn commit(&self, batch: Batch) -> BoxFuture<'_, Result<Vec<Committed>, StoreError>> {
//!         self.0.commit(Batch { delivered: vec![], ..batch })
//!     }
//!
//!     forward!(self.0: migrate, close, load, commit_group, stream, stream_range, replay_events,
//!         load_snapshot, events, log_after, log_count);
//! }
//!
//! impl Schedule for Forgetful {
//!     forward!(self.0: Schedule);
//! }
//! ```
//!
//! The ports have no default methods, so a wrapper that leaves a port out, or a method of
//! one, does not compile; naming a method it also writes is a duplicate definition. Include
//! this file with `#[macro_use]` before the modules that use it.

/// Forwards the methods named, or every method of the ports named, to `self.<field>`.
macro_rules! forward {
    (self.$field:tt: $($name:ident),+ $(,)?) => {
        $(forward!(@method $field $name);)+
    };
    (@method $field:tt Records) => {
        forward!(
            self.$field:
            migrate, close, load, commit, commit_group, stream, stream_range, replay_events, load_snapshot,
            events, log_after, log_count
        );
    };
    (@method $field:tt Outbox) => {
        forward!(
            self.$field:
            claim_undelivered, renew_claims, release_claims, mark_delivered, outbox_status, outbox_signal
        );
    };
    (@method $field:tt Deliveries) => {
        forward!(
            self.$field:
            is_handled, handled_outcome, handler_state, record_failure, hold_behind_dead_letter,
            failed_delivery, failed_deliveries, remove_failure
        );
    };
    (@method $field:tt Projections) => {
        forward!(
            self.$field:
            register_projection, projection_state, projection_row, query_projection, begin_build,
            write_build, finish_build, read_model, put_read_model
        );
    };
    (@method $field:tt Schedule) => {
        forward!(
            self.$field:
            claim_due, complete_scheduled, release_scheduled, next_due, scheduled_of
        );
    };
    (@method $field:tt migrate) => {
        fn migrate(&self) -> ::protean::store::BoxFuture<'_, Result<(), ::protean::store::StoreError>> {
            self.$field.migrate()
        }
    };
    (@method $field:tt close) => {
        fn close(&self) -> ::protean::store::BoxFuture<'_, Result<(), ::protean::store::StoreError>> {
            self.$field.close()
        }
    };
    (@method $field:tt load) => {
        fn load<'a>(
            &'a self,
            stream: &'a ::protean::store::StreamId,
        ) -> ::protean::store::BoxFuture<'a, Result<Option<::protean::store::Record>, ::protean::store::StoreError>> {
            self.$field.load(stream)
        }
    };
    (@method $field:tt commit) => {
        fn commit(
            &self,
            batch: ::protean::store::Batch,
        ) -> ::protean::store::BoxFuture<'_, Result<Vec<::protean::store::Committed>, ::protean::store::StoreError>> {
            self.$field.commit(batch)
        }
    };
    (@method $field:tt commit_group) => {
        fn commit_group(
            &self,
            batches: Vec<::protean::store::Batch>,
        ) -> ::protean::store::BoxFuture<'_, Vec<Result<Vec<::protean::store::Committed>, ::protean::store::StoreError>>>
        {
            self.$field.commit_group(batches)
        }
    };
    (@method $field:tt stream) => {
        fn stream<'a>(
            &'a self,
            stream: &'a ::protean::store::StreamId,
        ) -> ::protean::store::BoxFuture<'a, Result<Vec<::protean::store::Envelope>, ::protean::store::StoreError>> {
            self.$field.stream(stream)
        }
    };
    (@method $field:tt stream_range) => {
        fn stream_range<'a>(
            &'a self,
            stream: &'a ::protean::store::StreamId,
            after: u64,
            up_to: Option<u64>,
        ) -> ::protean::store::BoxFuture<'a, Result<Vec<::protean::store::Envelope>, ::protean::store::StoreError>> {
            self.$field.stream_range(stream, after, up_to)
        }
    };
    (@method $field:tt replay_events) => {
        fn replay_events<'a>(
            &'a self,
            stream: &'a ::protean::store::StreamId,
            after: u64,
            up_to: Option<u64>,
        ) -> ::protean::store::BoxFuture<'a, Result<::protean::store::ReplayEvents, ::protean::store::StoreError>> {
            self.$field.replay_events(stream, after, up_to)
        }
    };
    (@method $field:tt load_snapshot) => {
        fn load_snapshot<'a>(
            &'a self,
            stream: &'a ::protean::store::StreamId,
            at_most: Option<u64>,
        ) -> ::protean::store::BoxFuture<'a, Result<Option<::protean::store::Snapshot>, ::protean::store::StoreError>> {
            self.$field.load_snapshot(stream, at_most)
        }
    };
    (@method $field:tt events) => {
        fn events(
            &self,
            from: u64,
            limit: usize,
        ) -> ::protean::store::BoxFuture<'_, Result<Vec<::protean::store::Envelope>, ::protean::store::StoreError>> {
            self.$field.events(from, limit)
        }
    };
    (@method $field:tt log_after) => {
        fn log_after<'a>(
            &'a self,
            after: u64,
            limit: usize,
            types: &'a [String],
        ) -> ::protean::store::BoxFuture<'a, Result<Vec<::protean::store::Logged>, ::protean::store::StoreError>> {
            self.$field.log_after(after, limit, types)
        }
    };
    (@method $field:tt log_count) => {
        fn log_count<'a>(
            &'a self,
            after: u64,
            types: &'a [String],
        ) -> ::protean::store::BoxFuture<'a, Result<u64, ::protean::store::StoreError>> {
            self.$field.log_count(after, types)
        }
    };
    (@method $field:tt claim_undelivered) => {
        fn claim_undelivered(
            &self,
            limit: usize,
            lease: ::std::time::Duration,
        ) -> ::protean::store::BoxFuture<'_, Result<Vec<::protean::store::Envelope>, ::protean::store::StoreError>> {
            self.$field.claim_undelivered(limit, lease)
        }
    };
    (@method $field:tt renew_claims) => {
        fn renew_claims(
            &self,
            event_ids: Vec<::uuid::Uuid>,
            lease: ::std::time::Duration,
        ) -> ::protean::store::BoxFuture<'_, Result<(), ::protean::store::StoreError>> {
            self.$field.renew_claims(event_ids, lease)
        }
    };
    (@method $field:tt release_claims) => {
        fn release_claims(
            &self,
            event_ids: Vec<::uuid::Uuid>,
        ) -> ::protean::store::BoxFuture<'_, Result<(), ::protean::store::StoreError>> {
            self.$field.release_claims(event_ids)
        }
    };
    (@method $field:tt mark_delivered) => {
        fn mark_delivered(
            &self,
            event_ids: Vec<::uuid::Uuid>,
        ) -> ::protean::store::BoxFuture<'_, Result<(), ::protean::store::StoreError>> {
            self.$field.mark_delivered(event_ids)
        }
    };
    (@method $field:tt outbox_status) => {
        fn outbox_status(
            &self,
        ) -> ::protean::store::BoxFuture<'_, Result<::protean::store::OutboxStatus, ::protean::store::StoreError>> {
            self.$field.outbox_status()
        }
    };
    (@method $field:tt outbox_signal) => {
        fn outbox_signal(&self) -> Option<::std::sync::Arc<::tokio::sync::Notify>> {
            self.$field.outbox_signal()
        }
    };
    (@method $field:tt is_handled) => {
        fn is_handled<'a>(
            &'a self,
            handler: &'a str,
            message_id: ::uuid::Uuid,
        ) -> ::protean::store::BoxFuture<'a, Result<bool, ::protean::store::StoreError>> {
            self.$field.is_handled(handler, message_id)
        }
    };
    (@method $field:tt handled_outcome) => {
        fn handled_outcome<'a>(
            &'a self,
            handler: &'a str,
            message_id: ::uuid::Uuid,
        ) -> ::protean::store::BoxFuture<'a, Result<Option<Option<String>>, ::protean::store::StoreError>> {
            self.$field.handled_outcome(handler, message_id)
        }
    };
    (@method $field:tt handler_state) => {
        fn handler_state<'a>(
            &'a self,
            handler: &'a str,
            event: &'a ::protean::store::Envelope,
        ) -> ::protean::store::BoxFuture<'a, Result<::protean::store::HandlerState, ::protean::store::StoreError>> {
            self.$field.handler_state(handler, event)
        }
    };
    (@method $field:tt record_failure) => {
        fn record_failure(
            &self,
            update: ::protean::store::FailureUpdate,
        ) -> ::protean::store::BoxFuture<'_, Result<u32, ::protean::store::StoreError>> {
            self.$field.record_failure(update)
        }
    };
    (@method $field:tt hold_behind_dead_letter) => {
        fn hold_behind_dead_letter<'a>(
            &'a self,
            handler: &'a str,
            event: &'a ::protean::store::Envelope,
            reason: &'a str,
            at: ::protean::store::OffsetDateTime,
        ) -> ::protean::store::BoxFuture<'a, Result<bool, ::protean::store::StoreError>> {
            self.$field.hold_behind_dead_letter(handler, event, reason, at)
        }
    };
    (@method $field:tt failed_delivery) => {
        fn failed_delivery<'a>(
            &'a self,
            handler: &'a str,
            event_id: ::uuid::Uuid,
        ) -> ::protean::store::BoxFuture<'a, Result<Option<::protean::store::FailedDelivery>, ::protean::store::StoreError>>
        {
            self.$field.failed_delivery(handler, event_id)
        }
    };
    (@method $field:tt failed_deliveries) => {
        fn failed_deliveries(
            &self,
            query: ::protean::store::FailureQuery,
        ) -> ::protean::store::BoxFuture<'_, Result<Vec<::protean::store::FailedDelivery>, ::protean::store::StoreError>>
        {
            self.$field.failed_deliveries(query)
        }
    };
    (@method $field:tt remove_failure) => {
        fn remove_failure<'a>(
            &'a self,
            handler: &'a str,
            event_id: ::uuid::Uuid,
        ) -> ::protean::store::BoxFuture<'a, Result<bool, ::protean::store::StoreError>> {
            self.$field.remove_failure(handler, event_id)
        }
    };
    (@method $field:tt register_projection) => {
        fn register_projection(
            &self,
            spec: ::protean::store::ProjectionSpec,
        ) -> ::protean::store::BoxFuture<'_, Result<::protean::store::ProjectionState, ::protean::store::StoreError>> {
            self.$field.register_projection(spec)
        }
    };
    (@method $field:tt projection_state) => {
        fn projection_state<'a>(
            &'a self,
            name: &'a str,
        ) -> ::protean::store::BoxFuture<'a, Result<Option<::protean::store::ProjectionState>, ::protean::store::StoreError>>
        {
            self.$field.projection_state(name)
        }
    };
    (@method $field:tt projection_row) => {
        fn projection_row<'a>(
            &'a self,
            name: &'a str,
            generation: Option<u64>,
            key: &'a str,
        ) -> ::protean::store::BoxFuture<'a, Result<Option<::protean::store::Row>, ::protean::store::StoreError>> {
            self.$field.projection_row(name, generation, key)
        }
    };
    (@method $field:tt query_projection) => {
        fn query_projection(
            &self,
            query: ::protean::store::RowQuery,
        ) -> ::protean::store::BoxFuture<'_, Result<Vec<::protean::store::Row>, ::protean::store::StoreError>> {
            self.$field.query_projection(query)
        }
    };
    (@method $field:tt begin_build) => {
        fn begin_build<'a>(
            &'a self,
            name: &'a str,
            version: u32,
            lease: ::std::time::Duration,
        ) -> ::protean::store::BoxFuture<'a, Result<Option<::protean::store::BuildState>, ::protean::store::StoreError>>
        {
            self.$field.begin_build(name, version, lease)
        }
    };
    (@method $field:tt write_build) => {
        fn write_build<'a>(
            &'a self,
            name: &'a str,
            generation: u64,
            rows: Vec<(String, Option<::std::sync::Arc<str>>)>,
            position: u64,
        ) -> ::protean::store::BoxFuture<'a, Result<(), ::protean::store::StoreError>> {
            self.$field.write_build(name, generation, rows, position)
        }
    };
    (@method $field:tt finish_build) => {
        fn finish_build<'a>(
            &'a self,
            name: &'a str,
            generation: u64,
            position: u64,
            types: &'a [String],
        ) -> ::protean::store::BoxFuture<'a, Result<bool, ::protean::store::StoreError>> {
            self.$field.finish_build(name, generation, position, types)
        }
    };
    (@method $field:tt read_model) => {
        fn read_model<'a>(
            &'a self,
            name: &'a str,
            key: &'a str,
        ) -> ::protean::store::BoxFuture<'a, Result<Option<String>, ::protean::store::StoreError>> {
            self.$field.read_model(name, key)
        }
    };
    (@method $field:tt put_read_model) => {
        fn put_read_model<'a>(
            &'a self,
            name: &'a str,
            key: &'a str,
            json: String,
        ) -> ::protean::store::BoxFuture<'a, Result<(), ::protean::store::StoreError>> {
            self.$field.put_read_model(name, key, json)
        }
    };
    (@method $field:tt claim_due) => {
        fn claim_due(
            &self,
            now: ::protean::store::OffsetDateTime,
            limit: usize,
            lease: ::std::time::Duration,
        ) -> ::protean::store::BoxFuture<'_, Result<Vec<::protean::store::Scheduled>, ::protean::store::StoreError>> {
            self.$field.claim_due(now, limit, lease)
        }
    };
    (@method $field:tt complete_scheduled) => {
        fn complete_scheduled(
            &self,
            id: ::uuid::Uuid,
        ) -> ::protean::store::BoxFuture<'_, Result<(), ::protean::store::StoreError>> {
            self.$field.complete_scheduled(id)
        }
    };
    (@method $field:tt release_scheduled) => {
        fn release_scheduled(
            &self,
            ids: Vec<::uuid::Uuid>,
        ) -> ::protean::store::BoxFuture<'_, Result<(), ::protean::store::StoreError>> {
            self.$field.release_scheduled(ids)
        }
    };
    (@method $field:tt next_due) => {
        fn next_due(
            &self,
        ) -> ::protean::store::BoxFuture<'_, Result<Option<::protean::store::OffsetDateTime>, ::protean::store::StoreError>>
        {
            self.$field.next_due()
        }
    };
    (@method $field:tt scheduled_of) => {
        fn scheduled_of<'a>(
            &'a self,
            owner: &'a str,
            owner_key: &'a str,
        ) -> ::protean::store::BoxFuture<'a, Result<Vec<::protean::store::Scheduled>, ::protean::store::StoreError>> {
            self.$field.scheduled_of(owner, owner_key)
        }
    };
}
