//! Projections on every store the build has: async projectors follow the events, in
//! stream order, once each; inline projectors commit with the events (visible when
//! `process` returns; a failing one rejects the unit of work); queries run in the
//! store; a rebuild equals the incremental result, never serves a half-built copy, and
//! loses nothing written meanwhile; an outdated or never-built projection is rebuilt.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use protean::prelude::*;
use protean::runtime::{DeliveryMode, ProcessError, QueryError, RebuildEnd, WorkerConfig};
use protean::store::{Batch, OutdatedCopy, ProjectionSpec, RowChange, Store, StoreError};

#[path = "support/books.rs"]
mod books;
#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;

use books::accounts::{Account, Charge};
use books::views::{AccountView, OwnerTotal, REFUSED_CENTS};
use harness::StoreCase;

fn domain(store: Arc<dyn Store>, mode: DeliveryMode) -> Domain {
    Domain::builder()
        .module(module_path!().to_string() + "::books")
        .shared_store(store)
        .delivery(mode)
        .conflict_retries(1_000)
        .build()
        .expect("the books model is valid")
}

fn account() -> Identifier<Account> {
    Identifier::generate()
}

async fn charge(domain: &Domain, id: &Identifier<Account>, owner: &str, cents: i64) {
    domain
        .process(Charge { id: id.clone(), owner: owner.into(), cents })
        .await
        .expect("charged")
        .all_delivered()
        .unwrap();
}

/// Every row of a projection, by key.
async fn all<V: Projection>(domain: &Domain, order: &str) -> Vec<V> {
    domain.query::<V>().order_by(order).limit(100_000).fetch().await.unwrap()
}

/// Waits until the outbox is empty.
async fn settled(domain: &Domain) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = domain.delivery_status().await.unwrap();
        if status.undelivered == 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "not delivered in time: {status:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn async_projector_follows_each_stream_in_order(store: Arc<dyn Store>) {
    let domain = domain(store, DeliveryMode::Inline);
    let (a, b) = (account(), account());
    for cents in [5, 7, 11] {
        charge(&domain, &a, "ann", cents).await;
    }
    charge(&domain, &b, "bob", 100).await;
    let view = domain.projection::<AccountView>(&a).await.unwrap().expect("a row for the account");
    assert_eq!((view.owner.as_str(), view.balance, view.numbers.clone()), ("ann", 23, vec![1, 2, 3]));
    // A redelivered event (a crash before its delivery was marked) changes nothing.
    let events = domain.events_of(&a).await.unwrap();
    let again = domain.deliver(events).await;
    assert!(again.failures.is_empty());
    assert_eq!(domain.projection::<AccountView>(&a).await.unwrap().unwrap().numbers, [1, 2, 3]);
    let status = domain.projection_status::<AccountView>().await.unwrap();
    assert_eq!((status.version, status.declared_version, status.generation), (1, 1, 1));
    assert!(status.checkpoint >= 4 && status.lag == 0, "{status:?}");
}

async fn queries_filter_order_and_page_in_the_store(store: Arc<dyn Store>) {
    let domain = domain(store, DeliveryMode::Inline);
    let mut ids = Vec::new();
    for (n, owner) in ["ann", "bob", "ann", "cy", "ann"].iter().enumerate() {
        let id = account();
        charge(&domain, &id, owner, (n as i64 + 1) * 10).await;
        ids.push(id);
    }
    let anns: Vec<i64> = domain
        .query::<AccountView>()
        .eq("owner", "ann")
        .order_by_desc("balance")
        .fetch()
        .await
        .unwrap()
        .iter()
        .map(|v| v.balance)
        .collect();
    assert_eq!(anns, [50, 30, 10]);
    let big: Vec<i64> = domain
        .query::<AccountView>()
        .ge("balance", 30)
        .lt("balance", 50)
        .order_by("balance")
        .fetch()
        .await
        .unwrap()
        .iter()
        .map(|v| v.balance)
        .collect();
    assert_eq!(big, [30, 40]);
    let mut paged = Vec::new();
    for page in 0..3 {
        let rows = domain.query::<AccountView>().order_by("balance").limit(2).offset(page * 2).fetch().await.unwrap();
        paged.extend(rows.into_iter().map(|v| v.balance));
    }
    assert_eq!(paged, [10, 20, 30, 40, 50], "pages cover every row once");
    let totals: Vec<(String, i64)> =
        all::<OwnerTotal>(&domain, "total").await.into_iter().map(|t| (t.owner, t.total)).collect();
    assert_eq!(totals, [("bob".to_owned(), 20), ("cy".to_owned(), 40), ("ann".to_owned(), 90)]);
    match domain.query::<AccountView>().eq("numbers", 1).fetch().await {
        Err(ProcessError::Query(QueryError::NotIndexed { field, .. })) => assert_eq!(field, "numbers"),
        other => panic!("an undeclared field is refused, got {other:?}"),
    }
    match domain.query::<AccountView>().eq("owner", vec!["ann"]).fetch().await {
        Err(ProcessError::Query(QueryError::NotScalar { .. })) => {}
        other => panic!("a list is not a scalar, got {other:?}"),
    }
}

