//! The test kit on the examples' models: given / when / then, for command handlers,
//! event handlers, projections and the fulfilment process manager, with no database.

use std::time::Duration;

use crate::ecommerce::*;
use protean::prelude::*;
use protean::store::OffsetDateTime;
use protean::testing::{FlowScenario, Scenario};

fn shop() -> Scenario {
    Scenario::new(Domain::builder().module(crate::example("ecommerce")).build().unwrap())
}

fn sku(text: &str) -> Identifier<Inventory> {
    Identifier::parse(text).unwrap()
}

fn euros(cents: i64) -> Money {
    Money::new(cents, "EUR").unwrap()
}

fn place(order_id: &Identifier<Order>, customer: &Identifier<Customer>, sku: &str, quantity: u32) -> PlaceOrder {
    PlaceOrder {
        order_id: order_id.clone(),
        customer_id: customer.clone(),
        customer_name: "Ada".into(),
        customer_email: "ada@example.com".into(),
        lines: vec![OrderLine::new(sku, quantity, euros(1250)).unwrap()],
        shipping_address: None,
    }
}

#[tokio::test]
async fn placing_an_order_raises_order_placed_with_its_lines_and_total() {
    let (order, ada) = (Identifier::generate(), Identifier::generate());
    let outcome =
        shop().given(Restock { sku: sku("BOOK-1"), quantity: 5 }).when(place(&order, &ada, "BOOK-1", 2)).await;
    outcome.then_events([OrderPlaced {
        order_id: order.clone(),
        customer_id: ada.clone(),
        lines: vec![OrderLine::new("BOOK-1", 2u32, euros(1250)).unwrap()],
        total: euros(2500),
    }
    .into()]);
    outcome.then_event_types(&["Order.OrderPlaced", "Inventory.StockReserved", "CustomerLoyalty.LoyaltyPointsAdded"]);
    outcome.then_no_failures();
    // Every line reserved: the fulfilment flow confirmed the order.
    outcome.then_state(&order, |o: &Order| assert_eq!(o.status, OrderStatus::Confirmed));
}

#[tokio::test]
async fn an_order_without_lines_is_refused_with_every_bad_field() {
    let mut command = place(&Identifier::generate(), &Identifier::generate(), "BOOK-1", 1);
    command.lines.clear();
    command.customer_email = "a".into();
    shop().when(command).await.then_invalid(&[
        ("lines", "must have at least 1 item, has 0"),
        ("customer_email", "must have at least 3 characters, has 1"),
    ]);
}

#[tokio::test]
async fn an_order_cannot_be_placed_twice() {
    let (order, ada) = (Identifier::generate(), Identifier::generate());
    shop()
        .given(Restock { sku: sku("BOOK-1"), quantity: 5 })
        .given(place(&order, &ada, "BOOK-1", 1))
        .when(place(&order, &ada, "BOOK-1", 1))
        .await
        .then_rejected_by_rule(&format!("order {order} was already placed"));
}

#[tokio::test]
async fn the_inventory_handler_reserves_stock_for_a_placed_order() {
    let (order, ada) = (Identifier::generate(), Identifier::<Customer>::generate());
    let stock = Inventory::builder().id(sku("BOOK-1")).available(5u32).build().unwrap();
    let placed = OrderPlaced {
        order_id: order.clone(),
        customer_id: ada.clone(),
        lines: vec![OrderLine::new("BOOK-1", 2u32, euros(1250)).unwrap()],
        total: euros(2500),
    };
    let outcome = shop().given_state(stock).when_event(placed).await;
    outcome.then_events([
        StockReserved { sku: "BOOK-1".into(), order_id: order.clone(), quantity: 2 }.into(),
        LoyaltyPointsAdded { customer_id: ada, points: 25, balance: 25 }.into(),
    ]);
    outcome.then_state(&sku("BOOK-1"), |s: &Inventory| assert_eq!((s.available, s.reserved), (5, 2)));
}

