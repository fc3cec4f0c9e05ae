//! Behaviour of the domain-model DSL on the e-commerce model of the reference article.

use crate::ecommerce::*;
use protean::prelude::*;

fn eur(cents: i64) -> Money {
    Money::new(cents, "EUR").expect("valid money")
}

fn draft_order() -> Order {
    Order::builder().customer_id(Identifier::<Customer>::generate()).total(eur(0)).build().expect("valid draft")
}

#[test]
fn construction_reports_every_bad_field_at_once_with_nested_paths() {
    let good = OrderItem::builder().sku("A").quantity(1u32).unit_price(eur(100)).build().unwrap();
    let bad_qty = OrderItem { id: Identifier::generate(), quantity: 0, ..good.clone() };
    let bad_both = OrderItem { id: Identifier::generate(), sku: String::new(), quantity: 5000, ..good.clone() };
    let items: HasMany<OrderItem> = vec![good.clone(), bad_qty.clone(), bad_both.clone()].into();
    let err = Order::builder()
        .customer_id(Identifier::<Customer>::generate())
        .items(items)
        .total(eur(0))
        .build()
        .unwrap_err();
    assert_eq!(err.messages("items[1].quantity"), ["must be at least 1"]);
    assert_eq!(err.messages("items[2].quantity"), ["must be at most 1000"]);
    assert_eq!(err.messages("items[2].sku"), ["must have at least 1 character, has 0"]);
    // The total invariant is checked too, in the same run.
    assert_eq!(err.messages("total").len(), 1, "{err}");
    assert!(err.messages("items[0].quantity").is_empty());
}

#[test]
fn value_objects_list_every_problem_and_missing_fields() {
    let err = ShippingAddress::builder().street("").postal_code("1234567890123").country("FRA").build().unwrap_err();
    assert_eq!(err.messages("street"), ["must have at least 1 character, has 0"]);
    assert_eq!(err.messages("city"), ["is required"]);
    assert_eq!(err.messages("postal_code"), ["must have at most 12 characters, has 13"]);
    assert_eq!(err.messages("country"), ["must have exactly 2 characters, has 3"]);
    assert!(err.messages("state").is_empty(), "optional fields are not required");
    assert_eq!(err.len(), 4);
}

#[test]
fn nested_value_objects_are_validated_under_their_path() {
    let line = OrderLine::builder().sku("A").quantity(1u32).unit_price(eur(1)).build().unwrap();
    let mut lines = vec![line.clone(), line.clone()];
    // A value object cannot be built invalid, but stored data can be: deserialize one.
    let bad: OrderLine = serde_json::from_value(serde_json::json!({
        "sku": "B", "quantity": 0, "unit_price": {"cents": -1, "currency": "EUR"}
    }))
    .unwrap();
    lines.push(bad);
    let cmd = PlaceOrder {
        order_id: Identifier::generate(),
        customer_id: Identifier::generate(),
        customer_name: "Ada".into(),
        customer_email: "ada@example.com".into(),
        lines,
        shipping_address: None,
    };
    let err = cmd.validate().unwrap_err();
    assert_eq!(err.messages("lines[2].quantity"), ["must be at least 1"]);
    assert_eq!(err.messages("lines[2].unit_price.cents"), ["must be at least 0"]);
    assert_eq!(err.len(), 2);
}

#[test]
fn invariants_run_at_construction() {
    let item = OrderItem::builder().sku("A").quantity(2u32).unit_price(eur(100)).build().unwrap();
    let err = Order::builder()
        .customer_id(Identifier::<Customer>::generate())
        .items(vec![item])
        .total(eur(1))
        .build()
        .unwrap_err();
    assert_eq!(err.messages("total"), ["must equal the sum of the items (200), is 1"]);
}

