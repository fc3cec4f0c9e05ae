//! Background delivery on every store the build has: `process` returns after the
//! commit and delivery workers deliver; failing handlers are retried with backoff, then
//! dead-lettered (holding their stream, or not), redelivered or discarded; a command sent
//! twice with one id changes state once; workers stop gracefully, leaving no claim.
//!
//! Backoffs are a few milliseconds, so the retries cost the suite nothing; waits are for
//! a condition (everything delivered), polled, with a deadline.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protean::prelude::*;
use protean::runtime::{DeliveryMode, RetryPolicy, WhenDead, WorkerConfig};
use protean::store::{Batch, Cause, Commit, Envelope, FailureQuery, FailureStatus, OffsetDateTime, Store, StreamId};

#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "support/relay.rs"]
mod relay;

use harness::StoreCase;
use relay::*;

const BOOK: &str = "Bookkeeping::book";
const AUDIT: &str = "Auditing::audit";

fn quick(attempts: u32) -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(attempts)
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(4))
}

fn background(store: Arc<dyn Store>, policy: RetryPolicy) -> Domain {
    Domain::builder()
        .module(module_path!().to_string() + "::relay")
        .shared_store(store)
        .delivery(DeliveryMode::Background)
        .retry_policy(policy)
        .conflict_retries(1_000)
        .build()
        .expect("the relay model is valid")
}

/// Workers that never poll: only signals wake them.
fn workers() -> WorkerConfig {
    WorkerConfig::default().poll_interval(Duration::from_secs(3600))
}

fn wallet() -> Identifier<Wallet> {
    Identifier::generate()
}

/// Waits until the outbox is empty and no delivery is being retried.
async fn settled(domain: &Domain) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = domain.delivery_status().await.unwrap();
        if status.undelivered == 0 && status.handlers.iter().all(|h| h.retrying == 0) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "not delivered in time: {status:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn booked(domain: &Domain, id: &Identifier<Wallet>) -> Option<Vec<u64>> {
    domain.get(&id.cast::<Ledger>()).await.unwrap().map(|l| l.numbers)
}

async fn audited(domain: &Domain, id: &Identifier<Wallet>) -> Option<Vec<u64>> {
    domain.get(&id.cast::<Audit>()).await.unwrap().map(|a| a.numbers)
}

async fn deposit(domain: &Domain, id: &Identifier<Wallet>, times: usize) {
    for _ in 0..times {
        let processed = domain.process(Deposit { id: id.clone(), amount: 1 }).await.unwrap();
        assert!(processed.failures.is_empty());
    }
}

async fn process_returns_after_the_commit_and_workers_deliver(store: Arc<dyn Store>) {
    let domain = background(store, quick(3));
    let wallets: Vec<_> = (0..4).map(|_| wallet()).collect();
    for id in &wallets {
        deposit(&domain, id, 5).await;
    }
    // Committed, not delivered: nothing has reacted yet, and the outbox says so.
    assert_eq!(domain.get(&wallets[0]).await.unwrap().unwrap().deposits, 5);
    assert_eq!(booked(&domain, &wallets[0]).await, None);
    let status = domain.delivery_status().await.unwrap();
    assert_eq!(status.undelivered, 20);
    assert!(status.oldest_undelivered.is_some());
    // As JSON, for a health endpoint: the time as RFC 3339 text (as an event's), the lag
    // in seconds.
    let mut events = Vec::new();
    for id in &wallets {
        events.extend(domain.events_of(id).await.unwrap());
    }
    let oldest = events.iter().min_by_key(|e| e.recorded_at).unwrap();
    assert_eq!(Some(oldest.recorded_at), status.oldest_undelivered);
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["oldest_undelivered"], serde_json::to_value(oldest).unwrap()["recorded_at"], "{json}");
    assert_eq!(json["lag"].as_f64(), Some(status.lag.as_secs_f64()), "{json}");
    assert_eq!((&json["undelivered"], &json["dead"], &json["held"]), (&20.into(), &0.into(), &0.into()));

    let handle = domain.workers(workers()).start().unwrap();
    settled(&domain).await;
    for id in &wallets {
        assert_eq!(booked(&domain, id).await.unwrap(), [1, 2, 3, 4, 5], "each once, in stream order");
        assert_eq!(audited(&domain, id).await.unwrap(), [1, 2, 3, 4, 5]);
        // Each event's handlers one after the other, in name order (`Auditing` first).
        let expected: Vec<_> = (1..=5).flat_map(|n| [("audit", n), ("book", n)]).collect();
        assert_eq!(reactions(id), expected);
    }
    // Commits wake the running workers: they never poll here.
    deposit(&domain, &wallets[0], 2).await;
    settled(&domain).await;
    assert_eq!(booked(&domain, &wallets[0]).await.unwrap(), [1, 2, 3, 4, 5, 6, 7]);

    let status = domain.delivery_status().await.unwrap();
    assert_eq!((status.undelivered, status.oldest_undelivered, status.lag), (0, None, Duration::ZERO));
    let delivered: Vec<_> = status.handlers.iter().map(|h| (h.handler.as_str(), h.delivered)).collect();
    assert_eq!(delivered, [(AUDIT, 22), (BOOK, 22)]);
    let report = handle.shutdown().await;
    assert_eq!((report.events, report.deliveries, report.failed_attempts, report.released), (22, 44, 0, 0));
}

