//! Process managers: the fulfilment flow in the test kit (given events, then the
//! commands sent and whether it ended) and end to end on every store the build has —
//! happy path, compensation after a deadline, a restock that cancels the deadline,
//! a duplicate delivery that sends nothing twice, and deadlines fired by workers; and
//! `Domain::check` reading what the store holds: events never stored, and a scheduled
//! command a later build no longer has.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use protean::prelude::*;
use protean::registry::{CheckConfig, Severity};
use protean::runtime::{DeliveryMode, WorkerConfig};
use protean::store::{MemoryStore, OffsetDateTime, Store};
use protean::testing::FlowScenario;

#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "support/shop.rs"]
mod shop;

use harness::StoreCase;
use shop::*;

/// A later build of the service on the same store: the shop is gone, and with it the
/// `CancelOrder` a flow scheduled.
#[allow(dead_code)]
mod later {
    use protean::prelude::*;

    #[aggregate]
    pub struct Shelf {
        pub count: u64,
    }
}

fn domain_on(store: Arc<dyn Store>, mode: DeliveryMode) -> Domain {
    Domain::builder()
        .module(module_path!().to_string() + "::shop")
        .shared_store(store)
        .delivery(mode)
        .build()
        .expect("the shop model is valid")
}

fn kit() -> Domain {
    domain_on(Arc::new(MemoryStore::new()), DeliveryMode::Inline)
}

struct Ids {
    order: Identifier<Order>,
    customer: Identifier<Customer>,
    sku: Identifier<Stock>,
}

fn ids() -> Ids {
    Ids { order: Identifier::generate(), customer: Identifier::generate(), sku: Identifier::generate() }
}

fn placed(ids: &Ids) -> OrderPlaced {
    OrderPlaced { order_id: ids.order.clone(), customer: ids.customer.clone(), sku: ids.sku.clone() }
}

// --- the test kit -------------------------------------------------------------------

async fn kit_happy_path() {
    let ids = ids();
    FlowScenario::<Fulfilment>::new(kit(), &ids.order)
        .when(placed(&ids))
        .await
        .then_sent(&[ReserveStock { sku: ids.sku.clone(), order_id: ids.order.clone() }])
        .then_running();
    FlowScenario::<Fulfilment>::new(kit(), &ids.order)
        .given(placed(&ids))
        .when(StockReserved { sku: ids.sku.clone(), order_id: ids.order.clone() })
        .await
        .then_sent(&[ConfirmOrder { order_id: ids.order.clone() }])
        .then_running();
    let outcome = FlowScenario::<Fulfilment>::new(kit(), &ids.order)
        .given(placed(&ids))
        .given(StockReserved { sku: ids.sku.clone(), order_id: ids.order.clone() })
        .when(OrderConfirmed { order_id: ids.order.clone() })
        .await;
    outcome.then_nothing_sent().then_ended();
    assert_eq!(outcome.state().unwrap().stage, "confirmed");
}

async fn kit_compensation_and_deadline() {
    let ids = ids();
    let outcome = FlowScenario::<Fulfilment>::new(kit(), &ids.order)
        .given(placed(&ids))
        .when(ReservationFailed { sku: ids.sku.clone(), order_id: ids.order.clone() })
        .await;
    let cancel = CancelOrder { order_id: ids.order.clone(), reason: "no restock in time".into() };
    outcome.then_scheduled("restock", &cancel).then_sent::<CancelOrder>(&[]).then_running();
    let due = outcome.deadline("restock").expect("a deadline");
    let wait = due - OffsetDateTime::now_utc();
    assert!((59..=60).contains(&wait.whole_minutes()), "{wait}");
    // A restock in time cancels the deadline.
    FlowScenario::<Fulfilment>::new(kit(), &ids.order)
        .given(placed(&ids))
        .given(ReservationFailed { sku: ids.sku.clone(), order_id: ids.order.clone() })
        .when(StockReserved { sku: ids.sku.clone(), order_id: ids.order.clone() })
        .await
        .then_sent(&[ConfirmOrder { order_id: ids.order.clone() }])
        .then_nothing_scheduled();
    // Cancelled: the points are withdrawn and the flow ends.
    FlowScenario::<Fulfilment>::new(kit(), &ids.order)
        .given(placed(&ids))
        .given(ReservationFailed { sku: ids.sku.clone(), order_id: ids.order.clone() })
        .when(OrderCancelled { order_id: ids.order.clone(), customer: ids.customer.clone() })
        .await
        .then_sent(&[WithdrawPoints {
            customer: ids.customer.clone(),
            order_id: ids.order.clone(),
            points: POINTS_PER_ORDER,
        }])
        .then_nothing_scheduled()
        .then_ended();
}