#[test]
fn a_change_that_breaks_an_invariant_leaves_the_aggregate_untouched() {
    let mut order = draft_order();
    order.add_item("A", 2, eur(100)).unwrap();
    let before = order.clone();
    let err = order
        .change(|o| {
            o.total = eur(1);
            o.raise(OrderAwaitingRestock { order_id: o.id.clone(), sku: "A".into() });
            Ok(())
        })
        .unwrap_err();
    match err {
        DomainError::Validation(v) => assert_eq!(v.messages("total").len(), 1),
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert_eq!(order, before);
    assert!(order.pending_events().is_empty(), "events raised in a failed change are dropped");
}

#[test]
fn a_failing_closure_rolls_back_too() {
    let mut order = draft_order();
    let result: Result<(), DomainError> = order.change(|o| {
        o.status = OrderStatus::Confirmed;
        Err(DomainError::rule("no"))
    });
    assert_eq!(result, Err(DomainError::rule("no")));
    assert_eq!(order.status, OrderStatus::Draft);
}

#[test]
fn pre_invariants_refuse_changes_before_they_run() {
    let mut order = draft_order();
    order.add_item("A", 1, eur(100)).unwrap();
    order.cancel().unwrap();
    let err = order.add_item("B", 1, eur(100)).unwrap_err();
    let DomainError::Validation(v) = err else { panic!("expected validation") };
    assert_eq!(v.messages("status"), ["a cancelled order does not change"]);
    assert_eq!(order.items.len(), 1);
}

#[test]
fn entity_invariants_and_fields_are_checked_through_the_aggregate() {
    let mut order = draft_order();
    order.add_item("A", 1, eur(100)).unwrap();
    let err = order
        .change(|o| {
            let id = o.items.iter().next().unwrap().id.clone();
            o.items.get_mut(&id).unwrap().quantity = 0;
            o.total = eur(0);
            Ok(())
        })
        .unwrap_err();
    let DomainError::Validation(v) = err else { panic!("expected validation") };
    assert_eq!(v.messages("items[0].quantity"), ["must be at least 1"]);
    assert_eq!(order.items.iter().next().unwrap().quantity, 1);
}

#[test]
fn events_are_handed_out_once() {
    let mut order = draft_order();
    order.add_item("A", 1, eur(100)).unwrap();
    order.place().unwrap();
    let events = order.take_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].type_name(), "Order.OrderPlaced");
    assert_eq!(events[0].version(), 1);
    let placed = events[0].downcast_ref::<OrderPlaced>().unwrap();
    assert_eq!(placed.order_id, order.id);
    assert_eq!(placed.total, eur(100));
    assert!(order.take_events().is_empty());
}

#[test]
fn identities_are_typed_uuid_v7_by_default_and_round_trip_as_strings() {
    let a = Identifier::<Order>::generate();
    let b = Identifier::<Order>::generate();
    assert_ne!(a, b);
    assert_eq!(a.as_uuid().unwrap().get_version_num(), 7);
    assert!(a < b, "v7 identities sort by creation time");
    let back: Identifier<Order> = a.to_string().parse().unwrap();
    assert_eq!(a, back);

    let sku = Identifier::<Inventory>::parse("SKU-42").unwrap();
    assert_eq!(sku.to_string(), "SKU-42");
    assert_eq!(sku.as_uuid(), None);
    assert_eq!("SKU-42".parse::<Identifier<Inventory>>().unwrap(), sku);
    assert!(Identifier::<Inventory>::parse("").is_err());
    assert!(Identifier::<Inventory>::parse(" padded ").is_err());
    assert!(Identifier::<Inventory>::parse(&"x".repeat(300)).is_err());

    let given = Identifier::<Order>::generate();
    let order = Order::builder()
        .id(given.clone())
        .customer_id(Identifier::<Customer>::generate())
        .total(eur(0))
        .build()
        .unwrap();
    assert_eq!(order.id(), &given);
}

#[test]
fn bad_identifiers_in_stored_data_are_errors_not_panics() {
    let result: Result<Identifier<Order>, _> = serde_json::from_str("\"\"");
    assert!(result.is_err());
    let result: Result<Order, _> = serde_json::from_value(serde_json::json!({"id": 5}));
    assert!(result.is_err());
}

