//! Conformance cases for the `Outbox` port: each stream handed out in order, claims
//! leased, renewed and released, the outbox's status, a failed event holding back the
//! rest of its stream, and events committed but not marked delivered delivered again
//! (once in effect) by the next process.

use std::sync::Arc;
use std::time::Duration;

use protean::prelude::*;
use protean::store::{Batch, BoxFuture, Commit, Committed, Envelope, Record, Store, StoreError, StreamId};
use protean::store::{
    BuildState, Logged, ProjectionSpec, ProjectionState, ReplayEvents, Row, RowQuery, Scheduled, Snapshot,
};
use protean::store::{Deliveries, Outbox, Projections, Records, Schedule};
use protean::store::{FailedDelivery, FailureQuery, FailureUpdate, HandlerState, OffsetDateTime, OutboxStatus};
use uuid::Uuid;

use super::lab::*;
use super::{at, batch, bumped, domain_on, state, stream};

async fn the_outbox_hands_out_each_stream_in_order(store: Arc<dyn Store>) {
    let (a, b) = (stream("Counter", "a"), stream("Counter", "b"));
    let (ida, idb) = (Identifier::parse("a").unwrap(), Identifier::parse("b").unwrap());
    let commit = |s: &StreamId, id: &Identifier<Counter>, version: u64, counts: &[u32]| Commit {
        stream: s.clone(),
        expected_version: version,
        advance: 1,
        state: state("{}"),
        events: counts.iter().map(|&n| bumped(id, n, s)).collect(),
        snapshot: None,
    };
    store.commit(batch(vec![commit(&a, &ida, 0, &[1, 2])])).await.unwrap();
    store.commit(batch(vec![commit(&b, &idb, 0, &[1])])).await.unwrap();
    store.commit(batch(vec![commit(&a, &ida, 1, &[3])])).await.unwrap();

    let lease = Duration::from_secs(60);
    let first = store.claim_undelivered(2, lease).await.unwrap();
    let order = |events: &[Envelope]| events.iter().map(|e| (e.stream.id.to_string(), e.sequence)).collect::<Vec<_>>();
    assert_eq!(order(&first), [("a".into(), 1), ("a".into(), 2)]);
    // a's third event waits behind the two claimed; b is free.
    let second = store.claim_undelivered(10, lease).await.unwrap();
    assert_eq!(order(&second), [("b".into(), 1)]);
    assert!(store.claim_undelivered(10, lease).await.unwrap().is_empty(), "everything is claimed or blocked");
    store.mark_delivered(first.iter().map(|e| e.id).collect()).await.unwrap();
    let third = store.claim_undelivered(10, lease).await.unwrap();
    assert_eq!(order(&third), [("a".into(), 3)]);
    // An expired lease makes an event claimable again.
    let again = store.claim_undelivered(10, Duration::ZERO).await.unwrap();
    assert!(again.is_empty(), "b#1 and a#3 are still leased");
    store.mark_delivered(vec![second[0].id, third[0].id]).await.unwrap();
    assert!(store.claim_undelivered(10, lease).await.unwrap().is_empty());
}

async fn claims_are_renewed_and_released(store: Arc<dyn Store>) {
    let (a, ida) = (stream("Counter", "a"), Identifier::parse("a").unwrap());
    let commit = Commit {
        stream: a.clone(),
        expected_version: 0,
        advance: 1,
        state: state("{}"),
        events: vec![bumped(&ida, 1, &a), bumped(&ida, 2, &a)],
        snapshot: None,
    };
    store.commit(batch(vec![commit])).await.unwrap();
    // A lease that runs out at once is renewed: nobody else may take the events now.
    let claimed = store.claim_undelivered(10, Duration::ZERO).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let ids: Vec<Uuid> = claimed.iter().map(|e| e.id).collect();
    store.renew_claims(ids.clone(), Duration::from_secs(3600)).await.unwrap();
    assert!(store.claim_undelivered(10, Duration::from_secs(60)).await.unwrap().is_empty(), "renewed");
    // Released, they are claimable at once, whatever the lease said.
    store.release_claims(ids.clone()).await.unwrap();
    let again = store.claim_undelivered(10, Duration::from_secs(3600)).await.unwrap();
    assert_eq!(again.iter().map(|e| e.id).collect::<Vec<_>>(), ids, "in order, after a release");
    // Renewing or releasing a delivered event changes nothing.
    store.mark_delivered(ids.clone()).await.unwrap();
    store.release_claims(ids.clone()).await.unwrap();
    store.renew_claims(ids, Duration::from_secs(60)).await.unwrap();
    assert!(store.claim_undelivered(10, Duration::ZERO).await.unwrap().is_empty());
}

