//! Processing a command: its unit of work commits, its events reach every handler in
//! units of their own with the causal chain in their envelopes, and a refused command
//! writes nothing.

use protean::prelude::*;
use protean::store::StreamId;

use crate::ecommerce::*;
use crate::{order_of, shop, sku};

#[tokio::test]
async fn a_command_is_committed_and_its_events_reach_every_handler_in_their_own_units() {
    let domain = shop();
    domain.process(Restock { sku: sku("BOOK-1"), quantity: 5 }).await.unwrap().all_delivered().unwrap();
    let ada = Identifier::<Customer>::generate();
    let command = order_of(&ada, "BOOK-1", 2, 1250);
    let order_id = command.order_id.clone();
    let processed = domain.process(command).await.unwrap();

    assert_eq!(
        processed.event_types(),
        ["Order.OrderPlaced", "Inventory.StockReserved", "CustomerLoyalty.LoyaltyPointsAdded"]
    );
    assert!(processed.failures.is_empty());
    let [committed] = processed.committed.as_slice() else { panic!("one aggregate committed") };
    assert_eq!(committed.stream, StreamId::new("Order", order_id.to_string()));
    assert_eq!(committed.version, 1);

    // Each aggregate was saved in its own unit of work, with its own version; the
    // fulfilment flow then confirmed the order, in another.
    let order = domain.get(&order_id).await.unwrap().unwrap();
    assert_eq!((order.status, order.version()), (OrderStatus::Confirmed, 2));
    let stock = domain.get(&sku("BOOK-1")).await.unwrap().unwrap();
    assert_eq!((stock.available, stock.reserved, stock.version()), (5, 2, 2));
    let loyalty = domain.get(&ada.cast::<CustomerLoyalty>()).await.unwrap().unwrap();
    assert_eq!(loyalty.points, 25);
}

#[tokio::test]
async fn envelopes_carry_stream_sequence_and_the_causal_chain() {
    let domain = shop();
    domain.process(Restock { sku: sku("PEN-1"), quantity: 1 }).await.unwrap().all_delivered().unwrap();
    let command_id = uuid::Uuid::now_v7();
    let command = order_of(&Identifier::generate(), "PEN-1", 3, 300);
    let order_id = command.order_id.clone();
    let processed = domain.process_with(command, command_id, None).await.unwrap();

    let [placed, failed, points, awaiting] = processed.events.as_slice() else {
        panic!("four events, got {:?}", processed.event_types())
    };
    assert_eq!(
        processed.event_types(),
        [
            "Order.OrderPlaced",
            "Inventory.StockReservationFailed",
            "CustomerLoyalty.LoyaltyPointsAdded",
            "Order.OrderAwaitingRestock"
        ]
    );
    for event in &processed.events {
        assert_eq!(event.correlation_id, command_id, "the command's id flows through the conversation");
    }
    assert_eq!(placed.causation_id, command_id);
    assert_eq!(failed.causation_id, placed.id);
    assert_eq!(points.causation_id, placed.id);
    assert_eq!(awaiting.causation_id, failed.id);
    assert_eq!((&*placed.stream.id, placed.sequence), (order_id.to_string().as_str(), 1));
    assert_eq!((&*awaiting.stream.id, awaiting.sequence), (order_id.to_string().as_str(), 2));
    assert_eq!((&*failed.stream.aggregate, failed.sequence), ("Inventory", 2), "after StockAdded");
    assert_eq!(placed.version, 1);

    // The store holds the same events, as JSON, in order per stream.
    let stored = domain.events_of(&order_id).await.unwrap();
    assert_eq!(stored, vec![placed.stored(), awaiting.stored()]);
    let parsed = stored[0].event::<OrderPlaced>().unwrap();
    assert_eq!(parsed.order_id, order_id);
    assert_eq!(domain.get(&order_id).await.unwrap().unwrap().status, OrderStatus::AwaitingRestock);
}

#[tokio::test]
async fn a_refused_command_writes_nothing_and_lists_every_bad_field() {
    let domain = shop();
    let mut command = order_of(&Identifier::generate(), "BOOK-1", 1, 100);
    command.customer_name.clear();
    command.lines.clear();
    let order_id = command.order_id.clone();
    let error = domain.process(command).await.unwrap_err();
    let Some(DomainError::Validation(errors)) = error.rejection() else { panic!("a validation error: {error}") };
    assert_eq!(errors.paths().collect::<Vec<_>>(), ["customer_name", "lines"]);
    assert!(domain.get(&order_id).await.unwrap().is_none());
    assert!(domain.events_of(&order_id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_business_rule_refusal_keeps_the_stored_state() {
    let domain = shop();
    domain.process(Restock { sku: sku("BOOK-1"), quantity: 5 }).await.unwrap().all_delivered().unwrap();
    let first = order_of(&Identifier::generate(), "BOOK-1", 1, 100);
    let again = PlaceOrder { order_id: first.order_id.clone(), ..order_of(&Identifier::generate(), "BOOK-1", 9, 1) };
    domain.process(first.clone()).await.unwrap().all_delivered().unwrap();
    let error = domain.process(again).await.unwrap_err();
    assert_eq!(error.rejection(), Some(&DomainError::rule(format!("order {} was already placed", first.order_id))));
    let order = domain.get(&first.order_id).await.unwrap().unwrap();
    // Version 2: placed, then confirmed by the fulfilment flow; the refused copy changed nothing.
    assert_eq!((order.version(), order.items.len(), order.status), (2, 1, OrderStatus::Confirmed));
}
