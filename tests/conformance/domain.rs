//! Conformance cases for a domain on top of a store, through every port at once: every
//! field type round-trips, corrupt stored data gives typed errors (on load and on
//! delivery), and many tasks on one aggregate lose no update.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use protean::prelude::*;
use protean::store::{Commit, Store, StoreError};
use uuid::Uuid;

use super::lab::*;
use super::{batch, bumped, domain_on, state, stream};

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

cases!(
    every_field_type_round_trips,
    corrupt_stored_data_gives_typed_errors,
    many_tasks_on_one_aggregate_lose_no_update,
);