async fn the_oldest_undelivered_is_the_earliest_recorded_whatever_the_log_order(store: Arc<dyn Store>) {
    // An event's time is taken when its unit of work commits, before the store puts it
    // in the log: two units committing together may be logged in the opposite order of
    // their times. Here each first event is logged first but recorded after the second.
    let commit = |name: &'static str, recorded: i64| {
        let store = store.clone();
        async move {
            let s = stream("Counter", name);
            let mut event = bumped(&Identifier::parse(name).unwrap(), 1, &s);
            event.recorded_at = at(recorded);
            let commit = Commit {
                stream: s,
                expected_version: 0,
                advance: 1,
                state: state("{}"),
                events: vec![event],
                snapshot: None,
            };
            store.commit(batch(vec![commit])).await.unwrap()[0].events[0].id
        }
    };
    let oldest = || {
        let store = store.clone();
        async move { store.outbox_status().await.unwrap().oldest_undelivered }
    };
    let late = commit("x", 10).await;
    let early = commit("y", 5).await;
    assert_eq!(oldest().await, Some(at(5)), "the earliest recorded, not the first logged");
    // Delivering the first logged leaves the earliest recorded: the figure stays.
    store.mark_delivered(vec![late]).await.unwrap();
    assert_eq!(oldest().await, Some(at(5)));
    store.mark_delivered(vec![early]).await.unwrap();
    assert_eq!(oldest().await, None);

    // Delivering the earliest recorded moves the figure on to the next earliest.
    let late = commit("z", 20).await;
    let early = commit("w", 15).await;
    assert_eq!(oldest().await, Some(at(15)));
    store.mark_delivered(vec![early]).await.unwrap();
    assert_eq!(oldest().await, Some(at(20)));
    store.mark_delivered(vec![late]).await.unwrap();
    assert_eq!(oldest().await, None);
}

async fn a_failed_event_holds_back_the_rest_of_its_stream(store: Arc<dyn Store>) {
    let domain = domain_on(store.clone());
    let id = Identifier::<Counter>::parse("held").unwrap();
    let s = stream("Counter", "held");
    let mut first = bumped(&id, 1, &s);
    first.payload = Arc::from(r#"{"id":"held","count":"not a number"}"#);
    let commit = Commit {
        stream: s.clone(),
        expected_version: 0,
        advance: 1,
        state: state(r#"{"id":"held","count":2}"#),
        events: vec![first, bumped(&id, 2, &s)],
        snapshot: None,
    };
    store.commit(batch(vec![commit])).await.unwrap();
    let Delivered { events: delivered, failures } = domain.deliver_pending().await.unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(delivered.iter().all(|e| e.sequence == 1), "the second event waits behind the first");
    assert!(domain.get(&id.cast::<Tally>()).await.unwrap().is_none(), "nothing was counted out of order");
    // A lease of any length is taken without overflowing.
    store.claim_undelivered(1, Duration::MAX).await.unwrap();
}

/// Delivery that forgets to mark events delivered, as a process killed after its
/// handlers committed would (when an event has several handlers, marking it is a
/// transaction of its own).
struct Forgetful(Arc<dyn Store>);

impl Records for Forgetful {
    fn migrate(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.0.migrate()
    }

    fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.0.close()
    }

    fn load<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        self.0.load(stream)
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, Result<Vec<Committed>, StoreError>> {
        self.0.commit(Batch { delivered: vec![], ..batch })
    }

    fn commit_group(&self, batches: Vec<Batch>) -> BoxFuture<'_, Vec<Result<Vec<Committed>, StoreError>>> {
        self.0.commit_group(batches)
    }

    fn stream<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        self.0.stream(stream)
    }

    fn stream_range<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<Vec<Envelope>, StoreError>> {
        self.0.stream_range(stream, after, up_to)
    }

    fn replay_events<'a>(
        &'a self,
        stream: &'a StreamId,
        after: u64,
        up_to: Option<u64>,
    ) -> BoxFuture<'a, Result<ReplayEvents, StoreError>> {
        self.0.replay_events(stream, after, up_to)
    }

    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
        at_most: Option<u64>,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        self.0.load_snapshot(stream, at_most)
    }

    fn events(&self, from: u64, limit: usize) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        self.0.events(from, limit)
    }

    fn log_after<'a>(
        &'a self,
        after: u64,
        limit: usize,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Logged>, StoreError>> {
        self.0.log_after(after, limit, types)
    }

    fn log_count<'a>(&'a self, after: u64, types: &'a [String]) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.0.log_count(after, types)
    }
}

impl Outbox for Forgetful {
    fn claim_undelivered(&self, limit: usize, lease: Duration) -> BoxFuture<'_, Result<Vec<Envelope>, StoreError>> {
        self.0.claim_undelivered(limit, lease)
    }

    fn renew_claims(&self, event_ids: Vec<Uuid>, lease: Duration) -> BoxFuture<'_, Result<(), StoreError>> {
        self.0.renew_claims(event_ids, lease)
    }

    fn release_claims(&self, event_ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.0.release_claims(event_ids)
    }

    fn mark_delivered(&self, _: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn outbox_status(&self) -> BoxFuture<'_, Result<OutboxStatus, StoreError>> {
        self.0.outbox_status()
    }

    fn outbox_signal(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        self.0.outbox_signal()
    }
}