async fn a_failing_handler_is_retried_with_backoff_until_it_succeeds(store: Arc<dyn Store>) {
    let domain = background(store, quick(4));
    let id = wallet();
    fail_audits(&id, 3);
    deposit(&domain, &id, 3).await;
    let handle = domain.workers(workers()).start().unwrap();
    settled(&domain).await;
    assert_eq!(audited(&domain, &id).await.unwrap(), [1, 2, 3], "the stream waited for its first event");
    assert!(domain.delivery_failures(FailureQuery::default()).await.unwrap().is_empty(), "a success clears it");
    let report = handle.shutdown().await;
    assert_eq!((report.failed_attempts, report.dead_lettered, report.deliveries), (3, 0, 6));
}

/// The auditor's policy: its first backoffs are `backoff` each (no jitter, no growth).
fn slow_auditor(store: Arc<dyn Store>, backoff: Duration) -> Domain {
    Domain::builder()
        .module(module_path!().to_string() + "::relay")
        .shared_store(store)
        .delivery(DeliveryMode::Background)
        .retry_policy(quick(3))
        .handler_policy(
            AUDIT,
            RetryPolicy::default().max_attempts(10).initial_backoff(backoff).multiplier(1.0).jitter(0.0),
        )
        .build()
        .unwrap()
}

/// Polls `done` until it holds (a 10 s deadline): the time it took from `since`.
async fn until<F: std::future::Future<Output = bool>>(since: Instant, mut done: impl FnMut() -> F) -> Duration {
    let deadline = since + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "not done in time");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    since.elapsed()
}

async fn a_failing_handler_does_not_hold_up_the_other_handlers_of_its_stream(store: Arc<dyn Store>) {
    // The auditor fails twice on the wallet's first deposit and waits `BACKOFF` after
    // each failure; the bookkeeper, a handler of the same events, books all three
    // meanwhile, each in order.
    const BACKOFF: Duration = Duration::from_millis(300);
    let domain = slow_auditor(store, BACKOFF);
    let id = wallet();
    fail_audits(&id, 2);
    deposit(&domain, &id, 3).await;
    let started = Instant::now();
    let handle = domain.workers(workers()).start().unwrap();
    let (domain, id) = (&domain, &id); // copied into the polls
    let booked_in =
        until(started, move || async move { booked(domain, id).await.is_some_and(|b| b == [1, 2, 3]) }).await;
    // Read before the auditor's state: while the auditor has not taken the first
    // deposit, no deposit has been delivered to every handler.
    let undelivered = domain.delivery_status().await.unwrap().undelivered;
    if audited(domain, id).await.is_none() {
        assert_eq!(undelivered, 3, "an event is delivered once every handler settled it");
    }
    let audited_in =
        until(started, move || async move { audited(domain, id).await.is_some_and(|a| a == [1, 2, 3]) }).await;
    assert!(audited_in >= 2 * BACKOFF, "the auditor waited out two backoffs ({audited_in:?})");
    // Before, the bookkeeper got the second deposit only once the auditor had settled
    // the first: both finished together, after both backoffs.
    assert!(
        booked_in + BACKOFF <= audited_in,
        "the bookkeeper finished in {booked_in:?}, the auditor in {audited_in:?}: the backoffs held it up"
    );
    settled(domain).await;
    assert_eq!(booked(domain, id).await.unwrap(), [1, 2, 3], "each once");
    // The auditor's first attempt came first; once it failed, the bookkeeper went on alone.
    assert_eq!(reactions(id), [("book", 1), ("book", 2), ("book", 3), ("audit", 1), ("audit", 2), ("audit", 3)]);
    let report = handle.shutdown().await;
    assert_eq!((report.events, report.deliveries, report.failed_attempts), (3, 6, 2));
}