#[tokio::test]
async fn out_of_stock_is_compensated_by_an_order_awaiting_restock() {
    let (order, ada) = (Identifier::generate(), Identifier::generate());
    let outcome = shop().given(Restock { sku: sku("PEN-1"), quantity: 1 }).when(place(&order, &ada, "PEN-1", 3)).await;
    outcome.then_event_types(&[
        "Order.OrderPlaced",
        "Inventory.StockReservationFailed",
        "CustomerLoyalty.LoyaltyPointsAdded",
        "Order.OrderAwaitingRestock",
    ]);
    outcome.then_state(&order, |o: &Order| assert_eq!(o.status, OrderStatus::AwaitingRestock));
    outcome.then_state(&sku("PEN-1"), |s: &Inventory| assert_eq!(s.reserved, 0));
}

#[tokio::test]
async fn an_event_handler_that_fails_is_reported_with_its_event() {
    let placed = OrderPlaced {
        order_id: Identifier::generate(),
        customer_id: Identifier::generate(),
        lines: vec![OrderLine::new("NOPE-1", 1u32, euros(100)).unwrap()],
        total: euros(100),
    };
    let outcome = shop().when_event(placed).await;
    let [failure] = outcome.then_delivery_failed() else { panic!("one failure") };
    assert_eq!(failure.handler.name(), "InventoryReactions::reserve");
    assert_eq!(&*failure.event.type_name, "Order.OrderPlaced");
}

#[tokio::test]
async fn completing_tasks_moves_the_project_progress() {
    use crate::project_management::*;
    let domain = Domain::builder().module(crate::example("project_management")).build().unwrap();
    let project = Identifier::<Project>::generate();
    let (first, second) = (Identifier::<Task>::generate(), Identifier::<Task>::generate());
    let outcome = Scenario::new(domain)
        .given(CreateProject { project_id: project.clone(), name: "Launch".into() })
        .given(CreateTask { task_id: first.clone(), project_id: project.clone(), title: "Docs".into() })
        .given(CreateTask { task_id: second, project_id: project.clone(), title: "Tests".into() })
        .when(CompleteTask { task_id: first.clone() })
        .await;
    outcome.then_events([TaskCompleted { task_id: first, project_id: project.clone() }.into()]);
    outcome.then_state(&project, |p: &Project| assert_eq!(p.progress, 50.0));
    // The counts the progress was computed from: a projection, changed with the task events.
    let counts = outcome.domain().projection::<ProjectTaskCounts>(&project).await.unwrap().unwrap();
    assert_eq!((counts.open, counts.done, counts.total()), (1, 1, 2));
    let open = outcome.domain().query::<ProjectTaskCounts>().gt("open", 0).fetch().await.unwrap();
    assert_eq!(open.iter().map(|c| &c.project_id).collect::<Vec<_>>(), [&project]);
}

#[tokio::test]
#[should_panic(expected = "direct events differ")]
async fn a_wrong_expectation_fails_the_test_with_both_sides() {
    let (order, ada) = (Identifier::generate(), Identifier::generate());
    shop()
        .given(Restock { sku: sku("BOOK-1"), quantity: 5 })
        .when(place(&order, &ada, "BOOK-1", 1))
        .await
        .then_events([CustomerRenamed { customer_id: ada, name: "Ada".into() }.into()]);
}

// --- Option 3: the order handler reads the customer's credit from a projection. ---

fn register(customer: &Identifier<Customer>) -> RegisterCustomer {
    RegisterCustomer { customer_id: customer.clone(), name: "Ada".into(), email: "ada@example.com".into() }
}

