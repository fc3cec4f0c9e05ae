//! Conformance cases for the `Schedule` port, the commands process managers send and
//! schedule: kept with their unit of work's batch, cancelled by name, claimed when due,
//! fired, released.
//!
//! Claims are timed by the store's clock, so the cases that let a lease run out claim
//! with the real time as `now`.

use std::sync::Arc;
use std::time::Duration;

use protean::store::{Batch, Cancel, OffsetDateTime, Scheduled, ScheduledCounts, Store, StreamId};
use uuid::Uuid;

use super::state;

/// A command of `owner`'s instance `key`, due at `due`, under `name` when a deadline.
fn scheduled(owner: &'static str, key: &str, name: Option<&str>, due: OffsetDateTime) -> Scheduled {
    let id = Uuid::now_v7();
    Scheduled {
        id,
        owner: owner.into(),
        owner_key: key.to_owned(),
        name: name.map(str::to_owned),
        due_at: due,
        type_name: "Order.CancelOrder".into(),
        payload: Arc::from(format!(r#"{{"id":"{key}","reason":"late"}}"#)),
        correlation_id: Uuid::now_v7(),
        causation_id: id,
    }
}

fn cancel(owner: &'static str, key: &str, name: &str) -> Cancel {
    Cancel { owner: owner.into(), owner_key: key.to_owned(), name: name.to_owned() }
}

/// A whole second in the past, so that `now` stays at or after it and times round-trip.
fn base() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc() - Duration::from_secs(1);
    now.replace_nanosecond(0).unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ids(found: &[Scheduled]) -> Vec<Uuid> {
    found.iter().map(|s| s.id).collect()
}

async fn scheduled_commands_are_kept_and_cancelled_by_name(store: Arc<dyn Store>) {
    let base = base();
    assert_eq!(store.next_due().await.unwrap(), None);
    let send = scheduled("Fulfilment", "k1", None, base - secs(10));
    let timeout = scheduled("Fulfilment", "k1", Some("timeout"), base + secs(3600));
    let reminder = scheduled("Fulfilment", "k1", Some("reminder"), base - secs(5));
    let other_key = scheduled("Fulfilment", "k2", Some("timeout"), base);
    let other_owner = scheduled("Billing", "k1", Some("timeout"), base + secs(7200));
    let flow = protean::store::Commit {
        stream: StreamId::new("Fulfilment", "k1"),
        expected_version: 0,
        advance: 1,
        state: state("{}"),
        events: vec![],
        snapshot: None,
    };
    let schedule = vec![timeout.clone(), send.clone(), reminder.clone(), other_key.clone(), other_owner.clone()];
    store.commit(Batch { commits: vec![flow.clone()], schedule: schedule.clone(), ..Batch::default() }).await.unwrap();
    assert_eq!(
        store.scheduled_of("Fulfilment", "k1").await.unwrap(),
        [send.clone(), reminder.clone(), timeout.clone()]
    );
    assert_eq!(store.scheduled_of("Fulfilment", "k2").await.unwrap(), std::slice::from_ref(&other_key));
    assert_eq!(store.scheduled_of("Billing", "k1").await.unwrap(), std::slice::from_ref(&other_owner));
    assert!(store.scheduled_of("Fulfilment", "nobody").await.unwrap().is_empty());
    assert_eq!(store.next_due().await.unwrap(), Some(send.due_at));

    // A refused batch schedules and cancels nothing.
    let refused = Batch {
        commits: vec![flow.clone()],
        schedule: vec![scheduled("Fulfilment", "k1", Some("late"), base)],
        cancel: vec![cancel("Fulfilment", "k1", "reminder")],
        ..Batch::default()
    };
    assert!(store.commit(refused).await.is_err(), "the flow is at version 1");
    assert_eq!(
        ids(&store.scheduled_of("Fulfilment", "k1").await.unwrap()),
        ids(&[send.clone(), reminder.clone(), timeout.clone()])
    );

    // Cancelling drops the instance's pending deadlines of that name only; a deadline
    // of that name scheduled in the same batch (after the cancel, in its step) is kept.
    let renewed = scheduled("Fulfilment", "k1", Some("timeout"), base + secs(1800));
    let step = Batch {
        commits: vec![protean::store::Commit { expected_version: 1, ..flow }],
        schedule: vec![renewed.clone()],
        cancel: vec![cancel("Fulfilment", "k1", "timeout"), cancel("Fulfilment", "k1", "nothing by that name")],
        ..Batch::default()
    };
    store.commit(step).await.unwrap();
    assert_eq!(store.scheduled_of("Fulfilment", "k1").await.unwrap(), [send.clone(), reminder, renewed]);
    assert_eq!(store.scheduled_of("Fulfilment", "k2").await.unwrap(), [other_key], "another instance");
    assert_eq!(store.scheduled_of("Billing", "k1").await.unwrap(), [other_owner], "another process manager");
    // A command sent now has no name: no cancel reaches it.
    assert_eq!(store.scheduled_of("Fulfilment", "k1").await.unwrap()[0], send);
}

async fn due_commands_are_claimed_fired_and_released(store: Arc<dyn Store>) {
    let hour = Duration::from_secs(3600);
    let base = base();
    let first = scheduled("Fulfilment", "k1", None, base - secs(10));
    let second = scheduled("Fulfilment", "k2", Some("timeout"), base - secs(5));
    let third = scheduled("Fulfilment", "k3", Some("timeout"), base);
    let later = scheduled("Fulfilment", "k4", Some("timeout"), base + secs(1800));
    let latest = scheduled("Billing", "k5", Some("timeout"), base + secs(7200));
    let schedule = vec![latest.clone(), third.clone(), later.clone(), first.clone(), second.clone()];
    store.commit(Batch { schedule, ..Batch::default() }).await.unwrap();

    // Nothing is due before its time; what is due comes earliest first, whole.
    assert!(store.claim_due(base - secs(20), 10, hour).await.unwrap().is_empty());
    assert_eq!(store.claim_due(base - secs(6), 10, hour).await.unwrap(), std::slice::from_ref(&first));
    assert_eq!(store.claim_due(base, 1, hour).await.unwrap(), std::slice::from_ref(&second), "at most `limit`");
    assert_eq!(store.claim_due(base, 10, hour).await.unwrap(), std::slice::from_ref(&third), "due at `now` is due");
    assert!(store.claim_due(base, 10, hour).await.unwrap().is_empty(), "each held by its claim");

    // Released, a claim may be taken again at once.
    store.release_scheduled(vec![second.id]).await.unwrap();
    assert_eq!(ids(&store.claim_due(base, 10, hour).await.unwrap()), [second.id]);
    // Fired, a command is gone; claimed or not, a pending one counts for `next_due`.
    assert_eq!(store.next_due().await.unwrap(), Some(first.due_at));
    store.complete_scheduled(first.id).await.unwrap();
    assert_eq!(store.next_due().await.unwrap(), Some(second.due_at));
    assert!(store.scheduled_of("Fulfilment", "k1").await.unwrap().is_empty());
    assert_eq!(
        store.scheduled_of("Fulfilment", "k2").await.unwrap(),
        std::slice::from_ref(&second),
        "claimed, still pending"
    );
    // Later, the later ones are due too.
    store.release_scheduled(vec![second.id, third.id]).await.unwrap();
    let all_due = store.claim_due(base + secs(7200), 10, hour).await.unwrap();
    assert_eq!(ids(&all_due), [second.id, third.id, later.id, latest.id]);

    // A claim whose lease ran out may be taken again.
    store.release_scheduled(vec![second.id, third.id, later.id, latest.id]).await.unwrap();
    // Long enough that the next claim comes before it runs out on a loaded machine (a
    // 10 ms lease sometimes did not).
    let short = Duration::from_millis(500);
    assert_eq!(ids(&store.claim_due(OffsetDateTime::now_utc(), 1, short).await.unwrap()), [second.id]);
    assert_eq!(ids(&store.claim_due(OffsetDateTime::now_utc(), 10, hour).await.unwrap()), [third.id]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(ids(&store.claim_due(OffsetDateTime::now_utc(), 10, hour).await.unwrap()), [second.id]);
    assert!(store.claim_due(OffsetDateTime::now_utc(), 10, hour).await.unwrap().is_empty());

    for done in [second.id, third.id, later.id, latest.id] {
        store.complete_scheduled(done).await.unwrap();
    }
    store.complete_scheduled(Uuid::now_v7()).await.unwrap();
    assert_eq!(store.next_due().await.unwrap(), None);
    assert!(store.claim_due(base + secs(10_000), 10, hour).await.unwrap().is_empty());
}

async fn pending_commands_are_listed_earliest_first_and_cancelled_by_id(store: Arc<dyn Store>) {
    let base = base();
    assert!(store.pending_scheduled(10).await.unwrap().is_empty());
    let late = scheduled("Fulfilment", "k1", Some("timeout"), base + secs(3600));
    let now = scheduled("Fulfilment", "k2", None, base - secs(10));
    let other = scheduled("Billing", "k1", Some("remind"), base);
    let flow = protean::store::Commit {
        stream: StreamId::new("Fulfilment", "k1"),
        expected_version: 0,
        advance: 1,
        state: state("{}"),
        events: vec![],
        snapshot: None,
    };
    let schedule = vec![late.clone(), now.clone(), other.clone()];
    store.commit(Batch { commits: vec![flow], schedule, ..Batch::default() }).await.unwrap();
    // Every owner's, claimed or not, earliest due first, at most `limit`.
    let claimed = store.claim_due(base, 1, secs(3600)).await.unwrap();
    assert_eq!(ids(&claimed), [now.id]);
    assert_eq!(store.pending_scheduled(10).await.unwrap(), [now.clone(), other.clone(), late.clone()]);
    assert_eq!(store.pending_scheduled(2).await.unwrap(), [now.clone(), other.clone()]);
    assert_eq!(store.count_scheduled(base).await.unwrap(), ScheduledCounts { pending: 3, due: 2 });
    assert_eq!(store.count_scheduled(base - secs(20)).await.unwrap(), ScheduledCounts { pending: 3, due: 0 });

    // Cancelled by id: gone from every list, never claimed; a second cancel finds nothing.
    assert!(store.cancel_scheduled(late.id).await.unwrap());
    assert!(!store.cancel_scheduled(late.id).await.unwrap());
    assert!(!store.cancel_scheduled(Uuid::now_v7()).await.unwrap());
    assert_eq!(store.pending_scheduled(10).await.unwrap(), [now.clone(), other.clone()]);
    assert!(store.scheduled_of("Fulfilment", "k1").await.unwrap().is_empty());
    store.release_scheduled(vec![now.id]).await.unwrap();
    assert_eq!(ids(&store.claim_due(base + secs(7200), 10, secs(3600)).await.unwrap()), [now.id, other.id]);
}

cases!(
    scheduled_commands_are_kept_and_cancelled_by_name,
    due_commands_are_claimed_fired_and_released,
    pending_commands_are_listed_earliest_first_and_cancelled_by_id
);
