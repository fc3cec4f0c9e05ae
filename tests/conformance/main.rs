//! The store conformance suite: the same tests on every store the build has. Memory
//! always runs; SQLite with the `sqlite` feature; PostgreSQL with the `postgres` feature
//! when `PROTEAN_POSTGRES_URL` is set (reported ignored, with the reason, when it is
//! not), and is required (not skipped) when `PROTEAN_REQUIRE_POSTGRES=1`, as in CI.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use protean::prelude::*;
#[cfg(feature = "postgres")]
use protean::store::PostgresStore;
#[cfg(feature = "sqlite")]
use protean::store::SqliteStore;
use protean::store::{Batch, BoxFuture, Commit, Committed, Handled, MemoryStore, Record, Store, StoreError};
use protean::store::{
    BuildState, Logged, ProjectionSpec, ProjectionState, ReplayEvents, Row, RowQuery, Scheduled, Snapshot,
};
use protean::store::{Cause, Envelope, StreamId};
use protean::store::{Deliveries, Outbox, Projections, Records, Schedule};
use protean::store::{
    FailedDelivery, FailureCounts, FailureQuery, FailureStatus, FailureUpdate, HandlerState, OffsetDateTime,
    OutboxStatus,
};
use uuid::Uuid;

#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "support/lab.rs"]
#[allow(dead_code)]
mod lab;

use harness::Trial;

use lab::*;

fn domain_on(store: Arc<dyn Store>) -> Domain {
    Domain::builder()
        .module(module_path!().to_string() + "::lab")
        .shared_store(store)
        .delivery_lease(Duration::ZERO)
        .conflict_retries(1_000)
        .build()
        .expect("the lab model is valid")
}

fn stream(aggregate: &'static str, id: &str) -> StreamId {
    StreamId::new(aggregate, id.to_owned())
}

fn state(json: &str) -> Option<Arc<str>> {
    Some(Arc::from(json))
}

fn batch(commits: Vec<Commit>) -> Batch {
    Batch { commits, handled: None, delivered: vec![], ..Batch::default() }
}

fn bumped(id: &Identifier<Counter>, count: u32, stream_id: &StreamId) -> Envelope {
    let event = Bumped { id: id.clone(), count };
    Envelope::new(event.into(), stream_id.clone(), Cause::command(Uuid::now_v7())).unwrap()
}