#[test]
fn aggregates_events_and_commands_round_trip_through_serde() {
    let mut order = draft_order();
    order.add_item("A", 3, eur(250)).unwrap();
    order.shipping_address = Some(ShippingAddress::new("1 Rue", "Paris", None::<String>, "75001", "FR").unwrap());
    let json = serde_json::to_string(&order).unwrap();
    let back: Order = serde_json::from_str(&json).unwrap();
    assert_eq!(back, order);
    assert!(back.validate().is_ok());
    assert!(!json.contains("__protean"), "framework metadata is not part of the stored state");

    order.place().unwrap();
    let event = order.take_events().remove(0);
    let placed = event.downcast_ref::<OrderPlaced>().unwrap().clone();
    let back: OrderPlaced = serde_json::from_value(event.to_json().unwrap()).unwrap();
    assert_eq!(back, placed);

    let cmd = PlaceOrder {
        order_id: order.id.clone(),
        customer_id: order.customer_id.clone(),
        customer_name: "Ada".into(),
        customer_email: "ada@example.com".into(),
        lines: placed.lines.clone(),
        shipping_address: order.shipping_address.clone(),
    };
    let back: PlaceOrder = serde_json::from_str(&serde_json::to_string(&cmd).unwrap()).unwrap();
    assert_eq!(back, cmd);
    assert_eq!(<PlaceOrder as Command>::TYPE_NAME, "Order.PlaceOrder");
    assert_eq!(<PlaceOrder as Command>::VERSION, 1);
}

#[test]
fn value_objects_compare_by_value() {
    assert_eq!(eur(5), eur(5));
    assert_ne!(eur(5), Money::new(5, "USD").unwrap());
    assert_eq!(eur(5).cents(), &5);
}

#[test]
fn choices_parse_and_display_by_name() {
    assert_eq!("Placed".parse::<OrderStatus>().unwrap(), OrderStatus::Placed);
    let err = "Shipped".parse::<OrderStatus>().unwrap_err();
    assert!(err.to_string().contains("`Shipped` is not one of: Draft, Placed, AwaitingRestock, Confirmed, Cancelled"));
    assert_eq!(OrderStatus::AwaitingRestock.to_string(), "AwaitingRestock");
    assert_eq!(<OrderStatus as Choices>::CHOICES.len(), 5);
    assert!(serde_json::from_str::<OrderStatus>("\"Shipped\"").is_err());
}

#[test]
fn has_many_is_keyed_by_identity() {
    let item = OrderItem::builder().sku("A").quantity(1u32).unit_price(eur(1)).build().unwrap();
    let mut items = HasMany::new();
    assert!(items.add(item.clone()).is_none());
    let replaced = items.add(OrderItem { quantity: 2, ..item.clone() });
    assert_eq!(replaced.map(|i| i.quantity), Some(1));
    assert_eq!(items.len(), 1);
    assert_eq!(items.get(&item.id).map(|i| i.quantity), Some(2));
    assert!(items.contains(&item.id));
    assert_eq!(items.remove(&item.id).map(|i| i.quantity), Some(2));
    assert!(items.get(&item.id).is_none());
}

#[test]
fn duplicate_entity_identities_in_stored_data_are_reported() {
    let item = OrderItem::builder().sku("A").quantity(1u32).unit_price(eur(100)).build().unwrap();
    let mut order = draft_order();
    order.add_item("A", 1, eur(100)).unwrap();
    let mut json = serde_json::to_value(&order).unwrap();
    let items = json["items"].as_array_mut().unwrap();
    let mut dup = serde_json::to_value(&item).unwrap();
    dup["id"] = items[0]["id"].clone();
    items.push(dup);
    json["total"]["cents"] = serde_json::json!(200);
    let order: Order = serde_json::from_value(json).unwrap();
    let err = order.validate().unwrap_err();
    assert_eq!(err.paths().collect::<Vec<_>>(), ["items[1]"]);
}