impl Deliveries for Forgetful {
    fn is_handled<'a>(&'a self, handler: &'a str, message_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.0.is_handled(handler, message_id)
    }

    fn handled_outcome<'a>(
        &'a self,
        handler: &'a str,
        message_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<Option<String>>, StoreError>> {
        self.0.handled_outcome(handler, message_id)
    }

    fn handler_state<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<HandlerState, StoreError>> {
        self.0.handler_state(handler, event)
    }

    fn record_failure(&self, update: FailureUpdate) -> BoxFuture<'_, Result<u32, StoreError>> {
        self.0.record_failure(update)
    }

    fn hold_behind_dead_letter<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
        reason: &'a str,
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.0.hold_behind_dead_letter(handler, event, reason, at)
    }

    fn failed_delivery<'a>(
        &'a self,
        handler: &'a str,
        event_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<FailedDelivery>, StoreError>> {
        self.0.failed_delivery(handler, event_id)
    }

    fn failed_deliveries(&self, query: FailureQuery) -> BoxFuture<'_, Result<Vec<FailedDelivery>, StoreError>> {
        self.0.failed_deliveries(query)
    }

    fn remove_failure<'a>(&'a self, handler: &'a str, event_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.0.remove_failure(handler, event_id)
    }
}

impl Projections for Forgetful {
    fn register_projection(&self, spec: ProjectionSpec) -> BoxFuture<'_, Result<ProjectionState, StoreError>> {
        self.0.register_projection(spec)
    }

    fn projection_state<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<ProjectionState>, StoreError>> {
        self.0.projection_state(name)
    }

    fn projection_row<'a>(
        &'a self,
        name: &'a str,
        generation: Option<u64>,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Row>, StoreError>> {
        self.0.projection_row(name, generation, key)
    }

    fn query_projection(&self, query: RowQuery) -> BoxFuture<'_, Result<Vec<Row>, StoreError>> {
        self.0.query_projection(query)
    }

    fn begin_build<'a>(
        &'a self,
        name: &'a str,
        version: u32,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<BuildState>, StoreError>> {
        self.0.begin_build(name, version, lease)
    }

    fn write_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        rows: Vec<(String, Option<std::sync::Arc<str>>)>,
        position: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.0.write_build(name, generation, rows, position)
    }

    fn finish_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        position: u64,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.0.finish_build(name, generation, position, types)
    }

    fn read_model<'a>(&'a self, name: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        self.0.read_model(name, key)
    }

    fn put_read_model<'a>(
        &'a self,
        name: &'a str,
        key: &'a str,
        json: String,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.0.put_read_model(name, key, json)
    }
}

impl Schedule for Forgetful {
    fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Scheduled>, StoreError>> {
        self.0.claim_due(now, limit, lease)
    }

    fn complete_scheduled(&self, id: Uuid) -> BoxFuture<'_, Result<(), StoreError>> {
        self.0.complete_scheduled(id)
    }

    fn release_scheduled(&self, ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.0.release_scheduled(ids)
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<OffsetDateTime>, StoreError>> {
        self.0.next_due()
    }

    fn scheduled_of<'a>(
        &'a self,
        owner: &'a str,
        owner_key: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Scheduled>, StoreError>> {
        self.0.scheduled_of(owner, owner_key)
    }
}

async fn events_committed_but_not_delivered_are_delivered_once(store: Arc<dyn Store>) {
    // A process committed a change and its event, then stopped before delivering it.
    let id = Identifier::<Counter>::generate();
    let s = StreamId::new("Counter", id.to_string());
    let commit = Commit {
        stream: s.clone(),
        expected_version: 0,
        advance: 1,
        state: state(&format!(r#"{{"id":"{id}","count":1}}"#)),
        events: vec![bumped(&id, 1, &s)],
        snapshot: None,
    };
    store.commit(batch(vec![commit])).await.unwrap();

    // The next process delivers it, but is killed before marking it delivered ...
    let forgetful = domain_on(Arc::new(Forgetful(store.clone())));
    let Delivered { events: delivered, failures } = forgetful.deliver_pending().await.unwrap();
    assert!(failures.is_empty());
    assert_eq!(delivered.len(), 1);
    // ... so the one after gets it again: the handler skips it, its effect stays single.
    let domain = domain_on(store.clone());
    let Delivered { events: delivered, failures } = domain.deliver_pending().await.unwrap();
    assert!(failures.is_empty());
    assert_eq!(delivered.len(), 1, "at least once");
    assert_eq!(domain.get(&id.cast::<Tally>()).await.unwrap().unwrap().seen, 1, "handled once");
    // And now it is delivered for good.
    assert!(domain.deliver_pending().await.unwrap().events.is_empty());
    // Events delivered in process are marked too: nothing is pending after `process`.
    domain.process(Bump { id: id.clone() }).await.unwrap().all_delivered().unwrap();
    assert!(domain.deliver_pending().await.unwrap().events.is_empty());
    assert_eq!(domain.get(&id.cast::<Tally>()).await.unwrap().unwrap().seen, 2);
}

cases!(
    the_outbox_hands_out_each_stream_in_order,
    claims_are_renewed_and_released,
    the_oldest_undelivered_is_the_earliest_recorded_whatever_the_log_order,
    a_failed_event_holds_back_the_rest_of_its_stream,
    events_committed_but_not_delivered_are_delivered_once,
);