async fn stopping_while_one_handler_retries_releases_what_it_has_not_settled(store: Arc<dyn Store>) {
    // The auditor is mid-backoff on the first deposit when the workers stop; the
    // bookkeeper has booked all three. Nothing is marked delivered, every claim is
    // released, and the next workers give the auditor the three, in order, and the
    // bookkeeper nothing more.
    let domain = slow_auditor(store.clone(), Duration::from_secs(30));
    let id = wallet();
    fail_audits(&id, 1);
    deposit(&domain, &id, 3).await;
    let started = Instant::now();
    let handle = domain.workers(workers()).start().unwrap();
    let (polled, wallet_id, running) = (&domain, &id, &handle); // copied into the polls
    until(started, move || async move { booked(polled, wallet_id).await.is_some_and(|b| b == [1, 2, 3]) }).await;
    until(started, move || async move { running.report().failed_attempts == 1 }).await;
    let report = handle.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(10), "the backoff was cut short");
    assert_eq!((report.events, report.deliveries, report.released), (0, 3, 3));
    assert_eq!(store.claim_undelivered(10, Duration::ZERO).await.unwrap().len(), 3, "nothing left claimed");

    // The auditor's next attempt (its second) comes at once: a claim starts with an attempt.
    let handle = domain.workers(workers()).start().unwrap();
    settled(&domain).await;
    assert_eq!(audited(&domain, &id).await.unwrap(), [1, 2, 3]);
    assert_eq!(booked(&domain, &id).await.unwrap(), [1, 2, 3], "booked once");
    let report = handle.shutdown().await;
    assert_eq!((report.events, report.deliveries), (3, 3));
}