async fn inline_projection_is_read_as_soon_as_process_returns(store: Arc<dyn Store>) {
    // Background delivery, no workers: only what committed with the command is there.
    let domain = domain(store, DeliveryMode::Background);
    let id = account();
    domain.process(Charge { id: id.clone(), owner: "dee".into(), cents: 12 }).await.unwrap().all_delivered().unwrap();
    let total = domain.projection::<OwnerTotal>("dee").await.unwrap().expect("written with the command");
    assert_eq!((total.total, total.charges), (12, 1));
    assert_eq!(domain.projection::<AccountView>(&id).await.unwrap(), None, "the async one waits for the workers");
    // The workers deliver it; AccountView, first seen by them over a log that has an
    // event, is also built from the log: either way the row appears, once.
    let handle = domain.workers(WorkerConfig::default()).start().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let view = loop {
        if let Some(view) = domain.projection::<AccountView>(&id).await.unwrap() {
            break view;
        }
        assert!(tokio::time::Instant::now() < deadline, "the async projection never caught up");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    settled(&domain).await;
    handle.shutdown().await;
    assert_eq!((view.balance, view.numbers), (12, vec![1]));
}

async fn a_failing_inline_projector_rejects_the_unit_of_work(store: Arc<dyn Store>) {
    let domain = domain(store, DeliveryMode::Inline);
    let id = account();
    charge(&domain, &id, "eve", 1).await;
    let refused = domain.process(Charge { id: id.clone(), owner: "eve".into(), cents: REFUSED_CENTS }).await;
    // The command the caller sent is refused, with the projector and the event that
    // refused it (before, `Account.Charged` was named as if the event had been sent).
    let Err(error) = refused else { panic!("the charge is refused") };
    let ProcessError::RejectedByProjector { type_name, projector, error: why } = &error else {
        panic!("refused by the projector: {error:?}")
    };
    let named = (*type_name, projector.name(), projector.type_name());
    assert_eq!(named, ("Account.Charge", "OwnerTotals::charged", "Account.Charged"));
    assert_eq!(why, &DomainError::rule("the owner totals refuse this charge"));
    assert_eq!(
        error.to_string(),
        "`Account.Charge` was rejected: the inline projector `OwnerTotals::charged` refused the event \
         `Account.Charged` it raised: the owner totals refuse this charge"
    );
    assert_eq!(error.rejection(), Some(&DomainError::rule("the owner totals refuse this charge")));
    assert_eq!(domain.get(&id).await.unwrap().unwrap().charges, 1, "nothing of the unit was written");
    assert_eq!(domain.events_of(&id).await.unwrap().len(), 1);
    assert_eq!(domain.projection::<OwnerTotal>("eve").await.unwrap().unwrap().total, 1);
}

async fn many_streams_changing_one_inline_row_lose_no_update(store: Arc<dyn Store>) {
    let domain = domain(store, DeliveryMode::Inline);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let domain = domain.clone();
        tasks.spawn(async move {
            let id = account();
            for _ in 0..10 {
                charge(&domain, &id, "fay", 1).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let total = domain.projection::<OwnerTotal>("fay").await.unwrap().unwrap();
    assert_eq!((total.total, total.charges), (80, 80), "a row conflict reruns the unit; no update is lost");
}

async fn an_incremental_projection_equals_its_rebuild(store: Arc<dyn Store>) {
    let domain = domain(store, DeliveryMode::Inline);
    for n in 0..30 {
        let id = account();
        for cents in 0..(n % 4 + 1) {
            charge(&domain, &id, ["gus", "hal", "ida"][n % 3], cents as i64 * 3 + 1).await;
        }
    }
    let views = all::<AccountView>(&domain, "balance").await;
    let totals = all::<OwnerTotal>(&domain, "total").await;
    assert_eq!(views.len(), 30);
    let mut seen = Vec::new();
    let report = domain
        .rebuild::<AccountView>()
        .batch(7)
        .on_progress(move |p| seen.push((p.done, p.total)))
        .run()
        .await
        .unwrap()
        .expect("no other builder");
    let charges: usize = (0..30).map(|n| n % 4 + 1).sum();
    assert_eq!((report.generation, report.events), (2, charges as u64));
    let inline = domain.rebuild::<OwnerTotal>().run().await.unwrap().unwrap();
    assert_eq!(inline.generation, 2);
    assert_eq!(all::<AccountView>(&domain, "balance").await, views);
    assert_eq!(all::<OwnerTotal>(&domain, "total").await, totals);
    // The rebuilt copies take live updates.
    let id = account();
    charge(&domain, &id, "gus", 1_000).await;
    assert_eq!(domain.projection::<AccountView>(&id).await.unwrap().unwrap().balance, 1_000);
    let status = domain.projection_status::<AccountView>().await.unwrap();
    assert_eq!((status.generation, status.build.is_none()), (2, true));
}

async fn a_dry_run_changes_nothing_and_a_cancelled_rebuild_keeps_the_serving_copy(store: Arc<dyn Store>) {
    let domain = domain(store, DeliveryMode::Inline);
    let owners = ["jan", "kim"];
    for n in 0..20 {
        charge(&domain, &account(), owners[n % 2], 5).await;
    }
    let totals = all::<OwnerTotal>(&domain, "total").await;
    let before = domain.projection_status::<OwnerTotal>().await.unwrap();

    // A dry run says what a rebuild would do, and changes nothing.
    let plan = domain.rebuild_by_name("OwnerTotal").unwrap().dry_run().await.unwrap();
    assert_eq!(plan.projection, "OwnerTotal");
    assert_eq!((plan.serving_version, plan.declared_version), (Some(before.version), before.declared_version));
    assert_eq!((plan.serving_generation, plan.from_position, plan.events), (before.generation, 0, 20));
    assert!(plan.resumes.is_none() && !plan.busy);
    let later = domain.rebuild_by_name("OwnerTotal").unwrap().from_position(5).dry_run().await.unwrap();
    assert_eq!((later.from_position, later.events), (5, 15));
    assert_eq!(domain.projection_status::<OwnerTotal>().await.unwrap(), before);

    // Stopped before it starts: nothing done.
    let end = domain.rebuild::<OwnerTotal>().run_until(std::future::ready(())).await.unwrap();
    assert!(matches!(end, RebuildEnd::Cancelled(ref p) if p.done == 0), "{end:?}");
    assert_eq!(domain.projection_status::<OwnerTotal>().await.unwrap(), before);

    // Stopped after its first batch: the old copy still serves, with every row.
    let (tell, told) = tokio::sync::oneshot::channel::<()>();
    let mut tell = Some(tell);
    let end = domain
        .rebuild::<OwnerTotal>()
        .batch(4)
        .lease(Duration::from_millis(50))
        .on_progress(move |_| drop(tell.take()))
        .run_until(async move {
            let _ = told.await;
        })
        .await
        .unwrap();
    let RebuildEnd::Cancelled(progress) = end else { panic!("cancelled, not {end:?}") };
    assert_eq!((progress.done, progress.total), (4, 20));
    let status = domain.projection_status::<OwnerTotal>().await.unwrap();
    assert_eq!(status.generation, before.generation, "the old copy serves");
    assert_eq!(status.build.as_ref().map(|b| b.position), Some(4), "the copy filled so far is kept");
    assert_eq!(all::<OwnerTotal>(&domain, "total").await, totals);
    let plan = domain.rebuild::<OwnerTotal>().lease(Duration::from_secs(3600)).dry_run().await.unwrap();
    assert!(plan.busy && plan.resumes.is_some(), "{plan:?}");

    // Once its lease ran out, the next rebuild resumes it and switches.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let end = domain.rebuild::<OwnerTotal>().lease(Duration::from_millis(50)).run_until(std::future::pending()).await;
    let RebuildEnd::Switched(report) = end.unwrap() else { panic!("switched") };
    assert_eq!(report.events, 16, "resumed after the first batch");
    assert_eq!(all::<OwnerTotal>(&domain, "total").await, totals);

    // A projection named by text that the domain does not have.
    let error = domain.rebuild_by_name("NoSuchView").unwrap_err();
    assert!(
        matches!(&error, ProcessError::Query(QueryError::UnknownProjection { name, known })
            if name == "NoSuchView" && known.contains(&"OwnerTotal") && known.contains(&"AccountView")),
        "{error:?}"
    );
}

async fn a_rebuild_from_a_position_applies_only_later_events(store: Arc<dyn Store>) {
    let domain = domain(store, DeliveryMode::Inline);
    for owner in ["lee", "lee", "max", "max", "max"] {
        charge(&domain, &account(), owner, 10).await;
    }
    let report = domain.rebuild::<OwnerTotal>().from_position(2).run().await.unwrap().expect("rebuilt");
    assert_eq!(report.events, 3);
    let totals: Vec<(String, i64)> =
        all::<OwnerTotal>(&domain, "total").await.into_iter().map(|t| (t.owner, t.total)).collect();
    assert_eq!(totals, [("max".to_owned(), 30)], "rows only earlier events wrote are not in the new copy");
}

async fn a_rebuild_under_writes_loses_nothing_and_never_serves_a_half_built_copy(store: Arc<dyn Store>) {
    let domain = domain(store, DeliveryMode::Background);
    // Known to the store before any event: nothing for the workers to build at start.
    domain.projection_status::<AccountView>().await.unwrap();
    let handle = domain.workers(WorkerConfig::default().poll_interval(Duration::from_millis(20))).start().unwrap();
    let ids: Vec<_> = (0..20).map(|_| account()).collect();
    for id in &ids {
        for _ in 0..5 {
            domain
                .process(Charge { id: id.clone(), owner: "jo".into(), cents: 1 })
                .await
                .unwrap()
                .all_delivered()
                .unwrap();
        }
    }
    settled(&domain).await;
    let stop = Arc::new(AtomicBool::new(false));
    // Writers keep charging while the rebuild runs.
    let writers = {
        let (domain, ids, stop) = (domain.clone(), ids.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut written = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let id = &ids[written as usize % ids.len()];
                domain
                    .process(Charge { id: id.clone(), owner: "jo".into(), cents: 1 })
                    .await
                    .unwrap()
                    .all_delivered()
                    .unwrap();
                written += 1;
            }
            written
        })
    };
    // Readers never see fewer rows, or a lower total, than before: no half-built copy.
    let readers = {
        let (domain, stop) = (domain.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut reads = 0;
            loop {
                let rows = all::<AccountView>(&domain, "balance").await;
                assert_eq!(rows.len(), 20, "a served copy has every account");
                assert!(rows.iter().all(|r| r.balance >= 5), "a served copy has every row complete");
                let total = domain.projection::<OwnerTotal>("jo").await.unwrap().unwrap();
                assert!(total.total >= 100);
                reads += 1;
                if stop.load(Ordering::SeqCst) {
                    break reads;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let views = domain.rebuild::<AccountView>().batch(10).run().await.unwrap().expect("rebuilt");
    let totals = domain.rebuild::<OwnerTotal>().batch(10).run().await.unwrap().expect("rebuilt");
    stop.store(true, Ordering::SeqCst);
    let written = writers.await.unwrap();
    let reads = readers.await.unwrap();
    assert!(reads > 0);
    settled(&domain).await;
    handle.shutdown().await;
    assert_eq!((views.generation, totals.generation), (2, 2));
    let rows = all::<AccountView>(&domain, "balance").await;
    let balances: i64 = rows.iter().map(|r| r.balance).sum();
    assert_eq!(balances, 100 + written as i64, "every charge is in the rebuilt copy once");
    for row in &rows {
        let expected: Vec<u32> = (1..=row.balance as u32).collect();
        assert_eq!(row.numbers, expected, "in stream order, once each");
    }
    let total = domain.projection::<OwnerTotal>("jo").await.unwrap().unwrap();
    assert_eq!((total.total, total.charges as u64), (100 + written as i64, 100 + written));
}

async fn an_outdated_or_never_built_projection_is_rebuilt(store: Arc<dyn Store>) {
    // Events written by a domain without the projections...
    let plain = Domain::builder()
        .module(module_path!().to_string() + "::books::accounts")
        .shared_store(Arc::clone(&store))
        .build()
        .unwrap();
    let id = account();
    for _ in 0..3 {
        plain.process(Charge { id: id.clone(), owner: "kim".into(), cents: 2 }).await.unwrap().all_delivered().unwrap();
    }
    // ... and an older version of the owner totals, with a stale row.
    let spec = ProjectionSpec { name: "OwnerTotal".into(), version: 0, indexed: vec![] };
    store.register_projection(spec).await.unwrap();
    let stale = protean::store::RowChange {
        projection: "OwnerTotal".into(),
        generation: 1,
        key: "nobody".into(),
        expected_version: 0,
        json: Some(r#"{"owner":"nobody","total":1,"charges":1}"#.into()),
    };
    store.commit(protean::store::Batch { rows: vec![stale], ..Default::default() }).await.unwrap();

    let domain = domain(store, DeliveryMode::Inline);
    let status = domain.projection_status::<OwnerTotal>().await.unwrap();
    assert_eq!((status.version, status.declared_version), (0, 1));
    assert_eq!(domain.projection::<AccountView>(&id).await.unwrap(), None, "never built yet");
    let mut rebuilt: Vec<_> =
        domain.rebuild_outdated().await.unwrap().into_iter().map(|r| (r.projection, r.events)).collect();
    rebuilt.sort();
    assert_eq!(rebuilt, [("AccountView", 3), ("OwnerTotal", 3)]);
    assert_eq!(domain.projection::<AccountView>(&id).await.unwrap().unwrap().numbers, [1, 2, 3]);
    assert_eq!(domain.projection::<OwnerTotal>("kim").await.unwrap().unwrap().total, 6);
    assert_eq!(domain.projection::<OwnerTotal>("nobody").await.unwrap(), None, "the old copy is gone");
    assert_eq!(domain.projection_status::<OwnerTotal>().await.unwrap().version, 1);
    assert!(domain.rebuild_outdated().await.unwrap().is_empty(), "nothing left to rebuild");
}

/// Writes row `key` of the serving copy `generation` of the owner totals as `json`,
/// over the row's `version`.
async fn write_row(store: &dyn Store, generation: u64, key: &str, version: u64, json: String) {
    let row = RowChange {
        projection: "OwnerTotal".into(),
        generation,
        key: key.into(),
        expected_version: version,
        json: Some(json.into()),
    };
    store.commit(Batch { rows: vec![row], ..Default::default() }).await.unwrap();
}

/// The unreadable row of an error, with its message.
fn unreadable(error: ProcessError) -> (String, u64, Option<OutdatedCopy>, String) {
    let message = error.to_string();
    match error {
        ProcessError::Store(StoreError::UnreadableRow { projection, key, version, outdated, .. }) => {
            assert_eq!(projection, "OwnerTotal");
            (key, version, outdated, message)
        }
        other => panic!("expected an unreadable row, got: {other}"),
    }
}

async fn a_row_the_new_version_cannot_read_says_what_to_do_until_the_rebuild_switches(store: Arc<dyn Store>) {
    // Version 0 of the owner totals kept `sum`, not `total`; its row was written twice.
    let spec = ProjectionSpec { name: "OwnerTotal".into(), version: 0, indexed: vec![] };
    store.register_projection(spec).await.unwrap();
    for version in 0..2 {
        write_row(store.as_ref(), 1, "lee", version, format!(r#"{{"owner":"lee","sum":{version}}}"#)).await;
    }
    let domain = domain(Arc::clone(&store), DeliveryMode::Inline);
    let pending = Some(OutdatedCopy { serving: 0, declared: 1, rebuilding: false });

    // Read by key, by a query, or by the inline projector of a command: each says what
    // the number is (a row version, not a log position) and what to do in the window.
    let (key, version, outdated, message) = unreadable(domain.projection::<OwnerTotal>("lee").await.unwrap_err());
    assert_eq!((key.as_str(), version, outdated), ("lee", 2, pending));
    assert!(
        message.starts_with(
            "row `lee` of projection `OwnerTotal` (row version 2) does not read as `OwnerTotal`: missing field `total`"
        ),
        "{message}"
    );
    assert!(
        message.ends_with(
            "; the copy of `OwnerTotal` serving reads was built by version 0, and this code declares version 1: \
             until a rebuild switches to a copy of version 1, rows of the old copy that the new shape cannot read \
             fail like this one; no rebuild to version 1 has started: run `Domain::rebuild_outdated` (delivery \
             workers run it when they start) and let it finish"
        ),
        "{message}"
    );
    assert_eq!(unreadable(domain.query::<OwnerTotal>().fetch().await.unwrap_err()).2, pending);
    let id = account();
    let charged = domain.process(Charge { id: id.clone(), owner: "lee".into(), cents: 3 }).await;
    assert_eq!(unreadable(charged.unwrap_err()).2, pending, "the projector's read of the row");
    assert_eq!(domain.get(&id).await.unwrap(), None, "nothing of the unit was written");

    // A rebuild to version 1 under way (its builder silent): wait for it.
    store.begin_build("OwnerTotal", 1, Duration::from_secs(30)).await.unwrap().expect("a build begins");
    let (_, _, outdated, message) = unreadable(domain.projection::<OwnerTotal>("lee").await.unwrap_err());
    assert_eq!(outdated, Some(OutdatedCopy { serving: 0, declared: 1, rebuilding: true }));
    assert!(
        message.ends_with(
            "a rebuild to version 1 is under way: wait for it to switch (`Domain::projection_status` shows how far it got)"
        ),
        "{message}"
    );

    // Once it switched, the row of the old copy is gone; a row of the serving copy that
    // does not read is reported without the advice.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = domain.rebuild::<OwnerTotal>().lease(Duration::from_millis(10)).run().await.unwrap().expect("rebuilt");
    assert_eq!(domain.projection::<OwnerTotal>("lee").await.unwrap(), None);
    write_row(store.as_ref(), report.generation, "lou", 0, r#"{"owner":"lou"}"#.into()).await;
    let (key, version, outdated, message) = unreadable(domain.projection::<OwnerTotal>("lou").await.unwrap_err());
    assert_eq!((key.as_str(), version, outdated), ("lou", 1, None));
    assert!(message.contains("missing field `total`") && !message.contains("rebuild"), "{message}");
}

fn cases() -> Vec<(&'static str, StoreCase)> {
    vec![
        ("async_projector_follows_each_stream_in_order", |s| Box::pin(async_projector_follows_each_stream_in_order(s))),
        ("queries_filter_order_and_page_in_the_store", |s| Box::pin(queries_filter_order_and_page_in_the_store(s))),
        ("inline_projection_is_read_as_soon_as_process_returns", |s| {
            Box::pin(inline_projection_is_read_as_soon_as_process_returns(s))
        }),
        ("a_failing_inline_projector_rejects_the_unit_of_work", |s| {
            Box::pin(a_failing_inline_projector_rejects_the_unit_of_work(s))
        }),
        ("many_streams_changing_one_inline_row_lose_no_update", |s| {
            Box::pin(many_streams_changing_one_inline_row_lose_no_update(s))
        }),
        ("an_incremental_projection_equals_its_rebuild", |s| Box::pin(an_incremental_projection_equals_its_rebuild(s))),
        ("a_dry_run_changes_nothing_and_a_cancelled_rebuild_keeps_the_serving_copy", |s| {
            Box::pin(a_dry_run_changes_nothing_and_a_cancelled_rebuild_keeps_the_serving_copy(s))
        }),
        ("a_rebuild_from_a_position_applies_only_later_events", |s| {
            Box::pin(a_rebuild_from_a_position_applies_only_later_events(s))
        }),
        ("a_rebuild_under_writes_loses_nothing_and_never_serves_a_half_built_copy", |s| {
            Box::pin(a_rebuild_under_writes_loses_nothing_and_never_serves_a_half_built_copy(s))
        }),
        ("an_outdated_or_never_built_projection_is_rebuilt", |s| {
            Box::pin(an_outdated_or_never_built_projection_is_rebuilt(s))
        }),
        ("a_row_the_new_version_cannot_read_says_what_to_do_until_the_rebuild_switches", |s| {
            Box::pin(a_row_the_new_version_cannot_read_says_what_to_do_until_the_rebuild_switches(s))
        }),
    ]
}

fn main() -> ExitCode {
    harness::run(harness::every_store("projections", cases, 16))
}
