//! Conformance cases for the `Outbox` port: each stream handed out in order, claims
//! leased, renewed and released, the outbox's status, a failed event holding back the
//! rest of its stream, and events committed but not marked delivered delivered again
//! (once in effect) by the next process.

use std::sync::Arc;
use std::time::Duration;

use protean::prelude::*;
use protean::runtime::WorkerConfig;
use protean::store::{
    Batch, BoxFuture, Commit, Committed, Envelope, OffsetDateTime, Store, StoreError, StreamId, WorkerBeat,
};
use protean::store::{Deliveries, Outbox, Projections, Records, Schedule};
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
    fn commit(&self, batch: Batch) -> BoxFuture<'_, Result<Vec<Committed>, StoreError>> {
        self.0.commit(Batch { delivered: vec![], ..batch })
    }

    protean::forward_ports!(
        self.0: migrate, close, load, commit_group, stream, stream_range, replay_events, load_snapshot, events,
        log_after, log_count
    );
}

impl Outbox for Forgetful {
    fn mark_delivered(&self, _: Vec<Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    protean::forward_ports!(self.0: claim_undelivered, renew_claims, release_claims, outbox_status, outbox_signal,
        beat_worker, worker_beats);
}

impl Deliveries for Forgetful {
    protean::forward_ports!(self.0: Deliveries);
}

impl Projections for Forgetful {
    protean::forward_ports!(self.0: Projections);
}

impl Schedule for Forgetful {
    protean::forward_ports!(self.0: Schedule);
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

/// A beat of worker set `id` seen at `seen`, beating every second.
fn beat(id: Uuid, seen: OffsetDateTime, stopped: bool) -> WorkerBeat {
    WorkerBeat {
        id,
        host: "box-1".into(),
        pid: 4242,
        started_at: seen - Duration::from_secs(60),
        seen_at: seen,
        every_ms: 1_000,
        stopped,
    }
}

async fn worker_sets_beat_and_the_status_lists_those_alive(store: Arc<dyn Store>) {
    assert!(store.worker_beats().await.unwrap().is_empty());
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let two_days = Duration::from_secs(2 * 24 * 3600);
    store.beat_worker(beat(b, now - two_days, false)).await.unwrap();
    store.beat_worker(beat(c, now - Duration::from_secs(3600), false)).await.unwrap();
    store.beat_worker(beat(a, now - Duration::from_secs(1), false)).await.unwrap();
    // A beat replaces the set's last one; one not renewed for a day is forgotten.
    store.beat_worker(beat(a, now, false)).await.unwrap();
    assert_eq!(
        store.worker_beats().await.unwrap(),
        [beat(a, now, false), beat(c, now - Duration::from_secs(3600), false)]
    );
    store.beat_worker(beat(a, now, true)).await.unwrap();
    assert_eq!(store.worker_beats().await.unwrap()[0], beat(a, now, true));
    // Alive: not stopped, and beat less than three beats ago.
    assert!(beat(a, now, false).alive_at(now + Duration::from_millis(2_900)));
    assert!(!beat(a, now, false).alive_at(now + Duration::from_secs(3)));
    assert!(!beat(a, now, true).alive_at(now));

    // Running workers are seen alive; once stopped, they are not.
    let domain = domain_on(Arc::clone(&store));
    let status = domain.delivery_status().await.unwrap();
    assert!(status.workers.is_empty(), "{:?}", status.workers);
    let workers = domain.workers(WorkerConfig::default().lease(Duration::from_secs(3))).start().unwrap();
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = domain.delivery_status().await.unwrap().workers;
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((seen[0].pid, seen[0].every_ms, seen[0].stopped), (std::process::id(), 1_000, false));
    workers.shutdown().await;
    assert!(domain.delivery_status().await.unwrap().workers.is_empty(), "stopped workers are not alive");
    let last = store.worker_beats().await.unwrap();
    assert!(last.iter().any(|beat| beat.id == seen[0].id && beat.stopped), "{last:?}");
}

cases!(
    worker_sets_beat_and_the_status_lists_those_alive,
    the_outbox_hands_out_each_stream_in_order,
    claims_are_renewed_and_released,
    the_oldest_undelivered_is_the_earliest_recorded_whatever_the_log_order,
    a_failed_event_holds_back_the_rest_of_its_stream,
    events_committed_but_not_delivered_are_delivered_once,
);