async fn kit_duplicate_delivery_sends_once() {
    let ids = ids();
    FlowScenario::<Fulfilment>::new(kit(), &ids.order)
        .when_delivered_twice(placed(&ids))
        .await
        .then_sent(&[ReserveStock { sku: ids.sku.clone(), order_id: ids.order.clone() }]);
    // An event for a flow that never started is ignored.
    FlowScenario::<Fulfilment>::new(kit(), &ids.order)
        .when(OrderConfirmed { order_id: ids.order.clone() })
        .await
        .then_nothing_sent()
        .then_not_started();
}

// --- end to end, on every store -------------------------------------------------------

async fn place(domain: &Domain, ids: &Ids) {
    domain
        .process(PlaceOrder { order_id: ids.order.clone(), customer: ids.customer.clone(), sku: ids.sku.clone() })
        .await
        .unwrap()
        .all_delivered()
        .unwrap();
}

async fn status(domain: &Domain, ids: &Ids) -> String {
    domain.get(&ids.order).await.unwrap().unwrap().status
}

async fn in_stock_the_order_is_confirmed(store: Arc<dyn Store>) {
    let domain = domain_on(store, DeliveryMode::Inline);
    let ids = ids();
    domain.process(Restock { sku: ids.sku.clone(), quantity: 1 }).await.unwrap().all_delivered().unwrap();
    place(&domain, &ids).await;
    assert_eq!(status(&domain, &ids).await, "confirmed");
    let (flow, ended) = domain.flow::<Fulfilment>(&ids.order.to_string()).await.unwrap().unwrap();
    assert_eq!((flow.stage.as_str(), ended), ("confirmed", true));
    assert!(domain.pending_commands::<Fulfilment>(&ids.order.to_string()).await.unwrap().is_empty());
    // The commands carry the conversation: the confirmation is correlated with the order.
    let events = domain.events_of(&ids.order).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].correlation_id, events[0].correlation_id);
}

async fn out_of_stock_the_deadline_cancels_and_compensates(store: Arc<dyn Store>) {
    let domain = domain_on(store, DeliveryMode::Inline);
    let ids = ids();
    place(&domain, &ids).await;
    assert_eq!(status(&domain, &ids).await, "placed");
    let key = ids.order.to_string();
    let pending = domain.pending_commands::<Fulfilment>(&key).await.unwrap();
    assert_eq!(pending.iter().map(|s| s.name.as_deref()).collect::<Vec<_>>(), [Some("restock")]);
    // Not due yet: nothing fires.
    assert_eq!(domain.fire_due_commands().await.unwrap().fired, 0);
    let later = OffsetDateTime::now_utc() + RESTOCK_WAIT + Duration::from_secs(60);
    let fired = domain.fire_due_commands_at(later).await.unwrap();
    assert_eq!(fired.fired, 1);
    assert_eq!(status(&domain, &ids).await, "cancelled");
    assert_eq!(domain.get(&ids.customer).await.unwrap().unwrap().points, -POINTS_PER_ORDER);
    let (flow, ended) = domain.flow::<Fulfilment>(&key).await.unwrap().unwrap();
    assert_eq!((flow.stage.as_str(), ended), ("cancelled", true));
    assert!(domain.pending_commands::<Fulfilment>(&key).await.unwrap().is_empty());
}

async fn a_restock_in_time_confirms_and_cancels_the_deadline(store: Arc<dyn Store>) {
    let domain = domain_on(store, DeliveryMode::Inline);
    let ids = ids();
    place(&domain, &ids).await;
    domain.process(Restock { sku: ids.sku.clone(), quantity: 3 }).await.unwrap().all_delivered().unwrap();
    assert_eq!(status(&domain, &ids).await, "confirmed");
    let key = ids.order.to_string();
    assert!(domain.pending_commands::<Fulfilment>(&key).await.unwrap().is_empty(), "the deadline was cancelled");
    let later = OffsetDateTime::now_utc() + RESTOCK_WAIT * 2;
    assert_eq!(domain.fire_due_commands_at(later).await.unwrap().fired, 0);
    assert_eq!(domain.get(&ids.sku).await.unwrap().unwrap().available, 2);
}

async fn a_duplicate_delivery_sends_no_second_command(store: Arc<dyn Store>) {
    let domain = domain_on(store, DeliveryMode::Inline);
    let ids = ids();
    domain.process(Restock { sku: ids.sku.clone(), quantity: 5 }).await.unwrap().all_delivered().unwrap();
    place(&domain, &ids).await;
    // The order's events delivered again, as after a crash before they were marked.
    let events = domain.events_of(&ids.order).await.unwrap();
    assert!(domain.deliver(events).await.failures.is_empty());
    assert_eq!(domain.get(&ids.sku).await.unwrap().unwrap().available, 4, "one reservation, not two");
    assert_eq!(status(&domain, &ids).await, "confirmed");
}