#[tokio::test]
async fn an_order_of_a_customer_whose_credit_is_suspended_is_refused() {
    let (order, ada) = (Identifier::generate(), Identifier::generate());
    shop()
        .given(Restock { sku: sku("BOOK-1"), quantity: 5 })
        .given(register(&ada))
        .given(SuspendCredit { customer_id: ada.clone(), reason: "unpaid invoices".into() })
        .when(place(&order, &ada, "BOOK-1", 1))
        .await
        .then_rejected_by_rule(&format!("the credit of customer {ada} is suspended (unpaid invoices)"));
    // Restored, the customer may order again.
    shop()
        .given(Restock { sku: sku("BOOK-1"), quantity: 5 })
        .given(register(&ada))
        .given(SuspendCredit { customer_id: ada.clone(), reason: "unpaid invoices".into() })
        .given(RestoreCredit { customer_id: ada.clone() })
        .when(place(&order, &ada, "BOOK-1", 1))
        .await
        .then_no_failures()
        .then_state(&order, |o: &Order| assert_eq!(o.status, OrderStatus::Confirmed));
}

#[tokio::test]
async fn the_credit_limit_counts_the_orders_just_placed_and_frees_what_is_cancelled() {
    let ada = Identifier::<Customer>::generate();
    // The view is inline: the first order's amount is in it when the second is checked.
    let outcome = shop()
        .given(Restock { sku: sku("BOOK-1"), quantity: 5 })
        .given(register(&ada))
        .given(SetCreditLimit { customer_id: ada.clone(), limit_cents: 3000 })
        .given(place(&Identifier::generate(), &ada, "BOOK-1", 2))
        .when(place(&Identifier::generate(), &ada, "BOOK-1", 1))
        .await;
    outcome.then_rejected_by_rule(&format!(
        "an order of 12.50 EUR takes customer {ada} over the credit limit (25.00 of 30.00 used)"
    ));
    let credit = outcome.domain().projection::<CustomerCreditView>(&ada).await.unwrap().unwrap();
    assert_eq!(
        (credit.suspended, credit.limit_cents, credit.outstanding_cents, credit.orders),
        (false, Some(3000), 2500, 1)
    );

    // A cancelled order no longer counts.
    let order = Identifier::generate();
    let outcome = shop()
        .given(Restock { sku: sku("INK-1"), quantity: 1 })
        .given(register(&ada))
        .given(SetCreditLimit { customer_id: ada.clone(), limit_cents: 3000 })
        .given(place(&order, &ada, "INK-1", 2))
        .when(CancelOrder { order_id: order.clone() })
        .await;
    outcome.then_events([OrderCancelled { order_id: order, customer_id: ada.clone(), total: euros(2500) }.into()]);
    let credit = outcome.domain().projection::<CustomerCreditView>(&ada).await.unwrap().unwrap();
    assert_eq!((credit.outstanding_cents, credit.orders), (0, 0));
    let suspended = outcome.domain().query::<CustomerCreditView>().eq("suspended", true).fetch().await.unwrap();
    assert!(suspended.is_empty());
}

// --- The fulfilment flow, alone (FlowScenario), then end to end. ---

fn flow_kit() -> Domain {
    Domain::builder().module(crate::example("ecommerce")).build().unwrap()
}

fn placed_event(order: &Identifier<Order>, customer: &Identifier<Customer>, lines: &[(&str, u32)]) -> OrderPlaced {
    let lines: Vec<OrderLine> =
        lines.iter().map(|(sku, quantity)| OrderLine::new(*sku, *quantity, euros(1250)).unwrap()).collect();
    let cents = lines.iter().map(|l| 1250 * i64::from(*l.quantity())).sum();
    OrderPlaced { order_id: order.clone(), customer_id: customer.clone(), lines, total: euros(cents) }
}

fn reserved(order: &Identifier<Order>, sku: &str, quantity: u32) -> StockReserved {
    StockReserved { sku: sku.into(), order_id: order.clone(), quantity }
}

fn failed(order: &Identifier<Order>, sku: &str, requested: u32) -> StockReservationFailed {
    StockReservationFailed { sku: sku.into(), order_id: order.clone(), requested, free: 0 }
}