async fn a_handler_failing_every_attempt_is_dead_lettered_holds_its_stream_and_is_redelivered_once(
    store: Arc<dyn Store>,
) {
    let domain = background(Arc::clone(&store), quick(3));
    let (sick, healthy) = (wallet(), wallet());
    fail_audits(&sick, u32::MAX);
    deposit(&domain, &sick, 3).await;
    deposit(&domain, &healthy, 2).await;
    let handle = domain.workers(workers()).start().unwrap();
    settled(&domain).await;

    // The bookkeeper got everything; the auditor got the healthy wallet's deposits.
    assert_eq!(booked(&domain, &sick).await.unwrap(), [1, 2, 3]);
    assert_eq!(audited(&domain, &healthy).await.unwrap(), [1, 2]);
    assert_eq!(audited(&domain, &sick).await, None);
    let dead = domain.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    let letter = &dead[0];
    assert_eq!((letter.handler.as_str(), letter.event.sequence, letter.attempts), (AUDIT, 1, 3));
    assert!(letter.first_error.contains("deposit #1"), "{}", letter.first_error);
    assert!(letter.first_failed_at <= letter.last_failed_at);
    let held = FailureQuery { status: Some(FailureStatus::Held), ..FailureQuery::default() };
    let held: Vec<u64> = domain.delivery_failures(held).await.unwrap().iter().map(|f| f.event.sequence).collect();
    assert_eq!(held, [2, 3], "the rest of the stream waits behind it, for the auditor only");
    let audit = domain.delivery_status().await.unwrap().handlers.into_iter().find(|h| h.handler == AUDIT).unwrap();
    assert_eq!((audit.dead, audit.held, audit.retrying), (1, 2, 0));

    // The totals count every handler's failures: with a retried failure of a handler of
    // another domain on this store, and a dead letter of it too.
    let healthy_events = domain.events_of(&healthy).await.unwrap();
    for (event, status) in healthy_events.iter().zip([FailureStatus::Retrying, FailureStatus::Dead]) {
        let failure = protean::store::FailureUpdate {
            handler: "Elsewhere::react".into(),
            event: event.clone(),
            status,
            error: "boom".into(),
            at: OffsetDateTime::now_utc(),
        };
        store.record_failure(failure).await.unwrap();
    }
    let status = domain.delivery_status().await.unwrap();
    assert_eq!((status.dead, status.held, status.retrying), (2, 2, 1), "{status:?}");
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!((&json["dead"], &json["held"], &json["retrying"]), (&2.into(), &2.into(), &1.into()), "{json}");
    assert!(json["lag"].is_number() && json["undelivered"].is_number(), "{json}");
    assert_eq!(json["oldest_undelivered"].is_null(), status.oldest_undelivered.is_none(), "{json}");
    let handlers: Vec<(&str, u64)> = json["handlers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["handler"].as_str().unwrap(), h["dead"].as_u64().unwrap()))
        .collect();
    assert_eq!(handlers, [(AUDIT, 1), (BOOK, 0), ("Elsewhere::react", 1)]);
    for event in &healthy_events {
        store.remove_failure("Elsewhere::react", event.id).await.unwrap();
    }
    assert_eq!(domain.dead_letter(AUDIT, letter.event.id).await.unwrap().as_ref(), Some(letter), "inspect");

    // Redelivering while still broken fails again, and counts the attempt.
    let again = domain.redeliver(AUDIT, letter.event.id).await.unwrap();
    assert!(again.delivered.is_empty());
    assert_eq!(again.failed[0].attempts, 4);

    // Fixed: the redelivery delivers it, then what it held, in order, once.
    fail_audits(&sick, 0);
    let redelivered = domain.redeliver(AUDIT, letter.event.id).await.unwrap();
    assert!(redelivered.failed.is_empty());
    assert_eq!(redelivered.delivered.len(), 3);
    assert_eq!(audited(&domain, &sick).await.unwrap(), [1, 2, 3]);
    assert!(domain.delivery_failures(FailureQuery::default()).await.unwrap().is_empty());
    let status = domain.delivery_status().await.unwrap();
    assert_eq!((status.dead, status.held, status.retrying), (0, 0, 0));
    let gone = domain.redeliver(AUDIT, letter.event.id).await;
    assert!(matches!(gone, Err(ProcessError::NoDeadLetter { .. })), "{gone:?}");
    assert!(domain.redeliver_all().await.unwrap().delivered.is_empty());
    // The old names, deprecated, still compile and answer the same.
    #[allow(deprecated)]
    {
        let old: Result<protean::runtime::Replayed, ProcessError> = domain.replay(AUDIT, letter.event.id).await;
        assert!(matches!(old, Err(ProcessError::NoDeadLetter { .. })), "{old:?}");
        assert!(domain.replay_all().await.unwrap().delivered.is_empty());
    }
    assert_eq!(audited(&domain, &sick).await.unwrap(), [1, 2, 3], "delivered once");
    let report = handle.shutdown().await;
    assert_eq!((report.dead_lettered, report.held), (1, 2));
}

async fn a_handler_that_does_not_hold_goes_on_past_its_dead_letter(store: Arc<dyn Store>) {
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::relay")
        .shared_store(store)
        .delivery(DeliveryMode::Background)
        .retry_policy(quick(5))
        .handler_policy(AUDIT, quick(2).when_dead(WhenDead::Continue))
        .build()
        .unwrap();
    let id = wallet();
    fail_audits(&id, 2); // exactly the auditor's two attempts at deposit #1
    deposit(&domain, &id, 3).await;
    let handle = domain.workers(workers()).start().unwrap();
    settled(&domain).await;
    assert_eq!(audited(&domain, &id).await.unwrap(), [2, 3]);
    let dead = domain.dead_letters().await.unwrap();
    assert_eq!(dead.iter().map(|d| (d.event.sequence, d.attempts)).collect::<Vec<_>>(), [(1, 2)]);
    // Discarded, it is forgotten; nothing was held behind it.
    let discarded = domain.discard(AUDIT, dead[0].event.id).await.unwrap();
    assert!(discarded.delivered.is_empty() && discarded.failed.is_empty());
    assert!(domain.dead_letters().await.unwrap().is_empty());
    let _ = handle.shutdown().await;
}

async fn discarding_a_dead_letter_delivers_what_it_held(store: Arc<dyn Store>) {
    let domain = background(store, quick(2));
    let id = wallet();
    fail_audits(&id, 2);
    deposit(&domain, &id, 3).await;
    let handle = domain.workers(workers()).start().unwrap();
    settled(&domain).await;
    let dead = domain.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    let discarded = domain.discard(AUDIT, dead[0].event.id).await.unwrap();
    assert_eq!(discarded.delivered.len(), 2);
    assert_eq!(audited(&domain, &id).await.unwrap(), [2, 3]);
    assert!(domain.delivery_failures(FailureQuery::default()).await.unwrap().is_empty());
    let _ = handle.shutdown().await;
}

/// The held deliveries of the auditor for `id`'s wallet, in stream order.
async fn held_audits(domain: &Domain, id: &Identifier<Wallet>) -> Vec<protean::store::FailedDelivery> {
    let stream = protean::store::StreamId::new("Wallet", id.to_string());
    let query = FailureQuery {
        handler: Some(AUDIT.to_owned()),
        stream: Some(stream),
        status: Some(FailureStatus::Held),
        limit: 100,
    };
    domain.delivery_failures(query).await.unwrap()
}

/// Held deliveries whose dead letter is gone (as an older protean could leave them:
/// stranded) are released by a redelivery or a discard of one of them, and by `redeliver_all`;
/// a held delivery behind a dead letter is not, until that one is redelivered.
async fn stranded_held_deliveries_are_released_by_redeliver_discard_and_redeliver_all(store: Arc<dyn Store>) {
    let domain = background(store.clone(), quick(3));
    let wallets: Vec<_> = (0..4).map(|_| wallet()).collect();
    for id in &wallets {
        fail_audits(id, 3); // exactly the attempts at deposit #1: it dies, #2 and #3 are held
        deposit(&domain, id, 3).await;
    }
    let handle = domain.workers(workers()).start().unwrap();
    settled(&domain).await;
    let dead = domain.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 4);
    for letter in &dead[..3] {
        assert!(store.remove_failure(AUDIT, letter.event.id).await.unwrap(), "stranding its stream");
    }
    let sequences = |held: &[protean::store::FailedDelivery]| held.iter().map(|f| f.event.sequence).collect::<Vec<_>>();
    let delivered = |redelivered: &protean::runtime::Redelivered| {
        redelivered.delivered.iter().map(|(_, id)| *id).collect::<Vec<_>>()
    };

    // Replaying a stranded held delivery delivers the held ones from the first, in order.
    let held = held_audits(&domain, &wallets[0]).await;
    assert_eq!(sequences(&held), [2, 3]);
    let redelivered = domain.redeliver(AUDIT, held[1].event.id).await.unwrap();
    assert_eq!(delivered(&redelivered), [held[0].event.id, held[1].event.id]);
    assert_eq!(audited(&domain, &wallets[0]).await.unwrap(), [2, 3]);

    // Discarding one gives it up and delivers the rest.
    let held = held_audits(&domain, &wallets[1]).await;
    let discarded = domain.discard(AUDIT, held[0].event.id).await.unwrap();
    assert_eq!(delivered(&discarded), [held[1].event.id]);
    assert_eq!(audited(&domain, &wallets[1]).await.unwrap(), [3]);

    // A held delivery behind a dead letter waits for it: neither redelivered nor discarded.
    let held = held_audits(&domain, &wallets[3]).await;
    for outcome in [domain.redeliver(AUDIT, held[0].event.id).await, domain.discard(AUDIT, held[0].event.id).await] {
        assert!(matches!(outcome, Err(ProcessError::NoDeadLetter { .. })), "{outcome:?}");
    }

    // A new event of a stranded stream is held behind the stranded ones, in order;
    // `redeliver_all` redelivers the dead letter and releases the stranded stream, whole.
    deposit(&domain, &wallets[2], 1).await;
    settled(&domain).await;
    assert_eq!(sequences(&held_audits(&domain, &wallets[2]).await), [2, 3, 4]);
    let all = domain.redeliver_all().await.unwrap();
    assert!(all.failed.is_empty(), "{all:?}");
    assert_eq!(all.delivered.len(), 6, "the dead letter and its two held, then the three stranded: {all:?}");
    assert_eq!(audited(&domain, &wallets[2]).await.unwrap(), [2, 3, 4]);
    assert_eq!(audited(&domain, &wallets[3]).await.unwrap(), [1, 2, 3]);
    assert!(domain.delivery_failures(FailureQuery::default()).await.unwrap().is_empty());
    assert!(domain.redeliver_all().await.unwrap().delivered.is_empty(), "nothing is left to release");
    let _ = handle.shutdown().await;
}