async fn workers_fire_sent_commands_and_deadlines(store: Arc<dyn Store>) {
    let domain = domain_on(store, DeliveryMode::Background);
    // Workers that never poll: commits and deadlines wake them.
    let handle = domain.workers(WorkerConfig::default().poll_interval(Duration::from_secs(3600))).start().unwrap();
    let ids = ids();
    quick_deadline(&ids.order);
    domain
        .process(PlaceOrder { order_id: ids.order.clone(), customer: ids.customer.clone(), sku: ids.sku.clone() })
        .await
        .unwrap()
        .all_delivered()
        .unwrap();
    // Out of stock: the flow waits 50 ms, then the workers fire the cancellation, and
    // the flow withdraws the points.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let points = domain.get(&ids.customer).await.unwrap().map(|c| c.points);
        if points == Some(-POINTS_PER_ORDER) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the deadline never fired");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status(&domain, &ids).await, "cancelled");
    // The worker that fired the withdrawal takes it off the pending list just after its
    // commit (see `Domain::pending_commands`): the list empties, shortly.
    let key = ids.order.to_string();
    loop {
        let pending = domain.pending_commands::<Fulfilment>(&key).await.unwrap();
        if pending.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "fired commands stay pending: {pending:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let report = handle.shutdown().await;
    assert_eq!(report.commands_fired, 3, "reserve, cancel, withdraw: {report:?}");
}

async fn check_reads_what_the_store_holds(store: Arc<dyn Store>) {
    let domain = domain_on(store.clone(), DeliveryMode::Inline);
    let facts = domain.store_facts().await.unwrap();
    assert!(facts.events.values().all(|&n| n == 0) && facts.scheduled.is_empty(), "{facts:?}");
    let ids = ids();
    // Out of stock: the reservation fails, and the flow schedules `CancelOrder`.
    place(&domain, &ids).await;
    let facts = domain.store_facts().await.unwrap();
    assert_eq!(facts.events.get(OrderPlaced::TYPE_NAME), Some(&1), "{facts:?}");
    assert_eq!(facts.scheduled.get(CancelOrder::TYPE_NAME), Some(&1), "{facts:?}");
    let found = domain.check(&CheckConfig::default().store_facts(facts));
    let of = |code: &str| found.iter().filter(|d| d.code == code).map(|d| d.element.as_str()).collect::<Vec<_>>();
    assert_eq!(of("W003"), ["OrderCancelled", "OrderConfirmed", "PointsWithdrawn", "StockReserved"], "{found:#?}");
    assert!(of("E004").is_empty(), "this build handles what it scheduled: {found:#?}");

    // A later build without the shop: the pending `CancelOrder` would never fire.
    let later = Domain::builder()
        .module(module_path!().to_string() + "::later")
        .shared_store(store)
        .build()
        .expect("the later model runs");
    let found = later.check(&CheckConfig::default().store_facts(later.store_facts().await.unwrap()));
    let e004: Vec<_> = found.iter().filter(|d| d.code == "E004").collect();
    assert_eq!(e004.len(), 1, "{found:#?}");
    assert_eq!((e004[0].element.as_str(), e004[0].severity), (CancelOrder::TYPE_NAME, Severity::Error));
    assert!(e004[0].message.starts_with("the store holds 1 pending scheduled command(s) of type"), "{found:#?}");
}

fn cases() -> Vec<(&'static str, StoreCase)> {
    vec![
        ("check_reads_what_the_store_holds", |s| Box::pin(check_reads_what_the_store_holds(s))),
        ("in_stock_the_order_is_confirmed", |s| Box::pin(in_stock_the_order_is_confirmed(s))),
        ("out_of_stock_the_deadline_cancels_and_compensates", |s| {
            Box::pin(out_of_stock_the_deadline_cancels_and_compensates(s))
        }),
        ("a_restock_in_time_confirms_and_cancels_the_deadline", |s| {
            Box::pin(a_restock_in_time_confirms_and_cancels_the_deadline(s))
        }),
        ("a_duplicate_delivery_sends_no_second_command", |s| Box::pin(a_duplicate_delivery_sends_no_second_command(s))),
        ("workers_fire_sent_commands_and_deadlines", |s| Box::pin(workers_fire_sent_commands_and_deadlines(s))),
    ]
}

fn main() -> ExitCode {
    let mut trials = vec![
        harness::test("kit::happy_path", kit_happy_path),
        harness::test("kit::compensation_and_deadline", kit_compensation_and_deadline),
        harness::test("kit::duplicate_delivery_sends_once", kit_duplicate_delivery_sends_once),
    ];
    trials.extend(harness::every_store("flows", cases, 8));
    harness::run(trials)
}
