//! Delivering events: a failed handler keeps its event for a retry, and an event stays
//! undelivered while any of its handlers still fails.

use protean::prelude::*;

use crate::ecommerce::*;
use crate::{order_of, shop, sku};

#[tokio::test]
async fn a_failed_delivery_keeps_the_event_and_can_be_retried() {
    let domain = shop();
    // No inventory for PEN-1 yet: the Inventory handler cannot find it.
    let command = order_of(&Identifier::generate(), "PEN-1", 1, 300);
    let order_id = command.order_id.clone();
    let processed = domain.process(command).await.expect("the order itself is placed");
    let [failure] = processed.failures.as_slice() else { panic!("one failure: {:?}", processed.failures) };
    assert_eq!(failure.handler.name(), "InventoryReactions::reserve");
    assert_eq!(failure.event.type_name, "Order.OrderPlaced");
    assert_eq!(failure.error.rejection(), Some(&DomainError::NotFound { kind: "Inventory", id: "PEN-1".into() }));
    assert!(failure.to_string().starts_with("InventoryReactions::reserve failed on Order.OrderPlaced #1 of Order/"));
    assert_eq!(domain.failed_deliveries().len(), 1);
    // The other handler of the same event was not held back.
    assert_eq!(processed.event_types(), ["Order.OrderPlaced", "CustomerLoyalty.LoyaltyPointsAdded"]);

    // Retrying before the cause is fixed fails again and keeps the failure.
    let Delivered { failures: still, .. } = domain.retry_failed().await;
    assert_eq!(still.len(), 1);
    assert_eq!(domain.failed_deliveries().len(), 1);

    domain.process(Restock { sku: sku("PEN-1"), quantity: 3 }).await.unwrap().all_delivered().unwrap();
    let Delivered { events: delivered, failures } = domain.retry_failed().await;
    assert!(failures.is_empty());
    assert_eq!(delivered.iter().map(|e| &*e.type_name).collect::<Vec<_>>(), ["Inventory.StockReserved"]);
    assert!(domain.failed_deliveries().is_empty());
    assert_eq!(domain.get(&sku("PEN-1")).await.unwrap().unwrap().reserved, 1);
    // The stock reserved, the fulfilment flow confirmed the order.
    assert_eq!(domain.get(&order_id).await.unwrap().unwrap().status, OrderStatus::Confirmed);
}

#[tokio::test]
async fn an_event_stays_undelivered_while_any_of_its_handlers_still_fails() {
    use crate::twofail::*;
    let domain =
        Domain::builder().module(crate::model("twofail")).delivery_lease(std::time::Duration::ZERO).build().unwrap();
    let id = Identifier::<Source>::generate();
    let mut unit = domain.unit_of_work::<Source>();
    unit.add(Source::builder().id(id.clone()).n(0u32).build().unwrap()).unwrap().raise(Happened { id: id.clone() });
    let processed = unit.commit().await.unwrap();
    assert_eq!(processed.failures.len(), 2, "neither Left nor Right exists yet");
    for _ in 0..3 {
        let _ = domain.deliver_pending().await.unwrap();
    }
    assert_eq!(domain.failed_deliveries().len(), 2, "one entry per handler and event, however often retried");

    // Left appears; retrying delivers to it, but Right still fails: the event is not delivered yet.
    let mut unit = domain.unit_of_work::<Left>();
    unit.add(Left::builder().id(id.cast()).seen(0u32).build().unwrap()).unwrap();
    unit.commit().await.unwrap().all_delivered().unwrap();
    let Delivered { failures: still, .. } = domain.retry_failed().await;
    assert_eq!(still.len(), 1);
    let Delivered { events: again, .. } = domain.deliver_pending().await.unwrap();
    assert_eq!(again.len(), 1, "the event is still pending for Right");
    assert_eq!(domain.get(&id.cast::<Left>()).await.unwrap().unwrap().seen, 1, "Left took it once");

    let mut unit = domain.unit_of_work::<Right>();
    unit.add(Right::builder().id(id.cast()).seen(0u32).build().unwrap()).unwrap();
    unit.commit().await.unwrap().all_delivered().unwrap();
    let Delivered { events: delivered, failures } = domain.deliver_pending().await.unwrap();
    assert!(failures.is_empty());
    assert_eq!(delivered.len(), 1);
    assert_eq!(domain.get(&id.cast::<Right>()).await.unwrap().unwrap().seen, 1);
    assert_eq!(domain.get(&id.cast::<Left>()).await.unwrap().unwrap().seen, 1, "still once");
    assert!(domain.deliver_pending().await.unwrap().events.is_empty(), "delivered for good");
}