async fn the_oldest_undelivered_only_moves_forward_while_workers_drain_a_backlog(store: Arc<dyn Store>) {
    // A backlog of 600 deposits into 20 wallets, committed round by round: within a
    // round the wallets' deposits are logged in one order and timed in another, as units
    // of work committing together are. Each wallet's deposits are timed in order.
    const WALLETS: i64 = 20;
    const ROUNDS: i64 = 30;
    let domain = background(store.clone(), quick(3));
    let wallets: Vec<_> = (0..WALLETS).map(|_| wallet()).collect();
    let base = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - Duration::from_secs(60);
    for round in 0..ROUNDS {
        let mut batches = Vec::new();
        for (w, id) in (0..WALLETS).zip(&wallets) {
            let stream = StreamId::new("Wallet", id.to_string());
            let number = u64::try_from(round + 1).unwrap();
            let event = Deposited { id: id.clone(), number, amount: 1 };
            let mut event = Envelope::new(event.into(), stream.clone(), Cause::command(Uuid::now_v7())).unwrap();
            // Logged in wallet order, timed in a shuffled one, 1 ms apart.
            event.recorded_at = base + Duration::from_millis(u64::try_from(round * 100 + (w * 7) % WALLETS).unwrap());
            let wallet_now = format!(r#"{{"id":"{id}","balance":{number},"deposits":{number}}}"#);
            let commit = Commit {
                stream,
                expected_version: u64::try_from(round).unwrap(),
                advance: 1,
                state: Some(Arc::from(wallet_now)),
                events: vec![event],
                snapshot: None,
            };
            batches.push(Batch { commits: vec![commit], ..Batch::default() });
        }
        // One group, as units of work committing together are.
        for committed in store.commit_group(batches).await {
            committed.unwrap();
        }
    }
    let handles: Vec<_> = (0..3).map(|_| domain.workers(workers().concurrency(4).batch(32)).start().unwrap()).collect();
    let mut samples = Vec::new();
    loop {
        let status = domain.delivery_status().await.unwrap();
        let Some(oldest) = status.oldest_undelivered else { break };
        if let Some(&(before, _)) = samples.last() {
            let undelivered = status.undelivered;
            assert!(oldest >= before, "moved back from {before} to {oldest} ({undelivered} undelivered)");
        }
        samples.push((oldest, status.undelivered));
        tokio::task::yield_now().await;
    }
    let moved = samples.windows(2).filter(|pair| pair[0].0 < pair[1].0).count();
    assert!(moved >= 3, "the drain was sampled as it went: {} samples, moving {moved} times", samples.len());
    for handle in handles {
        let _ = handle.shutdown().await;
    }
    settled(&domain).await;
    let expected: Vec<u64> = (1..=30).collect();
    for id in &wallets {
        assert_eq!(booked(&domain, id).await.unwrap(), expected);
    }
}

async fn a_command_sent_twice_with_one_id_changes_state_once(store: Arc<dyn Store>) {
    let domain = background(store, quick(3));
    let id = wallet();
    let command_id = Uuid::now_v7();
    let first = domain.process_with(Deposit { id: id.clone(), amount: 10 }, command_id, None).await.unwrap();
    let copy = domain.process_with(Deposit { id: id.clone(), amount: 10 }, command_id, None).await.unwrap();
    assert_eq!(first.reply, 1);
    assert_eq!(copy.reply, 1, "the first outcome");
    assert_eq!(copy.command_id, command_id);
    let ids = |p: &Processed<u64>| p.events.iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(&copy), ids(&first), "the same events, read back");
    assert_eq!(copy.committed[0].stream, first.committed[0].stream);
    assert_eq!(copy.committed[0].version, first.committed[0].version);
    let wallet_now = domain.get(&id).await.unwrap().unwrap();
    assert_eq!((wallet_now.balance, wallet_now.deposits), (10, 1));

    // Two copies at the same moment: one commits, the other is handed its outcome.
    let racing = Uuid::now_v7();
    let (a, b) = tokio::join!(
        domain.process_with(Deposit { id: id.clone(), amount: 5 }, racing, None),
        domain.process_with(Deposit { id: id.clone(), amount: 5 }, racing, None),
    );
    assert_eq!((a.unwrap().reply, b.unwrap().reply), (2, 2));
    let wallet_now = domain.get(&id).await.unwrap().unwrap();
    assert_eq!((wallet_now.balance, wallet_now.deposits), (15, 2));
    // A fresh id is a new command.
    domain.process(Deposit { id: id.clone(), amount: 1 }).await.unwrap().all_delivered().unwrap();
    assert_eq!(domain.get(&id).await.unwrap().unwrap().deposits, 3);
    assert_eq!(domain.delivery_status().await.unwrap().undelivered, 3, "one event per command that ran");
}