#[tokio::test]
async fn the_fulfilment_flow_confirms_once_every_line_is_reserved() {
    let (order, ada) = (Identifier::<Order>::generate(), Identifier::<Customer>::generate());
    let placed = placed_event(&order, &ada, &[("BOOK-1", 2), ("PEN-1", 1)]);
    let outcome = FlowScenario::<Fulfilment>::new(flow_kit(), &order).when(placed.clone()).await;
    outcome.then_nothing_sent().then_running();
    let state = outcome.state().unwrap();
    assert_eq!((state.stage, state.points, state.lines.len()), (FulfilmentStage::Reserving, 37, 2));

    // One line of two: still waiting.
    FlowScenario::<Fulfilment>::new(flow_kit(), &order)
        .given(placed.clone())
        .when(reserved(&order, "BOOK-1", 2))
        .await
        .then_nothing_sent()
        .then_running();
    // Both: confirm.
    FlowScenario::<Fulfilment>::new(flow_kit(), &order)
        .given(placed.clone())
        .given(reserved(&order, "BOOK-1", 2))
        .when(reserved(&order, "PEN-1", 1))
        .await
        .then_sent(&[ConfirmOrder { order_id: order.clone() }])
        .then_nothing_scheduled()
        .then_running();
    // Confirmed: done.
    let outcome = FlowScenario::<Fulfilment>::new(flow_kit(), &order)
        .given(placed.clone())
        .given(reserved(&order, "BOOK-1", 2))
        .given(reserved(&order, "PEN-1", 1))
        .when(OrderConfirmed { order_id: order.clone() })
        .await;
    outcome.then_nothing_sent().then_ended();
    assert_eq!(outcome.state().unwrap().stage, FulfilmentStage::Confirmed);
    // A redelivered event sends nothing twice.
    FlowScenario::<Fulfilment>::new(flow_kit(), &order)
        .given(placed_event(&order, &ada, &[("BOOK-1", 2)]))
        .when_delivered_twice(reserved(&order, "BOOK-1", 2))
        .await
        .then_sent(&[ConfirmOrder { order_id: order.clone() }]);
}

#[tokio::test]
async fn out_of_stock_the_flow_waits_until_a_deadline_then_cancels_and_compensates() {
    let (order, ada) = (Identifier::<Order>::generate(), Identifier::<Customer>::generate());
    let placed = placed_event(&order, &ada, &[("BOOK-1", 2), ("PEN-1", 3)]);
    let outcome = FlowScenario::<Fulfilment>::new(flow_kit(), &order)
        .given(placed.clone())
        .given(reserved(&order, "BOOK-1", 2))
        .when(failed(&order, "PEN-1", 3))
        .await;
    let cancel = CancelOrder { order_id: order.clone() };
    outcome.then_scheduled("restock", &cancel).then_sent::<CancelOrder>(&[]).then_running();
    assert_eq!(outcome.state().unwrap().stage, FulfilmentStage::AwaitingRestock);
    let wait = outcome.deadline("restock").unwrap() - OffsetDateTime::now_utc();
    assert!(wait > restock_wait() - Duration::from_secs(60) && wait <= restock_wait(), "{wait}");

    // A restock in time reserves the waiting line: the deadline goes, the order is confirmed.
    FlowScenario::<Fulfilment>::new(flow_kit(), &order)
        .given(placed.clone())
        .given(reserved(&order, "BOOK-1", 2))
        .given(failed(&order, "PEN-1", 3))
        .when(reserved(&order, "PEN-1", 3))
        .await
        .then_sent(&[ConfirmOrder { order_id: order.clone() }])
        .then_nothing_scheduled();

    // At the deadline the order is cancelled: its points are withdrawn, each line's stock
    // released, and the flow ends.
    let outcome = FlowScenario::<Fulfilment>::new(flow_kit(), &order)
        .given(placed.clone())
        .given(reserved(&order, "BOOK-1", 2))
        .given(failed(&order, "PEN-1", 3))
        .when(OrderCancelled { order_id: order.clone(), customer_id: ada.clone(), total: euros(6250) })
        .await;
    outcome
        .then_sent(&[WithdrawLoyaltyPoints { customer_id: ada.clone(), order_id: order.clone(), points: 62 }])
        .then_sent(&[
            ReleaseStock { sku: sku("BOOK-1"), order_id: order.clone(), quantity: 2 },
            ReleaseStock { sku: sku("PEN-1"), order_id: order.clone(), quantity: 3 },
        ])
        .then_nothing_scheduled()
        .then_ended();
    assert_eq!(outcome.state().unwrap().stage, FulfilmentStage::Cancelled);
}

