//! Conformance cases for the `Deliveries` port: handled records (once each, with a
//! command's outcome), failed deliveries kept, listed and removed, a failed delivery looked
//! up by its key, and the one-step decision to hold an event behind a dead letter of its
//! stream, in both orders against a replay that removes the dead letter, and at the same
//! moment.

use std::sync::Arc;

use protean::prelude::*;
use protean::store::{
    Batch, Commit, Envelope, FailedDelivery, FailureCounts, FailureQuery, FailureStatus, FailureUpdate,
};
use protean::store::{Handled, HandlerState, Store, StoreError, StreamId};
use uuid::Uuid;

use super::lab::Counter;
use super::{at, batch, bumped, state, stream};

use FailureStatus::{Dead, Held, Retrying};

const H: &str = "H::m";
const REASON: &str = "held behind a dead letter";

/// `n` events of a new counter stream named `id`, committed (undelivered).
async fn events(store: &Arc<dyn Store>, id: &str, n: u32) -> Vec<Envelope> {
    let s = stream("Counter", id);
    let counter = Identifier::<Counter>::parse(id).unwrap();
    let commit = Commit {
        stream: s.clone(),
        expected_version: 0,
        advance: 1,
        state: state("{}"),
        events: (1..=n).map(|count| bumped(&counter, count, &s)).collect(),
        snapshot: None,
    };
    store.commit(batch(vec![commit])).await.unwrap().remove(0).events
}

/// The failures of `handler` on `s`, as (sequence, status), in stream order.
async fn failures_of(store: &Arc<dyn Store>, handler: &str, s: &StreamId) -> Vec<(u64, FailureStatus)> {
    let query = FailureQuery { handler: Some(handler.to_owned()), stream: Some(s.clone()), status: None, limit: 1_000 };
    store.failed_deliveries(query).await.unwrap().iter().map(|f| (f.event.sequence, f.status)).collect()
}

async fn hold(store: &Arc<dyn Store>, handler: &str, event: &Envelope) -> bool {
    store.hold_behind_dead_letter(handler, event, REASON, at(10)).await.unwrap()
}

async fn a_failed_delivery_is_looked_up_by_its_handler_and_event(store: Arc<dyn Store>) {
    let a = events(&store, "a", 3).await;
    let b = events(&store, "b", 1).await;
    store.record_failure(failure(H, &a[0], Retrying, "boom 1", 1)).await.unwrap();
    store.record_failure(failure(H, &a[0], Dead, "boom 2", 2)).await.unwrap();
    store.record_failure(failure(H, &a[1], Held, "behind a1", 3)).await.unwrap();
    store.record_failure(failure("G::m", &a[0], Retrying, "oops", 4)).await.unwrap();
    store.record_failure(failure(H, &b[0], Dead, "bad", 5)).await.unwrap();

    // What the lookup finds is what the listing lists, field for field.
    let listed = store.failed_deliveries(FailureQuery::default()).await.unwrap();
    assert_eq!(listed.len(), 4);
    for expected in &listed {
        let found = store.failed_delivery(&expected.handler, expected.event.id).await.unwrap();
        assert_eq!(found.as_ref(), Some(expected));
    }
    let dead: FailedDelivery = store.failed_delivery(H, a[0].id).await.unwrap().unwrap();
    assert_eq!((dead.status, dead.attempts, dead.event.id), (Dead, 2, a[0].id));
    assert_eq!((dead.first_error.as_str(), dead.last_error.as_str()), ("boom 1", "boom 2"));
    assert_eq!((dead.first_failed_at, dead.last_failed_at), (at(1), at(2)));
    assert_eq!(dead.event, a[0].stored(), "with its whole event");
    let other = store.failed_delivery("G::m", a[0].id).await.unwrap().unwrap();
    assert_eq!((other.handler.as_str(), other.status, other.attempts), ("G::m", Retrying, 1), "by handler too");

    assert_eq!(store.failed_delivery(H, a[2].id).await.unwrap(), None, "an event that did not fail");
    assert_eq!(store.failed_delivery("X::m", a[0].id).await.unwrap(), None, "a handler that did not fail");
    assert_eq!(store.failed_delivery(H, Uuid::now_v7()).await.unwrap(), None, "an event not stored");
    assert!(store.remove_failure(H, a[0].id).await.unwrap());
    assert_eq!(store.failed_delivery(H, a[0].id).await.unwrap(), None, "removed");
    assert!(store.failed_delivery("G::m", a[0].id).await.unwrap().is_some(), "the other handler's stays");
}