async fn graceful_shutdown_under_load_loses_nothing_and_leaves_no_claim(store: Arc<dyn Store>) {
    // Long backoffs: a stream stuck retrying is mid-wait when the workers stop.
    let policy = RetryPolicy::default().max_attempts(1_000).initial_backoff(Duration::from_millis(20));
    let domain = background(store.clone(), policy);
    let stuck = wallet();
    fail_audits(&stuck, u32::MAX);
    let mut wallets: Vec<_> = (0..30).map(|_| wallet()).collect();
    wallets.push(stuck.clone());
    for id in &wallets {
        deposit(&domain, id, 10).await;
    }
    let config = workers().concurrency(4).batch(16);
    let handle = domain.workers(config.clone()).start().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while handle.report().failed_attempts < 2 {
        assert!(tokio::time::Instant::now() < deadline, "workers made no progress");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let report = handle.shutdown().await;
    let left = domain.delivery_status().await.unwrap().undelivered;
    assert!(left >= 10, "the stuck stream is undelivered ({report:?})");
    assert!(report.released >= 1, "its claims were released ({report:?})");
    // Nothing is left claimed: every undelivered event is claimable at once.
    let claimable = store.claim_undelivered(10_000, Duration::ZERO).await.unwrap();
    assert_eq!(claimable.len() as u64, left, "{report:?}");

    // A new set of workers finishes the job; every deposit booked once, in order.
    fail_audits(&stuck, 0);
    let handle = domain.workers(config).start().unwrap();
    settled(&domain).await;
    let expected: Vec<u64> = (1..=10).collect();
    for id in &wallets {
        assert_eq!(booked(&domain, id).await.unwrap(), expected);
        assert_eq!(audited(&domain, id).await.unwrap(), expected);
    }
    let _ = handle.shutdown().await;
}

async fn inline_mode_still_delivers_in_process(store: Arc<dyn Store>) {
    let domain = Domain::builder().module(module_path!().to_string() + "::relay").shared_store(store).build().unwrap();
    assert_eq!(domain.delivery_mode(), DeliveryMode::Inline);
    let id = wallet();
    let processed = domain.process(Deposit { id: id.clone(), amount: 3 }).await.unwrap();
    processed.all_delivered().unwrap();
    assert_eq!(booked(&domain, &id).await.unwrap(), [1]);
    assert_eq!(domain.delivery_status().await.unwrap().undelivered, 0);
}

async fn inline_delivery_holds_back_only_the_handler_that_failed(store: Arc<dyn Store>) {
    let domain = Domain::builder().module(module_path!().to_string() + "::relay").shared_store(store).build().unwrap();
    let id = wallet();
    fail_audits(&id, 1);
    let mut unit = domain.unit_of_work::<Wallet>();
    let opened = unit.add(Wallet::builder().id(id.clone()).balance(2i64).deposits(2u64).build().unwrap()).unwrap();
    opened.raise(Deposited { id: id.clone(), number: 1, amount: 1 });
    opened.raise(Deposited { id: id.clone(), number: 2, amount: 1 });
    let processed = unit.commit().await.unwrap();
    // The auditor failed on the first deposit, so it was not given the second; the
    // bookkeeper took both.
    let failed: Vec<_> = processed.failures.iter().map(|f| (f.handler.name(), f.event.sequence)).collect();
    assert_eq!(failed, [(AUDIT, 1)]);
    assert_eq!(booked(&domain, &id).await.unwrap(), [1, 2]);
    assert_eq!(audited(&domain, &id).await, None);
    assert_eq!(domain.delivery_status().await.unwrap().undelivered, 2, "neither is delivered to every handler");

    // Retried, the auditor takes the first; the second comes with the pending ones, in order.
    assert!(domain.retry_failed().await.failures.is_empty());
    assert!(domain.deliver_pending().await.unwrap().failures.is_empty());
    assert_eq!(audited(&domain, &id).await.unwrap(), [1, 2]);
    assert_eq!(booked(&domain, &id).await.unwrap(), [1, 2], "booked once");
    assert_eq!(domain.delivery_status().await.unwrap().undelivered, 0);
}

/// Every case, each run on the store it is given.
macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        fn cases() -> Vec<(&'static str, StoreCase)> {
            vec![$((stringify!($case), |store| Box::pin($case(store)))),*]
        }
    };
}