async fn versions_increase_and_a_stale_write_is_refused(store: Arc<dyn Store>) {
    let s = stream("Counter", "c-1");
    let first = Commit {
        stream: s.clone(),
        expected_version: 0,
        advance: 1,
        state: state(r#"{"id":"c-1","count":1}"#),
        events: vec![],
        snapshot: None,
    };
    assert_eq!(store.commit(batch(vec![first.clone()])).await.unwrap()[0].version, 1);
    let Err(StoreError::Conflict(conflict)) = store.commit(batch(vec![first])).await else { panic!("a conflict") };
    assert_eq!((conflict.expected, conflict.actual), (0, 1));
    let second = Commit {
        stream: s.clone(),
        expected_version: 1,
        advance: 1,
        state: state(r#"{"id":"c-1","count":2}"#),
        events: vec![],
        snapshot: None,
    };
    assert_eq!(store.commit(batch(vec![second])).await.unwrap()[0].version, 2);
    let record = store.load(&s).await.unwrap().unwrap();
    assert_eq!((record.version, &*record.state), (2, r#"{"id":"c-1","count":2}"#));
    assert!(store.load(&stream("Counter", "nobody")).await.unwrap().is_none());
}

async fn a_commit_moves_the_version_by_its_advance(store: Arc<dyn Store>) {
    // An event-sourced head: its version counts events, so a commit of three moves it by three.
    let s = stream("Counter", "advanced");
    let id = Identifier::<Counter>::parse("advanced").unwrap();
    let commit = |expected_version, advance, counts: &[u32]| Commit {
        stream: s.clone(),
        expected_version,
        advance,
        state: state("null"),
        events: counts.iter().map(|&n| bumped(&id, n, &s)).collect(),
        snapshot: None,
    };
    let committed = store.commit(batch(vec![commit(0, 3, &[1, 2, 3])])).await.unwrap();
    assert_eq!(committed[0].version, 3);
    assert_eq!(committed[0].events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(store.load(&s).await.unwrap().unwrap().version, 3);
    // The optimistic check now expects 3: a writer that counted commits (1) is refused.
    let Err(StoreError::Conflict(conflict)) = store.commit(batch(vec![commit(1, 1, &[4])])).await else {
        panic!("a conflict")
    };
    assert_eq!((conflict.expected, conflict.actual), (1, 3));
    let committed = store.commit(batch(vec![commit(3, 2, &[4, 5])])).await.unwrap();
    assert_eq!(committed[0].version, 5);
    assert_eq!(store.load(&s).await.unwrap().unwrap().version, 5);
    assert_eq!(store.stream(&s).await.unwrap().len(), 5, "the refused commit wrote no event");

    // Removal and re-adding follow the same rule: versions keep rising by each advance.
    let r = stream("Counter", "advanced-and-removed");
    let write = |expected_version, advance, json: Option<Arc<str>>| Commit {
        stream: r.clone(),
        expected_version,
        advance,
        state: json,
        events: vec![],
        snapshot: None,
    };
    assert_eq!(store.commit(batch(vec![write(0, 3, state("{}"))])).await.unwrap()[0].version, 3);
    assert_eq!(store.commit(batch(vec![write(3, 1, None)])).await.unwrap()[0].version, 4);
    assert!(store.load(&r).await.unwrap().is_none());
    assert_eq!(store.commit(batch(vec![write(0, 2, state("{}"))])).await.unwrap()[0].version, 6);
    assert_eq!(store.load(&r).await.unwrap().unwrap().version, 6);
}

async fn a_batch_is_all_or_nothing(store: Arc<dyn Store>) {
    let (a, b) = (stream("Counter", "a"), stream("Counter", "b"));
    store
        .commit(batch(vec![Commit {
            stream: b.clone(),
            expected_version: 0,
            advance: 1,
            state: state("{}"),
            events: vec![],
            snapshot: None,
        }]))
        .await
        .unwrap();
    let id = Identifier::<Counter>::parse("a").unwrap();
    let ok = Commit {
        stream: a.clone(),
        expected_version: 0,
        advance: 1,
        state: state("{}"),
        events: vec![bumped(&id, 1, &a)],
        snapshot: None,
    };
    let stale = Commit {
        stream: b.clone(),
        expected_version: 0,
        advance: 1,
        state: state("{}"),
        events: vec![],
        snapshot: None,
    };
    assert!(matches!(store.commit(batch(vec![ok, stale])).await, Err(StoreError::Conflict(_))));
    assert!(store.load(&a).await.unwrap().is_none(), "the first write of the batch was not kept");
    assert!(store.stream(&a).await.unwrap().is_empty(), "nor its event");
}

async fn every_field_type_round_trips(store: Arc<dyn Store>) {
    let domain = domain_on(store);
    let everything = Everything::builder()
        .text("plain")
        .unicode("ünïcødé ✓ \"quoted\" \\ back\nslash")
        .small(-8i8)
        .big(i64::MIN)
        .huge(u64::MAX)
        .ratio(0.1 + 0.2)
        .flag(true)
        .letter('λ')
        .uuid(Uuid::now_v7())
        .at(SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789))
        .maybe(Some("here".to_string()))
        .nothing(None)
        .list(vec![0u16, 1, u16::MAX])
        .other(Identifier::<Counter>::parse("counter-7").unwrap())
        .price(Money::new(-1, "EUR").unwrap())
        .prices(vec![Money::new(1, "USD").unwrap(), Money::new(2, "JPY").unwrap()])
        .mood(Mood::Busy)
        .parts([Part::builder().label("left").weight(1.5).build().unwrap()].into_iter().collect::<HasMany<Part>>())
        .build()
        .unwrap();
    let mut unit = domain.unit_of_work::<Everything>();
    unit.add(everything.clone()).unwrap();
    unit.commit().await.unwrap().all_delivered().unwrap();
    let back = domain.get(&everything.id).await.unwrap().unwrap();
    assert_eq!(back, everything);
    assert_eq!(back.version(), 1);
}

async fn events_keep_their_envelope_and_order(store: Arc<dyn Store>) {
    let domain = domain_on(store.clone());
    let id = Identifier::<Counter>::generate();
    let command_id = Uuid::now_v7();
    let first = domain.process_with(Bump { id: id.clone() }, command_id, None).await.unwrap();
    domain.process(Bump { id: id.clone() }).await.unwrap().all_delivered().unwrap();
    let stored = domain.events_of(&id).await.unwrap();
    assert_eq!(stored.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(stored[0], first.committed[0].events[0].stored(), "every field reads back as written");
    assert_eq!(stored[0].correlation_id, command_id);
    assert_eq!(stored[1].event::<Bumped>().unwrap().count, 2);
    let all = store.events(0, 100).await.unwrap();
    let positions: Vec<_> = all.iter().filter(|e| e.stream == stored[0].stream).map(|e| e.sequence).collect();
    assert_eq!(positions, [1, 2], "the global log keeps commit order");
    // Removal keeps the stream's sequence going when the identity comes back.
    let mut unit = domain.unit_of_work::<Counter>();
    unit.remove(&id).await.unwrap();
    unit.commit().await.unwrap().all_delivered().unwrap();
    assert!(domain.get(&id).await.unwrap().is_none());
    domain.process(Bump { id: id.clone() }).await.unwrap().all_delivered().unwrap();
    assert_eq!(domain.get(&id).await.unwrap().unwrap().count, 1, "a new aggregate");
    assert_eq!(domain.events_of(&id).await.unwrap().last().unwrap().sequence, 3);
}

async fn a_handled_message_is_recorded_once(store: Arc<dyn Store>) {
    let s = stream("Tally", "t-1");
    let handled = Handled::event("Tallying::count", Uuid::now_v7());
    let write = |version| Commit {
        stream: s.clone(),
        expected_version: version,
        advance: 1,
        state: state("{}"),
        events: vec![],
        snapshot: None,
    };
    store
        .commit(Batch {
            commits: vec![write(0)],
            handled: Some(handled.clone()),
            delivered: vec![],
            ..Batch::default()
        })
        .await
        .unwrap();
    assert!(store.is_handled("Tallying::count", handled.message_id).await.unwrap());
    assert!(!store.is_handled("Other::handler", handled.message_id).await.unwrap());
    let again = store
        .commit(Batch {
            commits: vec![write(1)],
            handled: Some(handled.clone()),
            delivered: vec![],
            ..Batch::default()
        })
        .await;
    assert!(matches!(again, Err(StoreError::AlreadyHandled { .. })), "{again:?}");
    assert_eq!(store.load(&s).await.unwrap().unwrap().version, 1, "the second batch wrote nothing");
}

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

async fn corrupt_stored_data_gives_typed_errors(store: Arc<dyn Store>) {
    let domain = domain_on(store.clone());
    // A record that no longer parses as its aggregate.
    let s = stream("Counter", "broken");
    let bad = Commit {
        stream: s.clone(),
        expected_version: 0,
        advance: 1,
        state: state(r#"{"id":"broken","count":"many"}"#),
        events: vec![],
        snapshot: None,
    };
    store.commit(batch(vec![bad])).await.unwrap();
    let error = domain.get(&Identifier::<Counter>::parse("broken").unwrap()).await.unwrap_err();
    assert!(
        matches!(&error, ProcessError::Store(StoreError::Corrupt { stream, position: 1, .. }) if *stream == s),
        "{error}"
    );

    // An event whose payload no longer parses: its handler fails with a typed error
    // naming the stream and position, and the event stays undelivered.
    let id = Identifier::<Counter>::parse("odd").unwrap();
    let odd = stream("Counter", "odd");
    let mut event = bumped(&id, 1, &odd);
    event.payload = Arc::from(r#"{"id":"odd","count":-1}"#);
    store
        .commit(batch(vec![Commit {
            stream: odd.clone(),
            expected_version: 0,
            advance: 1,
            state: state("{}"),
            events: vec![event],
            snapshot: None,
        }]))
        .await
        .unwrap();
    let Delivered { events: _, failures } = domain.deliver_pending().await.unwrap();
    let [failure] = failures.as_slice() else { panic!("one failure: {failures:?}") };
    let ProcessError::Store(StoreError::Corrupt { stream, position, reason }) = &failure.error else {
        panic!("{}", failure.error)
    };
    assert_eq!((stream, *position), (&odd, 1));
    assert!(reason.contains("Counter.Bumped"), "{reason}");
    let stored = store.stream(&odd).await.unwrap();
    assert!(stored[0].event::<Bumped>().is_err());
    // An event read as another type is refused too.
    let Err(StoreError::Corrupt { .. }) = stored[0].event::<lab_other::Other>() else { panic!("a typed error") };
}

/// An event type the lab's events are not.
mod lab_other {
    use protean::prelude::*;

    #[aggregate]
    pub struct Elsewhere {
        pub n: u8,
    }

    #[event(part_of = Elsewhere)]
    pub struct Other {
        pub n: u8,
    }
}

async fn older_event_versions_are_upcast_and_unreadable_ones_are_typed_errors(store: Arc<dyn Store>) {
    let s = stream("Counter", "renamed");
    let stored = |sequence: u64, type_name: &'static str, version: u32, payload: &str| {
        let cause = Cause::command(Uuid::now_v7());
        Envelope::stored_event(
            Uuid::now_v7(),
            type_name.into(),
            version,
            s.clone(),
            sequence,
            protean::store::OffsetDateTime::now_utc(),
            cause.correlation_id,
            cause.causation_id,
            Arc::from(payload),
        )
    };
    let events = vec![
        stored(0, "Counter.Renamed", 1, r#"{"name":"Ada Lovelace"}"#),
        stored(0, "Counter.Renamed", 2, r#"{"first":"Grace","last":"Hopper"}"#),
        stored(0, "Counter.Renamed", 3, r#"{"given":"Alan"}"#),
        stored(0, "Counter.Renamed", 1, r#"{"nom":"Turing"}"#),
        stored(0, "Counter.Vanished", 1, r#"{}"#),
    ];
    let commit =
        Commit { stream: s.clone(), expected_version: 0, advance: 1, state: state("{}"), events, snapshot: None };
    store.commit(batch(vec![commit])).await.unwrap();
    let read = store.stream(&s).await.unwrap();
    let ada = read[0].event::<Renamed>().unwrap();
    assert_eq!((ada.first.as_str(), ada.last.as_str()), ("Ada", "Lovelace"), "version 1 upcast to 2");
    assert_eq!(read[1].event::<Renamed>().unwrap().first, "Grace", "version 2 as it is");
    for (index, expected) in
        [(2, "newer code"), (3, "cannot be upcast: version 1 has no `name`"), (4, "not a `Counter.Renamed`")]
    {
        let Err(StoreError::Corrupt { stream, position, reason }) = read[index].event::<Renamed>() else {
            panic!("event {index} must be a typed error")
        };
        assert_eq!((&stream, position), (&s, index as u64 + 1), "the error names the stream and position");
        assert!(reason.contains(expected), "{reason}");
    }
}

async fn event_sourced_aggregates_replay_with_snapshots_and_as_of(store: Arc<dyn Store>) {
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::lab")
        .shared_store(store.clone())
        .snapshot_every(3)
        .build()
        .unwrap();
    let id = Identifier::<Account>::generate();
    for amount in [10, 20, 30] {
        domain.process(Deposit { account: id.clone(), amount }).await.unwrap().all_delivered().unwrap();
    }
    // Seven events: opened + three deposits in three commits... (opened, 10), (20), (30).
    let account = domain.get(&id).await.unwrap().unwrap();
    assert_eq!((account.owner.as_str(), account.balance, account.deposits), ("Ada", 60, 3));
    let stream = StreamId::new("Account", id.to_string());
    let events = store.stream(&stream).await.unwrap();
    assert_eq!(events.len(), 4);
    // The record holds no state: the events are the state.
    assert_eq!(&*store.load(&stream).await.unwrap().unwrap().state, "null");
    // A snapshot was taken when the stream passed 3 events (after the commit at 3).
    let snapshot = store.load_snapshot(&stream, None).await.unwrap().map(|s| s.sequence);
    assert_eq!(snapshot, Some(3));
    for amount in [1, 2, 3] {
        domain.process(Deposit { account: id.clone(), amount }).await.unwrap().all_delivered().unwrap();
    }
    assert_eq!(store.load_snapshot(&stream, None).await.unwrap().map(|s| s.sequence), Some(6));
    assert_eq!(store.load_snapshot(&stream, Some(5)).await.unwrap().map(|s| s.sequence), Some(3));
    // Loading replays the snapshot plus the events after it, and gives the same state.
    let account = domain.get(&id).await.unwrap().unwrap();
    // Its version counts events (seven: opened and six deposits), not commits.
    assert_eq!((account.balance, account.deposits, account.version()), (66, 6, 7));
    // As of a past version: the state after the event with that sequence.
    let then = domain.get_as_of(&id, 2).await.unwrap().unwrap();
    assert_eq!((then.balance, then.deposits), (10, 1));
    let then = domain.get_as_of(&id, 5).await.unwrap().unwrap();
    assert_eq!((then.balance, then.deposits), (61, 4));
    // A stale writer of an event-sourced aggregate is refused like any other.
    let mut stale = domain.unit_of_work::<Account>();
    stale.load(&id).await.unwrap().raise(Deposited { amount: 100 });
    domain.process(Deposit { account: id.clone(), amount: 1 }).await.unwrap().all_delivered().unwrap();
    assert!(matches!(stale.commit().await, Err(ProcessError::Conflict(_))));
    assert_eq!(domain.get(&id).await.unwrap().unwrap().balance, 67);
    // Its history is not removed.
    let mut unit = domain.unit_of_work::<Account>();
    let refused = unit.remove(&id).await.unwrap_err();
    assert!(refused.to_string().contains("event-sourced"), "{refused}");
}

async fn removal_neither_lets_a_stale_writer_through_nor_blocks_a_replacement(store: Arc<dyn Store>) {
    let domain = domain_on(store.clone());
    let id = Identifier::<Counter>::generate();
    domain.process(Bump { id: id.clone() }).await.unwrap().all_delivered().unwrap();
    // A writer that loaded the first incarnation ...
    let mut stale = domain.unit_of_work::<Counter>();
    stale.load(&id).await.unwrap().count = 100;
    // ... while it is removed and added again.
    let mut unit = domain.unit_of_work::<Counter>();
    unit.remove(&id).await.unwrap();
    unit.commit().await.unwrap().all_delivered().unwrap();
    let mut unit = domain.unit_of_work::<Counter>();
    unit.add(Counter::builder().id(id.clone()).count(0u32).build().unwrap()).unwrap();
    unit.commit().await.unwrap().all_delivered().unwrap();
    assert!(matches!(stale.commit().await, Err(ProcessError::Conflict(_))), "the stale writer is refused");
    assert_eq!(domain.get(&id).await.unwrap().unwrap().count, 0);
    // Removed and added again within one unit: one write, at the stored version.
    let mut unit = domain.unit_of_work::<Counter>();
    unit.remove(&id).await.unwrap();
    unit.add(Counter::builder().id(id.clone()).count(7u32).build().unwrap()).unwrap();
    unit.commit().await.unwrap().all_delivered().unwrap();
    assert_eq!(domain.get(&id).await.unwrap().unwrap().count, 7);
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

async fn a_snapshot_that_no_longer_parses_is_replayed_around(store: Arc<dyn Store>) {
    let domain = domain_on(store.clone());
    let id = Identifier::<Account>::generate();
    domain.process(Deposit { account: id.clone(), amount: 5 }).await.unwrap().all_delivered().unwrap();
    // A later unit writes a snapshot the current code cannot read (an older shape).
    let s = StreamId::new("Account", id.to_string());
    let event = Envelope::new(Deposited { amount: 7 }.into(), s.clone(), Cause::command(Uuid::now_v7())).unwrap();
    let commit = Commit {
        stream: s.clone(),
        expected_version: 2, // opened and deposited: two events
        advance: 1,
        state: state("null"),
        events: vec![event],
        snapshot: Some(Arc::from(r#"{"old_shape":true}"#)),
    };
    store.commit(batch(vec![commit])).await.unwrap();
    let account = domain.get(&id).await.unwrap().unwrap();
    assert_eq!((account.balance, account.deposits), (12, 2), "replayed from the events");
}

/// `replay_events` reads each event's sequence, type name, version and payload as the
/// stream holds them, in order, within the range asked for; an event-sourced load that
/// meets a payload it cannot parse, or an event it has no apply method for, is a typed
/// error naming the stream and position.
async fn replay_reads_the_stream_as_stored(store: Arc<dyn Store>) {
    let s = stream("Counter", "replayed");
    let stored = |type_name: &'static str, version: u32, payload: &str| {
        let cause = Cause::command(Uuid::now_v7());
        Envelope::stored_event(
            Uuid::now_v7(),
            type_name.into(),
            version,
            s.clone(),
            0,
            protean::store::OffsetDateTime::now_utc(),
            cause.correlation_id,
            cause.causation_id,
            Arc::from(payload),
        )
    };
    let first = vec![
        stored("Counter.Renamed", 1, r#"{"name":"Ada Lovelace"}"#),
        stored("Counter.Bumped", 1, r#"{"id":"replayed","count":1}"#),
        stored("Counter.Renamed", 2, r#"{"first":"Grace","last":"Hopper ✓"}"#),
    ];
    let second =
        vec![stored("Counter.Bumped", 1, r#"{"id":"replayed","count":2}"#), stored("Counter.Vanished", 1, "{}")];
    let commit = |expected_version, events| Commit {
        stream: s.clone(),
        expected_version,
        advance: 1,
        state: state("{}"),
        events,
        snapshot: None,
    };
    store.commit(batch(vec![commit(0, first)])).await.unwrap();
    // Another stream's events are not replayed with this one.
    let other = stream("Counter", "replayed-too");
    let mut elsewhere = stored("Counter.Bumped", 1, r#"{"id":"replayed-too","count":9}"#);
    elsewhere.stream = other.clone();
    store.commit(batch(vec![Commit { stream: other.clone(), ..commit(0, vec![elsewhere]) }])).await.unwrap();
    store.commit(batch(vec![commit(1, second)])).await.unwrap();

    let envelopes = store.stream(&s).await.unwrap();
    let expected: Vec<(u64, String, u32, String)> =
        envelopes.iter().map(|e| (e.sequence, e.type_name.to_string(), e.version, e.payload.to_string())).collect();
    assert_eq!(expected.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    let read = |after: u64, up_to: Option<u64>| {
        let store = store.clone();
        let s = s.clone();
        async move {
            let events = store.replay_events(&s, after, up_to).await.unwrap();
            assert_eq!(events.len(), events.iter().count());
            assert_eq!(events.last_sequence(), events.iter().last().map(|e| e.sequence));
            events
                .iter()
                .map(|e| (e.sequence, e.type_name.to_owned(), e.version, e.payload.to_owned()))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(read(0, None).await, expected, "the whole stream, as stored");
    assert_eq!(read(2, None).await, expected[2..], "after a sequence");
    assert_eq!(read(1, Some(3)).await, expected[1..3], "up to a sequence");
    assert_eq!(read(0, Some(0)).await, [], "up to before the first");
    assert_eq!(read(5, None).await, [], "after the last");
    let none = store.replay_events(&stream("Counter", "never"), 0, None).await.unwrap();
    assert!(none.is_empty(), "a stream that does not exist has no events");
    let theirs = store.replay_events(&other, 0, None).await.unwrap();
    assert_eq!(
        theirs.iter().map(|e| (e.sequence, e.payload)).collect::<Vec<_>>(),
        [(1, r#"{"id":"replayed-too","count":9}"#)]
    );
    // Read back, the events parse as what they are, upcast where older.
    let events = store.replay_events(&s, 0, None).await.unwrap();
    let renamed: Vec<Renamed> =
        events.iter().filter(|e| e.type_name == "Counter.Renamed").map(|e| e.event(&s).unwrap()).collect();
    assert_eq!(
        renamed.iter().map(|r| (r.first.as_str(), r.last.as_str())).collect::<Vec<_>>(),
        [("Ada", "Lovelace"), ("Grace", "Hopper ✓")]
    );
    let Err(StoreError::Corrupt { stream: at, position: 2, reason }) =
        events.iter().nth(1).unwrap().event::<Renamed>(&s)
    else {
        panic!("a `Counter.Bumped` read as a `Counter.Renamed` is a typed error")
    };
    assert_eq!(at, s);
    assert!(reason.contains("not a `Counter.Renamed`"), "{reason}");

    // An event-sourced account whose third event no longer parses, then one whose fourth
    // it has no apply method for: loading it is a typed error at that position.
    let domain = domain_on(store.clone());
    let id = Identifier::<Account>::generate();
    domain.process(Deposit { account: id.clone(), amount: 5 }).await.unwrap().all_delivered().unwrap();
    let account = StreamId::new("Account", id.to_string());
    let mut bad =
        Envelope::new(Deposited { amount: 7 }.into(), account.clone(), Cause::command(Uuid::now_v7())).unwrap();
    bad.payload = Arc::from(r#"{"amount":"lots"}"#);
    let append = |expected_version, event| Commit {
        stream: account.clone(),
        expected_version,
        advance: 1,
        state: state("null"),
        events: vec![event],
        snapshot: None,
    };
    store.commit(batch(vec![append(2, bad)])).await.unwrap();
    let error = domain.get(&id).await.unwrap_err();
    let ProcessError::Store(StoreError::Corrupt { stream: at, position: 3, reason }) = &error else {
        panic!("{error}")
    };
    assert_eq!(at, &account);
    assert!(reason.contains("Account.Deposited"), "{reason}");
    assert_eq!(domain.get_as_of(&id, 2).await.unwrap().unwrap().balance, 5, "the events before it still replay");
    let id = Identifier::<Account>::generate();
    domain.process(Deposit { account: id.clone(), amount: 5 }).await.unwrap().all_delivered().unwrap();
    let account = StreamId::new("Account", id.to_string());
    let foreign = bumped(&Identifier::<Counter>::parse("x").unwrap(), 1, &account);
    store.commit(batch(vec![Commit { stream: account.clone(), ..append(2, foreign) }])).await.unwrap();
    let error = domain.get(&id).await.unwrap_err();
    let ProcessError::Store(StoreError::Corrupt { stream: at, position: 3, reason }) = &error else {
        panic!("{error}")
    };
    assert_eq!(at, &account);
    assert!(reason.contains("no apply method for `Counter.Bumped`"), "{reason}");
}

async fn read_models_are_kept(store: Arc<dyn Store>) {
    assert!(store.read_model("Price", "pen").await.unwrap().is_none());
    store.put_read_model("Price", "pen", r#"{"cents":40}"#.into()).await.unwrap();
    store.put_read_model("Price", "pen", r#"{"cents":45}"#.into()).await.unwrap();
    assert_eq!(store.read_model("Price", "pen").await.unwrap().as_deref(), Some(r#"{"cents":45}"#));
}

async fn many_tasks_on_one_aggregate_lose_no_update(store: Arc<dyn Store>) {
    let domain = domain_on(store);
    let id = Identifier::<Counter>::generate();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (domain, id) = (domain.clone(), id.clone());
            tokio::spawn(async move {
                let mut succeeded = 0u32;
                for _ in 0..25 {
                    if domain.process(Bump { id: id.clone() }).await.is_ok() {
                        succeeded += 1;
                    }
                }
                succeeded
            })
        })
        .collect();
    let mut succeeded = 0;
    for task in tasks {
        succeeded += task.await.unwrap();
    }
    assert_eq!(domain.get(&id).await.unwrap().unwrap().count, succeeded);
    assert_eq!(domain.events_of(&id).await.unwrap().len(), succeeded as usize);
    assert_eq!(domain.get(&id.cast::<Tally>()).await.unwrap().unwrap().seen, succeeded);
}

async fn migrating_again_changes_nothing(store: Arc<dyn Store>) {
    let s = stream("Counter", "kept");
    store
        .commit(batch(vec![Commit {
            stream: s.clone(),
            expected_version: 0,
            advance: 1,
            state: state("{}"),
            events: vec![],
            snapshot: None,
        }]))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.load(&s).await.unwrap().unwrap().version, 1);
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

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + seconds).unwrap()
}

fn failure(handler: &'static str, event: &Envelope, status: FailureStatus, error: &str, when: i64) -> FailureUpdate {
    FailureUpdate { handler: handler.into(), event: event.clone(), status, error: error.into(), at: at(when) }
}

async fn failed_deliveries_are_kept_listed_and_removed(store: Arc<dyn Store>) {
    let (a, ida) = (stream("Counter", "a"), Identifier::parse("a").unwrap());
    let (b, idb) = (stream("Counter", "b"), Identifier::parse("b").unwrap());
    let write = |s: &StreamId, id: &Identifier<Counter>, counts: &[u32]| Commit {
        stream: s.clone(),
        expected_version: 0,
        advance: 1,
        state: state("{}"),
        events: counts.iter().map(|&n| bumped(id, n, s)).collect(),
        snapshot: None,
    };
    let committed = store.commit(batch(vec![write(&a, &ida, &[1, 2, 3]), write(&b, &idb, &[1])])).await.unwrap();
    let (a1, a2, a3) = (&committed[0].events[0], &committed[0].events[1], &committed[0].events[2]);
    let b1 = &committed[1].events[0];
    let status = store.outbox_status().await.unwrap();
    assert_eq!(status.undelivered, 4);
    assert_eq!(status.oldest_undelivered, Some(a1.recorded_at));
    assert!(status.failures.is_empty());

    use FailureStatus::{Dead, Held, Retrying};
    assert_eq!(store.record_failure(failure("H::m", a1, Retrying, "boom 1", 1)).await.unwrap(), 1);
    let state_of = |handler: &'static str, event: &Envelope| {
        let (store, event) = (store.clone(), event.clone());
        async move { store.handler_state(handler, &event).await.unwrap() }
    };
    // Retrying holds nothing back: the worker retrying it holds the stream's claim.
    assert_eq!(state_of("H::m", a1).await, HandlerState { handled: false, held: false, attempts: 1 });
    assert_eq!(state_of("H::m", a2).await, HandlerState::default());
    assert_eq!(store.record_failure(failure("H::m", a1, Retrying, "boom 2", 2)).await.unwrap(), 2);
    assert_eq!(store.record_failure(failure("H::m", a1, Dead, "boom 3", 3)).await.unwrap(), 3);
    assert_eq!(store.record_failure(failure("H::m", a2, Held, "behind a1", 4)).await.unwrap(), 0);
    assert_eq!(store.record_failure(failure("G::m", b1, Retrying, "oops", 5)).await.unwrap(), 1);

    // A dead letter holds the rest of its stream for its handler only.
    assert_eq!(state_of("H::m", a3).await, HandlerState { handled: false, held: true, attempts: 0 });
    assert_eq!(state_of("H::m", a1).await, HandlerState { handled: false, held: true, attempts: 3 });
    assert_eq!(state_of("H::m", b1).await, HandlerState::default(), "another stream");
    assert_eq!(state_of("G::m", a3).await, HandlerState::default(), "another handler");

    let all = store.failed_deliveries(FailureQuery::default()).await.unwrap();
    let listed: Vec<_> = all.iter().map(|f| (f.handler.as_str(), f.event.id, f.status, f.attempts)).collect();
    assert_eq!(listed, [("H::m", a1.id, Dead, 3), ("H::m", a2.id, Held, 0), ("G::m", b1.id, Retrying, 1)]);
    let dead = &all[0];
    assert_eq!((dead.first_error.as_str(), dead.last_error.as_str()), ("boom 1", "boom 3"));
    assert_eq!((dead.first_failed_at, dead.last_failed_at), (at(1), at(3)));
    assert_eq!(dead.event, a1.stored(), "the event reads back whole");

    let query = |handler: Option<&str>, s: Option<&StreamId>, status: Option<FailureStatus>, limit: usize| {
        FailureQuery { handler: handler.map(str::to_owned), stream: s.cloned(), status, limit }
    };
    let ids = |found: Vec<FailedDelivery>| found.into_iter().map(|f| f.event.id).collect::<Vec<_>>();
    assert_eq!(ids(store.failed_deliveries(query(Some("G::m"), None, None, 10)).await.unwrap()), [b1.id]);
    assert_eq!(ids(store.failed_deliveries(query(None, Some(&a), None, 10)).await.unwrap()), [a1.id, a2.id]);
    assert_eq!(ids(store.failed_deliveries(query(None, None, Some(Held), 10)).await.unwrap()), [a2.id]);
    assert_eq!(ids(store.failed_deliveries(query(None, None, None, 1)).await.unwrap()), [a1.id]);

    let status = store.outbox_status().await.unwrap();
    let counts = |handler: &str, retrying, dead, held| FailureCounts { handler: handler.into(), retrying, dead, held };
    assert_eq!(status.failures, [counts("G::m", 1, 0, 0), counts("H::m", 0, 1, 1)]);

    assert!(store.remove_failure("H::m", a1.id).await.unwrap());
    assert!(!store.remove_failure("H::m", a1.id).await.unwrap(), "already gone");
    assert_eq!(state_of("H::m", a1).await, HandlerState { handled: false, held: true, attempts: 0 }, "a2 still held");
    assert!(store.remove_failure("H::m", a2.id).await.unwrap());
    assert_eq!(state_of("H::m", a3).await, HandlerState::default());

    store.mark_delivered(vec![a1.id, a2.id]).await.unwrap();
    let status = store.outbox_status().await.unwrap();
    assert_eq!(status.undelivered, 2);
    assert_eq!(status.oldest_undelivered, Some(a3.recorded_at));
    store.mark_delivered(vec![a3.id, b1.id]).await.unwrap();
    let status = store.outbox_status().await.unwrap();
    assert_eq!((status.undelivered, status.oldest_undelivered), (0, None));
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

async fn a_command_outcome_is_kept_with_its_handled_record(store: Arc<dyn Store>) {
    let s = stream("Counter", "c-1");
    let command_id = Uuid::now_v7();
    let handled = Handled { handler: "Counter.Bump".into(), message_id: command_id, outcome: Some(Arc::from("7")) };
    let write = |version| Commit {
        stream: s.clone(),
        expected_version: version,
        advance: 1,
        state: state("{}"),
        events: vec![],
        snapshot: None,
    };
    assert_eq!(store.handled_outcome("Counter.Bump", command_id).await.unwrap(), None);
    store
        .commit(Batch {
            commits: vec![write(0)],
            handled: Some(handled.clone()),
            delivered: vec![],
            ..Batch::default()
        })
        .await
        .unwrap();
    assert_eq!(store.handled_outcome("Counter.Bump", command_id).await.unwrap(), Some(Some("7".to_owned())));
    assert!(store.is_handled("Counter.Bump", command_id).await.unwrap());
    let again = store
        .commit(Batch { commits: vec![write(1)], handled: Some(handled), delivered: vec![], ..Batch::default() })
        .await;
    assert!(matches!(again, Err(StoreError::AlreadyHandled { .. })), "{again:?}");
    assert_eq!(store.load(&s).await.unwrap().unwrap().version, 1, "the copy wrote nothing");
    // An event's handled record keeps no outcome.
    let event_id = Uuid::now_v7();
    let handled = Handled::event("Tallying::count", event_id);
    store
        .commit(Batch { commits: vec![], handled: Some(handled), delivered: vec![], ..Batch::default() })
        .await
        .unwrap();
    assert_eq!(store.handled_outcome("Tallying::count", event_id).await.unwrap(), Some(None));
}

/// A unit of a group: `count` written to `id`'s counter, expecting `expected`, with one
/// `Bumped`, and `handled` recorded with it.
fn group_unit(id: &str, expected: u64, count: u32, handled: Option<Handled>) -> Batch {
    let s = stream("Counter", id);
    let counter = Identifier::parse(id).unwrap();
    Batch {
        commits: vec![Commit {
            stream: s.clone(),
            expected_version: expected,
            advance: 1,
            state: state(&format!(r#"{{"id":"{id}","count":{count}}}"#)),
            events: vec![bumped(&counter, count, &s)],
            snapshot: None,
        }],
        handled,
        delivered: vec![],
        ..Batch::default()
    }
}

async fn a_group_commits_every_unit_but_the_one_that_conflicts(store: Arc<dyn Store>) {
    let (a, b, c, d) = (stream("Counter", "a"), stream("Counter", "b"), stream("Counter", "c"), stream("Counter", "d"));
    let seen = Handled::event("Counting::count", Uuid::now_v7());
    store.commit(Batch { handled: Some(seen.clone()), ..Batch::default() }).await.unwrap();
    let fresh = Handled::event("Counting::count", Uuid::now_v7());
    let outcomes = store
        .commit_group(vec![
            group_unit("a", 0, 1, None),
            // b is new: version 0, not 5.
            group_unit("b", 5, 1, Some(fresh.clone())),
            group_unit("c", 0, 1, Some(seen.clone())),
            group_unit("d", 0, 1, None),
        ])
        .await;
    assert_eq!(outcomes.len(), 4);
    for (outcome, s) in [(&outcomes[0], &a), (&outcomes[3], &d)] {
        let committed = outcome.as_ref().unwrap();
        assert_eq!((&committed[0].stream, committed[0].version), (s, 1));
        assert_eq!(committed[0].events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1]);
    }
    let Err(StoreError::Conflict(conflict)) = &outcomes[1] else { panic!("b conflicts: {:?}", outcomes[1]) };
    assert_eq!((&conflict.stream, conflict.expected, conflict.actual), (&b, 5, 0));
    assert!(
        matches!(&outcomes[2], Err(StoreError::AlreadyHandled { message_id, .. }) if *message_id == seen.message_id)
    );
    // A and D are there, events and all; B and C wrote nothing.
    for s in [&a, &d] {
        assert_eq!(store.load(s).await.unwrap().unwrap().version, 1);
        let events = store.stream(s).await.unwrap();
        assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1]);
        assert_eq!(events[0].event::<Bumped>().unwrap().count, 1);
    }
    for s in [&b, &c] {
        assert!(store.load(s).await.unwrap().is_none(), "{s} wrote nothing");
        assert!(store.stream(s).await.unwrap().is_empty(), "{s} appended nothing");
    }
    assert!(!store.is_handled("Counting::count", fresh.message_id).await.unwrap(), "b's handled record is not kept");
    let logged: Vec<_> = store.events(0, 100).await.unwrap().into_iter().map(|e| e.stream).collect();
    assert_eq!(logged, [a.clone(), d.clone()], "the log has A's and D's events, in order");

    // Units of one group see the writes of those before them, and none of a failed one:
    // e's second unit expects the first's version; its third unit was already handled
    // (and wrote nothing), so the fourth expects version 2 and gets it.
    let again = Handled::event("Counting::count", Uuid::now_v7());
    let outcomes = store
        .commit_group(vec![
            group_unit("e", 0, 1, Some(again.clone())),
            group_unit("e", 1, 2, None),
            group_unit("e", 2, 3, Some(again.clone())),
            group_unit("e", 2, 3, None),
        ])
        .await;
    let versions: Vec<_> = outcomes.iter().map(|o| o.as_ref().ok().map(|c| c[0].version)).collect();
    assert_eq!(versions, [Some(1), Some(2), None, Some(3)]);
    assert!(matches!(&outcomes[2], Err(StoreError::AlreadyHandled { .. })), "{:?}", outcomes[2]);
    let e = stream("Counter", "e");
    assert_eq!(store.load(&e).await.unwrap().unwrap().version, 3);
    let events = store.stream(&e).await.unwrap();
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2, 3]);
    let counts: Vec<_> = events.iter().map(|e| e.event::<Bumped>().unwrap().count).collect();
    assert_eq!(counts, [1, 2, 3]);
    // An empty group is nothing to do.
    assert!(store.commit_group(vec![]).await.is_empty());
}

/// One case of the suite, run on the store it is given.
type Case = fn(Arc<dyn Store>) -> Pin<Box<dyn Future<Output = ()>>>;

macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        /// Every case of the suite, by name.
        fn cases() -> Vec<(&'static str, Case)> {
            vec![$((stringify!($case), |store| Box::pin($case(store)))),*]
        }
    };
}

cases!(
    versions_increase_and_a_stale_write_is_refused,
    a_commit_moves_the_version_by_its_advance,
    a_batch_is_all_or_nothing,
    every_field_type_round_trips,
    events_keep_their_envelope_and_order,
    a_handled_message_is_recorded_once,
    the_outbox_hands_out_each_stream_in_order,
    events_committed_but_not_delivered_are_delivered_once,
    corrupt_stored_data_gives_typed_errors,
    read_models_are_kept,
    removal_neither_lets_a_stale_writer_through_nor_blocks_a_replacement,
    a_failed_event_holds_back_the_rest_of_its_stream,
    a_snapshot_that_no_longer_parses_is_replayed_around,
    replay_reads_the_stream_as_stored,
    event_sourced_aggregates_replay_with_snapshots_and_as_of,
    older_event_versions_are_upcast_and_unreadable_ones_are_typed_errors,
    many_tasks_on_one_aggregate_lose_no_update,
    migrating_again_changes_nothing,
    claims_are_renewed_and_released,
    failed_deliveries_are_kept_listed_and_removed,
    the_oldest_undelivered_is_the_earliest_recorded_whatever_the_log_order,
    a_command_outcome_is_kept_with_its_handled_record,
    a_group_commits_every_unit_but_the_one_that_conflicts,
);

#[path = "conformance/dead_letters.rs"]
mod dead_letters;
#[path = "conformance/projections.rs"]
mod projections;
#[path = "conformance/scheduled.rs"]
mod scheduled;

/// Every case of the suite, with those of dead letters, projections and scheduled commands.
fn every_case() -> Vec<(&'static str, Case)> {
    let mut every = cases();
    every.extend(dead_letters::cases());
    every.extend(projections::cases());
    every.extend(scheduled::cases());
    every
}

/// The suite on the stores `open` makes, one new store per case, as trials named
/// `{store}::{case}`.
fn suite(store: &str, open: fn() -> Arc<dyn Store>) -> Vec<Trial> {
    every_case()
        .into_iter()
        .map(|(name, case)| harness::test(format!("{store}::{name}"), move || case(open())))
        .collect()
}

/// A SQLite store in a new file, not `:memory:`: the WAL and the file's schema version
/// are part of the test.
#[cfg(feature = "sqlite")]
fn sqlite_file(durability: protean::store::Durability) -> Arc<dyn Store> {
    let dir = std::env::temp_dir().join(format!("protean-conformance-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    Arc::new(SqliteStore::open_with(dir.join("store.db"), durability).unwrap())
}

/// The suite on PostgreSQL, each case on a new database; ignored, with the reason,
/// without a server.
#[cfg(feature = "postgres")]
fn postgres_suite() -> Vec<Trial> {
    let trials = every_case().into_iter().map(|(name, case)| {
        harness::postgres::test(format!("postgres::{name}"), move |url| async move {
            let store = PostgresStore::connect_with(&url, 8).await.expect("connects and migrates");
            case(Arc::new(store)).await;
        })
    });
    trials.collect()
}

fn main() -> ExitCode {
    #[cfg(feature = "sqlite")]
    use protean::store::Durability;
    let trials = [
        suite("memory", || Arc::new(MemoryStore::new())),
        #[cfg(feature = "sqlite")]
        suite("sqlite", || sqlite_file(Durability::default())),
        #[cfg(feature = "sqlite")]
        suite("sqlite_full_durability", || sqlite_file(Durability::Full)),
        // In memory no reader connection can see the database: its reads run on the writer.
        #[cfg(feature = "sqlite")]
        suite("sqlite_in_memory", || Arc::new(SqliteStore::in_memory().unwrap())),
        #[cfg(feature = "sqlite")]
        vec![
            harness::test("malformed_sqlite_rows_are_typed_errors", malformed_sqlite_rows_are_typed_errors),
            harness::test("invalid_utf8_in_sqlite_is_corrupt_data", invalid_utf8_in_sqlite_is_corrupt_data),
            harness::test(
                "malformed_sqlite_rows_are_typed_errors_on_replay",
                malformed_sqlite_rows_are_typed_errors_on_replay,
            ),
            harness::test(
                "upgrading_a_sqlite_file_makes_event_sourced_versions_count_events",
                upgrading_a_sqlite_file_makes_event_sourced_versions_count_events,
            ),
            harness::test(
                "upgrading_a_sqlite_file_to_5_keeps_its_records_and_a_bad_failure_status_is_corrupt",
                upgrading_a_sqlite_file_to_5_keeps_its_records_and_a_bad_failure_status_is_corrupt,
            ),
        ],
        #[cfg(feature = "postgres")]
        postgres_suite(),
    ];
    harness::run(trials.into_iter().flatten().collect())
}

/// Rows written behind the store's back, as a bug or a hand edit would: typed errors.
#[cfg(feature = "sqlite")]
async fn malformed_sqlite_rows_are_typed_errors() {
    let dir = std::env::temp_dir().join(format!("protean-corrupt-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let insert = "INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload,
        recorded_at, correlation_id, causation_id) VALUES (?1, 'Counter', 'bad', ?2, 'Counter.Bumped', ?3, '{}', 0, ?4, ?4)";
    let good = Uuid::now_v7().to_string();
    raw.execute(insert, rusqlite::params!["not-a-uuid", 1, 1, good]).unwrap();
    let error = store.stream(&stream("Counter", "bad")).await.unwrap_err();
    let StoreError::Corrupt { position: 1, reason, .. } = &error else { panic!("{error}") };
    assert!(reason.contains("event id `not-a-uuid`"), "{reason}");
    raw.execute("DELETE FROM protean_events", []).unwrap();
    raw.execute(insert, rusqlite::params![Uuid::now_v7().to_string(), 1, -4, good]).unwrap();
    let error = store.stream(&stream("Counter", "bad")).await.unwrap_err();
    assert!(matches!(&error, StoreError::Corrupt { reason, .. } if reason.contains("version -4")), "{error}");
    // A time out of range, the earliest of the undelivered: the outbox's status names its event.
    raw.execute("UPDATE protean_events SET version = 1, recorded_at = ?1", [i64::MIN]).unwrap();
    let error = store.outbox_status().await.unwrap_err();
    let StoreError::Corrupt { stream: at, position: 1, reason } = &error else { panic!("{error}") };
    assert_eq!(at, &stream("Counter", "bad"));
    assert!(reason.contains(&i64::MIN.to_string()), "{reason}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a replay reads of rows written behind the store's back: text that is not valid
/// UTF-8 or not text at all, a version or sequence out of range, are `Corrupt` naming the
/// stream and position, as when the events are read whole.
#[cfg(feature = "sqlite")]
async fn malformed_sqlite_rows_are_typed_errors_on_replay() {
    let dir = std::env::temp_dir().join(format!("protean-replay-corrupt-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let bad = stream("Counter", "bad");
    let insert = |sequence: i64, type_name: &str, version: i64, payload: &str| {
        let sql = format!(
            "INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload, recorded_at,
                 correlation_id, causation_id) VALUES (?1, 'Counter', 'bad', ?2, {type_name}, ?3, {payload}, 0, ?1, ?1)"
        );
        raw.execute(&sql, rusqlite::params![Uuid::now_v7().to_string(), sequence, version]).unwrap();
    };
    let replayed = || store.replay_events(&bad, 0, None);
    // A good event first: the error names the bad one's position.
    insert(1, "'Counter.Bumped'", 1, r#"'{"id":"bad","count":1}'"#);
    insert(2, "'Counter.Bumped'", 1, "CAST(X'7B22FF22' AS TEXT)");
    let error = replayed().await.unwrap_err();
    let StoreError::Corrupt { stream: at, position: 2, reason } = &error else { panic!("{error}") };
    assert_eq!(at, &bad);
    assert!(reason.contains("payload") && reason.contains("utf-8"), "{reason}");
    raw.execute("DELETE FROM protean_events WHERE sequence = 2", []).unwrap();
    insert(2, "X'FF'", 1, "'{}'");
    let error = replayed().await.unwrap_err();
    let StoreError::Corrupt { position: 2, reason, .. } = &error else { panic!("{error}") };
    assert!(reason.contains("type name") && reason.contains("Blob"), "{reason}");
    raw.execute("DELETE FROM protean_events WHERE sequence = 2", []).unwrap();
    insert(2, "'Counter.Bumped'", 1, "X'7B7D'");
    let error = replayed().await.unwrap_err();
    let StoreError::Corrupt { position: 2, reason, .. } = &error else { panic!("{error}") };
    assert!(reason.contains("payload") && reason.contains("Blob"), "{reason}");
    raw.execute("DELETE FROM protean_events WHERE sequence = 2", []).unwrap();
    insert(2, "'Counter.Bumped'", -4, "'{}'");
    let error = replayed().await.unwrap_err();
    assert!(
        matches!(&error, StoreError::Corrupt { position: 2, reason, .. } if reason.contains("version -4")),
        "{error}"
    );
    raw.execute("DELETE FROM protean_events WHERE sequence = 2", []).unwrap();
    // A negative sequence is below any range a replay asks for (`after` is a `u64`): not read.
    insert(-1, "'Counter.Bumped'", 1, "'{}'");
    let events = replayed().await.unwrap();
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Stored text that is not valid UTF-8 (or not text at all), written behind the store's
/// back: `Corrupt`, naming the stream and position, for records, events, snapshots and
/// read models alike.
#[cfg(feature = "sqlite")]
async fn invalid_utf8_in_sqlite_is_corrupt_data() {
    let dir = std::env::temp_dir().join(format!("protean-utf8-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    // `CAST(blob AS TEXT)` stores the bytes as text unchecked: `{"` then a lone 0xFF.
    let invalid = "CAST(X'7B22FF22' AS TEXT)";
    raw.execute(&format!("INSERT INTO protean_aggregates VALUES ('Counter', 'bad-state', 4, {invalid}, 0)"), [])
        .unwrap();
    let error = store.load(&stream("Counter", "bad-state")).await.unwrap_err();
    let StoreError::Corrupt { stream: at, position: 4, reason } = &error else { panic!("{error}") };
    assert_eq!(at, &stream("Counter", "bad-state"));
    assert!(reason.contains("state") && reason.contains("utf-8"), "{reason}");

    let insert = |stream_id: &str, type_name: &str, payload: &str| {
        let sql = format!(
            "INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload, recorded_at,
                 correlation_id, causation_id) VALUES (?1, 'Counter', {stream_id}, 2, {type_name}, 1, {payload}, 0, ?1, ?1)"
        );
        raw.execute(&sql, [Uuid::now_v7().to_string()]).unwrap();
    };
    insert("'bad-payload'", "'Counter.Bumped'", invalid);
    let error = store.stream(&stream("Counter", "bad-payload")).await.unwrap_err();
    let StoreError::Corrupt { stream: at, position: 2, reason } = &error else { panic!("{error}") };
    assert_eq!(at, &stream("Counter", "bad-payload"));
    assert!(reason.contains("payload"), "{reason}");
    // The event is undelivered: claiming it reports it the same way rather than a backend failure.
    let error = store.claim_undelivered(10, Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(&error, StoreError::Corrupt { position: 2, .. }), "{error}");
    raw.execute("DELETE FROM protean_events", []).unwrap();

    // A blob where the type name belongs.
    insert("'blob-type'", "X'FF'", "'{}'");
    let error = store.stream(&stream("Counter", "blob-type")).await.unwrap_err();
    let StoreError::Corrupt { position: 2, reason, .. } = &error else { panic!("{error}") };
    assert!(reason.contains("type name") && reason.contains("Blob"), "{reason}");
    raw.execute("DELETE FROM protean_events", []).unwrap();

    // An unreadable stream id: the error names the stream as well as it can.
    insert("CAST(X'61FF' AS TEXT)", "'Counter.Bumped'", "'{}'");
    let error = store.events(0, 10).await.unwrap_err();
    let StoreError::Corrupt { stream: at, position: 2, .. } = &error else { panic!("{error}") };
    assert_eq!(&*at.aggregate, "Counter");
    assert!(at.id.starts_with('a'), "{at}");
    raw.execute("DELETE FROM protean_events", []).unwrap();

    raw.execute(&format!("INSERT INTO protean_snapshots VALUES ('Account', 'bad-snapshot', 3, {invalid})"), [])
        .unwrap();
    let error = store.load_snapshot(&stream("Account", "bad-snapshot"), None).await.unwrap_err();
    assert!(
        matches!(&error, StoreError::Corrupt { position: 3, reason, .. } if reason.contains("snapshot")),
        "{error}"
    );

    raw.execute(&format!("INSERT INTO protean_read_models VALUES ('Price', 'pen', {invalid})"), []).unwrap();
    let error = store.read_model("Price", "pen").await.unwrap_err();
    let StoreError::Corrupt { stream: at, reason, .. } = &error else { panic!("{error}") };
    assert_eq!(at, &stream("Price", "pen"));
    assert!(reason.contains("read model"), "{reason}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The tables of SQLite schema version 2 (before versions counted events), as older
/// protean wrote them: a fixture for the upgrade test.
#[cfg(feature = "sqlite")]
const SQLITE_SCHEMA_V2: &str = "
CREATE TABLE protean_aggregates (
    aggregate TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, state TEXT,
    last_sequence INTEGER NOT NULL, PRIMARY KEY (aggregate, id)) WITHOUT ROWID;
CREATE TABLE protean_events (
    position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, aggregate TEXT NOT NULL,
    stream_id TEXT NOT NULL, sequence INTEGER NOT NULL, type_name TEXT NOT NULL, version INTEGER NOT NULL,
    payload TEXT NOT NULL, recorded_at INTEGER NOT NULL, correlation_id TEXT NOT NULL, causation_id TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0, claimed_until INTEGER, UNIQUE (aggregate, stream_id, sequence));
CREATE INDEX protean_events_undelivered ON protean_events (position) WHERE delivered = 0;
CREATE TABLE protean_handled (
    handler TEXT NOT NULL, message_id TEXT NOT NULL, PRIMARY KEY (handler, message_id)) WITHOUT ROWID;
CREATE TABLE protean_read_models (
    name TEXT NOT NULL, key TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (name, key)) WITHOUT ROWID;
CREATE TABLE protean_snapshots (
    aggregate TEXT NOT NULL, id TEXT NOT NULL, sequence INTEGER NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (aggregate, id, sequence)) WITHOUT ROWID;
PRAGMA user_version = 2;
";

/// A file written by older protean, whose event-sourced versions counted commits, opens
/// with those versions moved to the last sequence; state-stored records keep theirs.
#[cfg(feature = "sqlite")]
async fn upgrading_a_sqlite_file_makes_event_sourced_versions_count_events() {
    let dir = std::env::temp_dir().join(format!("protean-upgrade-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(SQLITE_SCHEMA_V2).unwrap();
        // Two commits of an event-sourced account, five events; a counter bumped twice.
        raw.execute_batch(
            "INSERT INTO protean_aggregates VALUES ('Account', 'a-1', 2, 'null', 5);
             INSERT INTO protean_aggregates VALUES ('Counter', 'c-1', 2, '{\"id\":\"c-1\",\"count\":2}', 2);
             INSERT INTO protean_aggregates VALUES ('Counter', 'gone', 3, NULL, 1);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let version = |aggregate: &'static str, id: &str| {
        let store = store.clone();
        let s = stream(aggregate, id);
        async move { store.load(&s).await.unwrap().map(|r| r.version) }
    };
    assert_eq!(version("Account", "a-1").await, Some(5), "the event-sourced head moved to its last sequence");
    assert_eq!(version("Counter", "c-1").await, Some(2), "a state-stored record keeps its version");
    assert_eq!(version("Counter", "gone").await, None, "a removed one stays removed");
    let raw = rusqlite::Connection::open(&path).unwrap();
    let user_version: i64 = raw.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(user_version, i64::from(protean::store::SQLITE_SCHEMA_VERSION.0));
    let removed: i64 =
        raw.query_row("SELECT version FROM protean_aggregates WHERE id = 'gone'", [], |r| r.get(0)).unwrap();
    assert_eq!(removed, 3, "a removed record keeps its version");
    // The next commit of the account expects the new version.
    let s = stream("Account", "a-1");
    let commit = Commit {
        stream: s.clone(),
        expected_version: 5,
        advance: 1,
        state: state("null"),
        events: vec![],
        snapshot: None,
    };
    assert_eq!(store.commit(batch(vec![commit])).await.unwrap()[0].version, 6);
    // Opening again changes nothing more.
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.load(&s).await.unwrap().unwrap().version, 6);
    let _ = std::fs::remove_dir_all(&dir);
}

/// SQLite schema version 4 (claims record their owner), as older protean wrote it,
/// before handled records kept outcomes and failed deliveries were kept.
#[cfg(feature = "sqlite")]
const SQLITE_SCHEMA_V4: &str = "
CREATE TABLE protean_aggregates (
    aggregate TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, state TEXT,
    last_sequence INTEGER NOT NULL, PRIMARY KEY (aggregate, id)) WITHOUT ROWID;
CREATE TABLE protean_events (
    position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, aggregate TEXT NOT NULL,
    stream_id TEXT NOT NULL, sequence INTEGER NOT NULL, type_name TEXT NOT NULL, version INTEGER NOT NULL,
    payload TEXT NOT NULL, recorded_at INTEGER NOT NULL, correlation_id TEXT NOT NULL, causation_id TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0, claimed_until INTEGER, claimed_by TEXT,
    UNIQUE (aggregate, stream_id, sequence));
CREATE INDEX protean_events_undelivered ON protean_events (position) WHERE delivered = 0;
CREATE TABLE protean_handled (
    handler TEXT NOT NULL, message_id TEXT NOT NULL, PRIMARY KEY (handler, message_id)) WITHOUT ROWID;
CREATE TABLE protean_read_models (
    name TEXT NOT NULL, key TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (name, key)) WITHOUT ROWID;
CREATE TABLE protean_snapshots (
    aggregate TEXT NOT NULL, id TEXT NOT NULL, sequence INTEGER NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (aggregate, id, sequence)) WITHOUT ROWID;
PRAGMA user_version = 4;
";

/// A schema-4 file upgrades to 5 keeping its handled records (with no outcome) and its
/// events, which are then failed, listed and counted; a failure status that is none of
/// the three, written behind the store's back, is `Corrupt` rather than a panic.
#[cfg(feature = "sqlite")]
async fn upgrading_a_sqlite_file_to_5_keeps_its_records_and_a_bad_failure_status_is_corrupt() {
    let dir = std::env::temp_dir().join(format!("protean-upgrade-5-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    let (event_id, command_id) = (Uuid::now_v7(), Uuid::now_v7());
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(SQLITE_SCHEMA_V4).unwrap();
        raw.execute(
            "INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload,
                 recorded_at, correlation_id, causation_id) VALUES (?1, 'Counter', 'c-1', 1, 'Counter.Bumped', 1,
                 '{\"id\":\"c-1\",\"count\":1}', 1700000000000000, ?2, ?2)",
            rusqlite::params![event_id.to_string(), command_id.to_string()],
        )
        .unwrap();
        raw.execute("INSERT INTO protean_handled VALUES ('Counter.Bump', ?1)", [command_id.to_string()]).unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let user_version: i64 = raw.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    // Migrated through 5 to the current version (the later ones keep what 5 made).
    assert_eq!(user_version, i64::from(protean::store::SQLITE_SCHEMA_VERSION.0));
    assert!(store.is_handled("Counter.Bump", command_id).await.unwrap());
    assert_eq!(store.handled_outcome("Counter.Bump", command_id).await.unwrap(), Some(None), "kept, no outcome");
    let events = store.events(0, 10).await.unwrap();
    assert_eq!(events.iter().map(|e| (e.id, e.sequence)).collect::<Vec<_>>(), [(event_id, 1)]);
    let event = &events[0];
    let status = store.outbox_status().await.unwrap();
    assert_eq!((status.undelivered, status.oldest_undelivered), (1, Some(event.recorded_at)));

    let update = FailureUpdate {
        handler: "H::m".into(),
        event: event.clone(),
        status: FailureStatus::Dead,
        error: "boom".into(),
        at: OffsetDateTime::from_unix_timestamp(1_700_000_001).unwrap(),
    };
    assert_eq!(store.record_failure(update).await.unwrap(), 1);
    let listed = store.failed_deliveries(FailureQuery::default()).await.unwrap();
    assert_eq!(listed.iter().map(|f| (f.event.id, f.status)).collect::<Vec<_>>(), [(event_id, FailureStatus::Dead)]);

    raw.execute("UPDATE protean_failures SET status = 'lost'", []).unwrap();
    let error = store.failed_deliveries(FailureQuery::default()).await.unwrap_err();
    let StoreError::Corrupt { stream: at, position: 1, reason } = &error else { panic!("{error}") };
    assert_eq!(at, &stream("Counter", "c-1"));
    assert!(reason.contains("unknown status `lost`"), "{reason}");
    let error = store.outbox_status().await.unwrap_err();
    assert!(matches!(&error, StoreError::Corrupt { position: 1, reason, .. } if reason.contains("`lost`")), "{error}");
    // A bad attempts count is corrupt data too.
    raw.execute("UPDATE protean_failures SET status = 'dead', attempts = -1", []).unwrap();
    let error = store.handler_state("H::m", event).await.unwrap_err();
    assert!(matches!(&error, StoreError::Corrupt { position: 1, reason, .. } if reason.contains("-1")), "{error}");

    // Opening again changes nothing more.
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.handled_outcome("Counter.Bump", command_id).await.unwrap(), Some(None));
    assert_eq!(store.events(0, 10).await.unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
