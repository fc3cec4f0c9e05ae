//! The test kit on the examples' models: given / when / then, for command handlers and
//! event handlers, with no database.

#[path = "../examples/ecommerce/model.rs"]
#[allow(dead_code)]
mod ecommerce;

#[path = "../examples/project_management/model.rs"]
#[allow(dead_code)]
mod project_management;

use ecommerce::*;
use protean::prelude::*;
use protean::testing::Scenario;

fn shop() -> Scenario {
    Scenario::new(Domain::builder().module(module_path!().to_string() + "::ecommerce").build().unwrap())
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
    outcome.then_state(&order, |o: &Order| assert_eq!(o.status, OrderStatus::Placed));
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
    use project_management::*;
    let domain = Domain::builder().module(module_path!().to_string() + "::project_management").build().unwrap();
    let project = Identifier::<Project>::generate();
    let (first, second) = (Identifier::<Task>::generate(), Identifier::<Task>::generate());
    let outcome = Scenario::new(domain)
        .given(CreateProject { project_id: project.clone(), name: "Launch".into() })
        .given(CreateTask { task_id: first.clone(), project_id: project.clone(), title: "Docs".into() })
        .given(CreateTask { task_id: second, project_id: project.clone(), title: "Tests".into() })
        .when(CompleteTask { task_id: first.clone() })
        .await;
    outcome.then_events([TaskCompleted { task_id: first, project_id: project.clone() }.into()]);
    outcome.then_state(&project, |p: &Project| assert_eq!((p.completed_tasks, p.tasks, p.progress), (1, 2, 50.0)));
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