cases!(
    process_returns_after_the_commit_and_workers_deliver,
    a_failing_handler_is_retried_with_backoff_until_it_succeeds,
    a_failing_handler_does_not_hold_up_the_other_handlers_of_its_stream,
    stopping_while_one_handler_retries_releases_what_it_has_not_settled,
    a_handler_failing_every_attempt_is_dead_lettered_holds_its_stream_and_is_redelivered_once,
    a_handler_that_does_not_hold_goes_on_past_its_dead_letter,
    discarding_a_dead_letter_delivers_what_it_held,
    stranded_held_deliveries_are_released_by_redeliver_discard_and_redeliver_all,
    the_oldest_undelivered_only_moves_forward_while_workers_drain_a_backlog,
    a_command_sent_twice_with_one_id_changes_state_once,
    graceful_shutdown_under_load_loses_nothing_and_leaves_no_claim,
    inline_mode_still_delivers_in_process,
    inline_delivery_holds_back_only_the_handler_that_failed,
);

/// Set in the child process of [`failures_are_written_on_stderr_while_no_tracing_subscriber_is_installed`]:
/// `unobserved`, or `observed` (it installs a subscriber first).
const CHILD: &str = "PROTEAN_BACKGROUND_CHILD";

/// The child: a handler failing every attempt, with workers started twice (the second
/// set says nothing new); prints the wallet's id once its deposit is a dead letter.
async fn dead_letter_child(observed: bool) {
    if observed {
        tracing::subscriber::set_global_default(tracing_subscriber::registry()).unwrap();
    }
    let domain = background(Arc::new(protean::store::MemoryStore::new()), quick(2));
    let id = wallet();
    fail_audits(&id, u32::MAX);
    deposit(&domain, &id, 1).await;
    let handle = domain.workers(workers()).start().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while domain.delivery_status().await.unwrap().dead == 0 {
        assert!(Instant::now() < deadline, "no dead letter in time");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    handle.shutdown().await;
    domain.workers(workers()).start().unwrap().shutdown().await;
    println!("{id}");
}

/// Runs the child process in `mode`: its stdout (the wallet's id) and stderr.
fn child(mode: &str) -> (String, String) {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD, mode)
        .output()
        .expect("the child process runs");
    let (stdout, stderr) = (String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap());
    assert!(output.status.success(), "the child failed: {stderr}");
    (stdout.trim().to_owned(), stderr)
}