async fn points_of(domain: &Domain, customer: &Identifier<Customer>) -> u64 {
    domain.get(&customer.cast::<CustomerLoyalty>()).await.unwrap().unwrap().points
}

#[tokio::test]
async fn end_to_end_a_restock_in_time_confirms_and_a_missed_deadline_cancels() {
    let domain = flow_kit();
    let ada = Identifier::<Customer>::generate();
    domain.process(Restock { sku: sku("PEN-1"), quantity: 1 }).await.unwrap().all_delivered().unwrap();
    domain.process(Restock { sku: sku("INK-1"), quantity: 1 }).await.unwrap().all_delivered().unwrap();

    // Three pens, one in stock: the order waits.
    let pens = Identifier::<Order>::generate();
    domain.process(place(&pens, &ada, "PEN-1", 3)).await.unwrap().all_delivered().unwrap();
    assert_eq!(domain.get(&pens).await.unwrap().unwrap().status, OrderStatus::AwaitingRestock);
    let stock = domain.get(&sku("PEN-1")).await.unwrap().unwrap();
    assert_eq!((stock.reserved, stock.waiting.len()), (0, 1));
    // Two more arrive: the waiting order gets its three, and is confirmed.
    domain.process(Restock { sku: sku("PEN-1"), quantity: 2 }).await.unwrap().all_delivered().unwrap();
    assert_eq!(domain.get(&pens).await.unwrap().unwrap().status, OrderStatus::Confirmed);
    let stock = domain.get(&sku("PEN-1")).await.unwrap().unwrap();
    assert_eq!((stock.available, stock.reserved, stock.waiting.len()), (3, 3, 0));
    assert!(domain.pending_commands::<Fulfilment>(&pens.to_string()).await.unwrap().is_empty());

    // Two inks, one in stock, none arriving: at the deadline the order is cancelled.
    let inks = Identifier::<Order>::generate();
    domain.process(place(&inks, &ada, "INK-1", 2)).await.unwrap().all_delivered().unwrap();
    assert_eq!(points_of(&domain, &ada).await, 62, "37 for the pens, 25 for the ink");
    let fired = domain.fire_due_commands().await.unwrap();
    assert_eq!(fired.fired, 0, "not due yet");
    let later = OffsetDateTime::now_utc() + restock_wait() + Duration::from_secs(1);
    let fired = domain.fire_due_commands_at(later).await.unwrap();
    assert_eq!((fired.fired, fired.refused), (1, 0));
    assert_eq!(domain.get(&inks).await.unwrap().unwrap().status, OrderStatus::Cancelled);
    assert_eq!(points_of(&domain, &ada).await, 37, "the ink order's 25 points withdrawn");
    let stock = domain.get(&sku("INK-1")).await.unwrap().unwrap();
    assert_eq!((stock.reserved, stock.waiting.len()), (0, 0), "the order no longer waits");
    let (flow, ended) = domain.flow::<Fulfilment>(&inks.to_string()).await.unwrap().unwrap();
    assert_eq!((flow.stage, ended), (FulfilmentStage::Cancelled, true));
    // Ink arriving now serves nobody.
    domain.process(Restock { sku: sku("INK-1"), quantity: 5 }).await.unwrap().all_delivered().unwrap();
    assert_eq!(domain.get(&sku("INK-1")).await.unwrap().unwrap().reserved, 0);
}

// --- A failing assertion of the test kit is reported at the test's line. ---

/// Catches the panics of the calling thread, with where they were raised.
mod caught {
    use std::cell::RefCell;
    use std::panic::{self, AssertUnwindSafe, Location};
    use std::sync::Once;

    /// Where a panic was raised (file, line) and its message.
    type Panic = (String, u32, String);

    thread_local! {
        static CAUGHT: RefCell<Option<Vec<Panic>>> = const { RefCell::new(None) };
    }