async fn an_event_is_held_only_while_a_dead_letter_is_ahead_of_it(store: Arc<dyn Store>) {
    let e = events(&store, "held", 6).await;
    let s = e[0].stream.clone();
    // Nothing ahead: nothing held, nothing written.
    assert!(!hold(&store, H, &e[1]).await);
    assert_eq!(failures_of(&store, H, &s).await, []);

    // A dead letter holds the later events, a held one the events after it.
    store.record_failure(failure(H, &e[0], Dead, "boom", 1)).await.unwrap();
    assert!(hold(&store, H, &e[1]).await);
    assert!(hold(&store, H, &e[2]).await);
    assert_eq!(failures_of(&store, H, &s).await, [(1, Dead), (2, Held), (3, Held)]);
    let held = store.failed_delivery(H, e[1].id).await.unwrap().unwrap();
    assert_eq!((held.attempts, held.first_error.as_str(), held.first_failed_at), (0, REASON, at(10)));
    // Held again, it stays held: its first error and time are kept, nothing is counted.
    assert!(store.hold_behind_dead_letter(H, &e[1], "still held", at(11)).await.unwrap());
    let again = store.failed_delivery(H, e[1].id).await.unwrap().unwrap();
    assert_eq!((again.status, again.attempts), (Held, 0));
    assert_eq!((again.first_error.as_str(), again.last_error.as_str()), (REASON, "still held"));
    assert_eq!((again.first_failed_at, again.last_failed_at), (at(10), at(11)));

    // Neither another handler's failures, nor another stream's, nor a later event's hold.
    assert!(!hold(&store, "G::m", &e[3]).await, "another handler");
    let other = events(&store, "other", 2).await;
    assert!(!hold(&store, H, &other[1]).await, "another stream");
    let later = events(&store, "later", 3).await;
    store.record_failure(failure(H, &later[2], Dead, "boom", 2)).await.unwrap();
    assert!(!hold(&store, H, &later[1]).await, "a dead letter after the event");
    store.record_failure(failure(H, &later[0], Retrying, "retried", 3)).await.unwrap();
    assert!(!hold(&store, H, &later[1]).await, "a failure being retried");
    assert_eq!(failures_of(&store, H, &later[0].stream).await, [(1, Retrying), (3, Dead)], "nothing written");

    // The event's own dead letter is left as it is, held or not.
    store.record_failure(failure(H, &e[3], Dead, "its own", 4)).await.unwrap();
    assert!(hold(&store, H, &e[3]).await);
    let own = store.failed_delivery(H, e[3].id).await.unwrap().unwrap();
    assert_eq!((own.status, own.attempts, own.last_error.as_str()), (Dead, 1, "its own"));
    assert!(!hold(&store, H, &later[2]).await);
    assert_eq!(store.failed_delivery(H, later[2].id).await.unwrap().map(|f| f.status), Some(Dead));
}

/// The race of a replay with a worker parking the next event, in the order that used to
/// strand the stream: the worker reads that the stream is held, the replay removes the
/// dead letter and finds nothing held, then the worker holds the event. It is not held.
async fn a_hold_after_the_dead_letter_is_gone_is_refused(store: Arc<dyn Store>) {
    let e = events(&store, "replayed-first", 3).await;
    let s = e[0].stream.clone();
    store.record_failure(failure(H, &e[0], Dead, "boom", 1)).await.unwrap();
    let state = store.handler_state(H, &e[1]).await.unwrap();
    assert_eq!(state, HandlerState { handled: false, held: true, attempts: 0 }, "the worker reads: held");
    assert!(store.remove_failure(H, e[0].id).await.unwrap(), "the replay delivered the dead letter");
    assert_eq!(failures_of(&store, H, &s).await, [], "and finds nothing held behind it");
    assert!(!hold(&store, H, &e[1]).await, "the worker is told to deliver instead");
    assert_eq!(failures_of(&store, H, &s).await, [], "nothing stranded");
    assert_eq!(store.handler_state(H, &e[2]).await.unwrap(), HandlerState::default(), "the next event goes on");
}

