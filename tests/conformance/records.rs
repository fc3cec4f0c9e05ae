//! Conformance cases for the `Records` port: versions and the optimistic check, batches
//! and groups all or nothing, migrating again, streams and their envelopes, replays and
//! snapshots (event-sourced aggregates loaded through a domain too), upcasting, and the
//! positioned log that rebuilds read.
//!
//! Log positions are only assumed to start at 1 and increase in commit order (a
//! database sequence may leave gaps).

use std::sync::Arc;

use protean::prelude::*;
use protean::store::{Batch, Cause, Commit, Envelope, Handled, Logged, Store, StoreError, StreamId};
use uuid::Uuid;

use super::lab::*;
use super::{at, batch, bumped, domain_on, state, stream};

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

async fn event_sourced_aggregates_replay_with_snapshots_and_as_of(store: Arc<dyn Store>) {
    let domain =
        Domain::builder().module(super::lab_module()).shared_store(store.clone()).snapshot_every(3).build().unwrap();
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

/// An event of type `type_name` (no typed event behind it: stores keep any type name).
pub(super) fn event(stream: &StreamId, type_name: &'static str) -> Envelope {
    let id = Uuid::now_v7();
    Envelope::stored_event(id, type_name.into(), 1, stream.clone(), 0, at(0), id, id, Arc::from("{}"))
}

/// A commit adding a new aggregate that raises events of `types`.
pub(super) fn raising(types: &[&'static str]) -> Commit {
    let stream = StreamId::new("Ledger", Uuid::now_v7().to_string());
    Commit {
        events: types.iter().map(|t| event(&stream, t)).collect(),
        stream,
        expected_version: 0,
        advance: 1,
        state: state("{}"),
        snapshot: None,
    }
}

/// Commits events of `types` (one new aggregate): the events as stored.
pub(super) async fn append(store: &Arc<dyn Store>, types: &[&'static str]) -> Vec<Envelope> {
    let batch = Batch { commits: vec![raising(types)], ..Batch::default() };
    store.commit(batch).await.unwrap().remove(0).events
}

pub(super) fn types(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

async fn the_log_hands_out_events_by_position(store: Arc<dyn Store>) {
    assert!(store.log_after(0, 10, &[]).await.unwrap().is_empty());
    assert_eq!(store.log_count(0, &[]).await.unwrap(), 0);
    let mut events = append(&store, &["Test.Opened", "Test.Noted"]).await;
    events.extend(append(&store, &["Test.Opened"]).await);
    events.extend(append(&store, &["Test.Noted"]).await);
    let ids = |logged: &[Logged]| logged.iter().map(|l| l.event.id).collect::<Vec<_>>();

    let all = store.log_after(0, 100, &[]).await.unwrap();
    assert_eq!(ids(&all), events.iter().map(|e| e.id).collect::<Vec<_>>(), "in commit order");
    assert!(all[0].position >= 1, "positions start at 1");
    assert!(all.windows(2).all(|w| w[0].position < w[1].position), "and increase");
    for (logged, event) in all.iter().zip(&events) {
        assert_eq!(
            (&*logged.event.type_name, &logged.event.stream, logged.event.sequence),
            (&*event.type_name, &event.stream, event.sequence)
        );
    }
    let p: Vec<u64> = all.iter().map(|l| l.position).collect();

    // After a position: the events past it, with the same positions.
    let after = store.log_after(p[0], 100, &[]).await.unwrap();
    assert_eq!(after, all[1..]);
    assert_eq!(store.log_after(p[1], 1, &[]).await.unwrap(), all[2..3], "at most `limit`");
    assert!(store.log_after(p[3], 100, &[]).await.unwrap().is_empty());
    assert_eq!(store.log_after(0, 2, &[]).await.unwrap(), all[..2]);
    // Of some types only.
    let noted = store.log_after(0, 100, &types(&["Test.Noted"])).await.unwrap();
    assert_eq!(noted, [all[1].clone(), all[3].clone()]);
    let both = store.log_after(p[1], 1, &types(&["Test.Opened", "Test.Noted"])).await.unwrap();
    assert_eq!(both, all[2..3]);
    assert_eq!(store.log_after(p[0], 100, &types(&["Test.Opened"])).await.unwrap(), all[2..3]);
    assert!(store.log_after(0, 100, &types(&["Test.Unknown"])).await.unwrap().is_empty());

    assert_eq!(store.log_count(0, &[]).await.unwrap(), 4);
    assert_eq!(store.log_count(p[1], &[]).await.unwrap(), 2);
    assert_eq!(store.log_count(p[3], &[]).await.unwrap(), 0);
    assert_eq!(store.log_count(0, &types(&["Test.Opened"])).await.unwrap(), 2);
    assert_eq!(store.log_count(p[1], &types(&["Test.Noted"])).await.unwrap(), 1);
    assert_eq!(store.log_count(0, &types(&["Test.Opened", "Test.Noted", "Test.Unknown"])).await.unwrap(), 4);
}

cases!(
    versions_increase_and_a_stale_write_is_refused,
    a_commit_moves_the_version_by_its_advance,
    a_batch_is_all_or_nothing,
    migrating_again_changes_nothing,
    a_group_commits_every_unit_but_the_one_that_conflicts,
    events_keep_their_envelope_and_order,
    older_event_versions_are_upcast_and_unreadable_ones_are_typed_errors,
    replay_reads_the_stream_as_stored,
    a_snapshot_that_no_longer_parses_is_replayed_around,
    event_sourced_aggregates_replay_with_snapshots_and_as_of,
    removal_neither_lets_a_stale_writer_through_nor_blocks_a_replacement,
    the_log_hands_out_events_by_position,
);