    /// A hook that records the panics of a thread inside [`panic_of`], and leaves the
    /// others to the hook it replaced.
    fn install() {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = panic::take_hook();
            panic::set_hook(Box::new(move |info| {
                let recorded = CAUGHT.with(|caught| match caught.borrow_mut().as_mut() {
                    Some(list) => {
                        let (file, line) = info.location().map_or((String::new(), 0), |l| (l.file().into(), l.line()));
                        let message = info
                            .payload()
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| (*s).to_owned()))
                            .unwrap_or_default();
                        list.push((file, line, message));
                        true
                    }
                    None => false,
                });
                if !recorded {
                    previous(info);
                }
            }));
        });
    }

    /// The panic `run` raised; panics itself when `run` returns.
    fn panic_of(run: impl FnOnce()) -> Panic {
        install();
        CAUGHT.with(|caught| *caught.borrow_mut() = Some(Vec::new()));
        let outcome = panic::catch_unwind(AssertUnwindSafe(run));
        let mut list = CAUGHT.with(|caught| caught.borrow_mut().take()).unwrap_or_default();
        assert!(outcome.is_err(), "expected a panic");
        assert_eq!(list.len(), 1, "one panic: {list:?}");
        list.remove(0)
    }

    /// Runs `assertion`, written on the line of this call, which must fail: checks that
    /// its panic is reported at this line of the test, and returns its message.
    #[track_caller]
    pub fn fails_here<R>(assertion: impl FnOnce() -> R) -> String {
        let here = Location::caller();
        let (file, line, message) = panic_of(|| {
            let _ = assertion();
        });
        assert_eq!((file.as_str(), line), (here.file(), here.line()), "where `{message}` is reported");
        message
    }

    /// The message of the panic of `run`, wherever it was raised (a `given` step fails
    /// when the scenario runs, inside protean).
    pub fn message_of<R>(run: impl FnOnce() -> R) -> String {
        panic_of(|| {
            let _ = run();
        })
        .2
    }
}

use caught::{fails_here, message_of};

/// Runs `future` to its end on a runtime of this thread (so its panics are this thread's).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

#[test]
fn every_failing_assertion_of_a_scenario_is_reported_at_the_line_of_the_test() {
    let (order, ada) = (Identifier::generate(), Identifier::generate());
    let restocked = shop().given(Restock { sku: sku("BOOK-1"), quantity: 5 });
    let placed = block_on(restocked.when(place(&order, &ada, "BOOK-1", 2)));
    let refused = block_on(shop().given(place(&order, &ada, "BOOK-1", 1)).when(place(&order, &ada, "BOOK-1", 1)));
    let renamed = || [CustomerRenamed { customer_id: ada.clone(), name: "Ada".into() }.into()];

    let message = fails_here(|| refused.reply());
    assert!(message.starts_with("expected the `when` step to succeed, but it was refused"), "{message}");
    fails_here(|| refused.direct_events());
    fails_here(|| refused.all_events());
    let message = fails_here(|| placed.then_events(renamed()));
    assert!(message.starts_with("direct events differ"), "{message}");
    fails_here(|| placed.then_all_events(renamed()));
    fails_here(|| placed.then_event_types(&["Order.OrderPlaced"]));
    fails_here(|| placed.then_no_events());
    fails_here(|| placed.then_delivery_failed());
    fails_here(|| placed.then_error());
    fails_here(|| placed.then_rejected_by_rule("no"));
    fails_here(|| refused.then_rejected_by_rule("another rule"));
    fails_here(|| placed.then_invalid(&[("lines", "no")]));
    fails_here(|| refused.then_invalid(&[("lines", "no")]));
    let message = fails_here(|| placed.then_state(&Identifier::<Order>::generate(), |_| {}));
    assert!(message.ends_with("to be stored, but it is not"), "{message}");

    let lines = vec![OrderLine::new("NOPE-1", 1u32, euros(100)).unwrap()];
    let unknown = OrderPlaced { order_id: order.clone(), customer_id: ada.clone(), lines, total: euros(100) };
    let failing = block_on(shop().when_event(unknown));
    fails_here(|| failing.then_no_failures());
}