/// The other order: the worker holds the event first; the replay, removing the dead
/// letter afterwards, finds it and releases it; once released, nothing holds the rest.
async fn a_hold_before_the_dead_letter_is_gone_is_found_by_the_release(store: Arc<dyn Store>) {
    let e = events(&store, "held-first", 4).await;
    let s = e[0].stream.clone();
    store.record_failure(failure(H, &e[0], Dead, "boom", 1)).await.unwrap();
    assert!(hold(&store, H, &e[1]).await);
    assert!(store.remove_failure(H, e[0].id).await.unwrap());
    // The held event waits behind nothing now: still held until the release takes it,
    // and what comes after it is held behind it meanwhile.
    assert_eq!(failures_of(&store, H, &s).await, [(2, Held)], "the release finds it");
    assert!(hold(&store, H, &e[2]).await, "held behind the held one");
    assert!(store.remove_failure(H, e[1].id).await.unwrap());
    assert_eq!(failures_of(&store, H, &s).await, [(3, Held)]);
    assert!(store.remove_failure(H, e[2].id).await.unwrap());
    assert!(!hold(&store, H, &e[3]).await, "released: the rest is delivered");
    assert_eq!(failures_of(&store, H, &s).await, []);
}

/// A held record with nothing ahead of it, as an older protean could leave it: holding
/// the event again forgets it, and the event is delivered.
async fn a_stranded_held_record_is_forgotten_when_its_event_comes_again(store: Arc<dyn Store>) {
    let e = events(&store, "stranded", 2).await;
    let s = e[0].stream.clone();
    store.record_failure(failure(H, &e[0], Held, "behind a dead letter long gone", 1)).await.unwrap();
    assert!(store.handler_state(H, &e[0]).await.unwrap().held, "it holds its stream");
    assert!(!hold(&store, H, &e[0]).await);
    assert_eq!(failures_of(&store, H, &s).await, []);
    assert_eq!(store.handler_state(H, &e[1]).await.unwrap(), HandlerState::default());
}

/// A worker parks the events of a stream one after the other while a replay removes the
/// dead letter and releases what is held, page after page, at the same moment, many
/// times. Each event is released by the replay or delivered by the worker, once, in
/// stream order, and no held record is left behind.
async fn holding_while_a_replay_releases_strands_nothing(store: Arc<dyn Store>) {
    const EVENTS: u32 = 8;
    for round in 0..40 {
        let e = events(&store, &format!("race-{round}"), EVENTS).await;
        let s = e[0].stream.clone();
        store.record_failure(failure(H, &e[0], Dead, "boom", 1)).await.unwrap();
        let start = Arc::new(tokio::sync::Barrier::new(2));
        let worker = {
            let (store, start, e) = (store.clone(), start.clone(), e.clone());
            tokio::spawn(async move {
                start.wait().await;
                // The first event it is told to deliver; it delivers the rest after it.
                for event in &e[1..] {
                    if !hold(&store, H, event).await {
                        return Some(event.sequence);
                    }
                    tokio::task::yield_now().await; // a worker does more between two events
                }
                None
            })
        };
        let release = {
            let (store, start, s, dead) = (store.clone(), start.clone(), s.clone(), e[0].id);
            tokio::spawn(async move {
                start.wait().await;
                tokio::task::yield_now().await; // it delivers the dead letter first
                assert!(store.remove_failure(H, dead).await.unwrap());
                let mut released = Vec::new();
                loop {
                    let free: Vec<u64> = failures_of(&store, H, &s)
                        .await
                        .into_iter()
                        .take_while(|(_, status)| *status == Held)
                        .map(|(sequence, _)| sequence)
                        .collect();
                    if free.is_empty() {
                        return released;
                    }
                    for sequence in free {
                        tokio::task::yield_now().await; // it delivers the event first
                        assert!(store.remove_failure(H, e[sequence as usize - 1].id).await.unwrap());
                        released.push(sequence);
                    }
                }
            })
        };
        let (delivered_from, released) = (worker.await.unwrap(), release.await.unwrap());
        assert_eq!(failures_of(&store, H, &s).await, [], "round {round}: no held event is left behind");
        let delivered_from = delivered_from.unwrap_or(u64::from(EVENTS) + 1);
        let expected: Vec<u64> = (2..delivered_from).collect();
        assert_eq!(
            released, expected,
            "round {round}: the replay released those held, in order, then the worker went on"
        );
    }
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

cases!(
    a_handled_message_is_recorded_once,
    a_command_outcome_is_kept_with_its_handled_record,
    failed_deliveries_are_kept_listed_and_removed,
    a_failed_delivery_is_looked_up_by_its_handler_and_event,
    an_event_is_held_only_while_a_dead_letter_is_ahead_of_it,
    a_hold_after_the_dead_letter_is_gone_is_refused,
    a_hold_before_the_dead_letter_is_gone_is_found_by_the_release,
    a_stranded_held_record_is_forgotten_when_its_event_comes_again,
    holding_while_a_replay_releases_strands_nothing,
);