/// Without a tracing subscriber, the workers' log goes nowhere: they say so on stderr,
/// once per process, and write each dead letter there. With one, stderr is left to it.
fn failures_are_written_on_stderr_while_no_tracing_subscriber_is_installed() {
    let (id, stderr) = child("unobserved");
    let notice = "protean: delivery workers started with no tracing subscriber installed: their failures \
                  (failed attempts, dead letters, store errors) are logged through `tracing` and shown nowhere. \
                  Install a subscriber to see them (`tracing_subscriber::fmt::init()`); until then each dead letter \
                  is also written here. `Domain::delivery_status()` and `Domain::dead_letters()` report them at any \
                  time.\n";
    assert_eq!(stderr.matches(notice).count(), 1, "said once, for two sets of workers: {stderr}");
    let letter = format!("protean: dead letter: `{AUDIT}` failed on Wallet.Deposited #1 of Wallet/{id} (event ");
    let [line] = stderr.lines().filter(|l| l.starts_with("protean: dead letter")).collect::<Vec<_>>()[..] else {
        panic!("one dead letter written: {stderr}")
    };
    assert!(line.starts_with(&letter), "{line}");
    assert!(
        line.ends_with(
            ") 2 time(s), the last with: `Wallet.Deposited` was rejected: the auditor is down for deposit #1; \
             redeliver it with `Domain::redeliver` once fixed"
        ),
        "{line}"
    );

    let (_, stderr) = child("observed");
    assert!(!stderr.contains("protean:"), "{stderr}");
}

fn main() -> ExitCode {
    if let Ok(mode) = std::env::var(CHILD) {
        harness::runtime().block_on(dead_letter_child(mode == "observed"));
        return ExitCode::SUCCESS;
    }
    // These cases dead-letter deposits on purpose: a subscriber that records nothing
    // keeps them off stderr (the child above shows what is written without one).
    tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default()).unwrap();
    let mut trials = harness::every_store("background", cases, 8);
    trials.push(harness::Trial::test(
        "failures_are_written_on_stderr_while_no_tracing_subscriber_is_installed",
        || {
            failures_are_written_on_stderr_while_no_tracing_subscriber_is_installed();
            Ok(())
        },
    ));
    harness::run(trials)
}