#[test]
fn a_given_step_that_fails_names_the_lines_of_the_test_that_gave_it_and_ran_the_scenario() {
    let empty = || {
        let mut command = place(&Identifier::generate(), &Identifier::generate(), "BOOK-1", 1);
        command.lines.clear();
        command
    };
    let (given, scenario) = (line!(), shop().given(Restock { sku: sku("BOOK-1"), quantity: 5 }).given(empty()));
    let (when, future) = (line!(), scenario.when(ConfirmOrder { order_id: Identifier::generate() }));
    let message = message_of(|| block_on(future));
    assert!(message.starts_with("given step 2 (command Order.PlaceOrder, given at "), "{message}");
    assert!(message.contains(&format!("given at {}:{given}:", file!())), "{message}");
    assert!(message.contains(&format!("in the scenario run at {}:{when}:", file!())), "{message}");
    assert!(message.contains("must have at least 1 item"), "{message}");

    let (when, future) = (line!(), shop().given(empty()).when_nothing());
    let message = message_of(|| block_on(future));
    assert!(message.contains(&format!("in the scenario run at {}:{when}:", file!())), "{message}");
    let placed = placed_event(&Identifier::generate(), &Identifier::generate(), &[("BOOK-1", 1)]);
    let (when, future) = (line!(), shop().given(empty()).when_event(placed));
    let message = message_of(|| block_on(future));
    assert!(message.contains(&format!("in the scenario run at {}:{when}:", file!())), "{message}");
}

#[test]
fn every_failing_assertion_of_a_flow_scenario_is_reported_at_the_line_of_the_test() {
    let (order, ada) = (Identifier::<Order>::generate(), Identifier::<Customer>::generate());
    let flow = || FlowScenario::<Fulfilment>::new(flow_kit(), &order);
    let placed = placed_event(&order, &ada, &[("BOOK-1", 2)]);
    let running = block_on(flow().when(placed.clone()));
    let confirming = block_on(flow().given(placed.clone()).when(reserved(&order, "BOOK-1", 2)));
    let waiting = block_on(flow().given(placed.clone()).when(failed(&order, "BOOK-1", 2)));
    let never = block_on(flow().when(OrderConfirmed { order_id: order.clone() }));
    let confirm = [ConfirmOrder { order_id: order.clone() }];
    let cancel = CancelOrder { order_id: order.clone() };

    fails_here(|| running.then_sent(&confirm));
    fails_here(|| confirming.then_nothing_sent());
    fails_here(|| running.then_scheduled("restock", &cancel));
    fails_here(|| waiting.then_nothing_scheduled());
    fails_here(|| running.then_ended());
    fails_here(|| running.then_not_started());
    fails_here(|| running.then_failed_with("anything"));
    fails_here(|| never.then_running());

    // A step that fails (a line whose SKU is no identity) fails the other assertions at
    // the test's line too, saying so.
    let padded = placed_event(&order, &ada, &[(" PAD-1", 1)]);
    let cancelled = OrderCancelled { order_id: order.clone(), customer_id: ada.clone(), total: euros(1250) };
    let failed_step = block_on(flow().given(padded.clone()).when(cancelled.clone()));
    failed_step.then_failed_with("surrounding whitespace");
    let message = fails_here(|| failed_step.then_running());
    assert!(message.starts_with(&format!("the step of flow `{order}` failed")), "{message}");

    // A given step that fails names the lines that gave it and ran the scenario.
    let (line, future) = (line!(), flow().given(padded).given(cancelled).when(placed));
    let message = message_of(|| block_on(future));
    assert!(message.starts_with("given step 2 (event Order.OrderCancelled, given at "), "{message}");
    assert!(message.contains(&format!("given at {}:{line}:", file!())), "{message}");
    assert!(message.contains(&format!("in the scenario run at {}:{line}:", file!())), "{message}");
}
