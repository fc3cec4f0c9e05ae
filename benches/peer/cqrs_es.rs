//! Peer implementation of the command round-trip benchmark on `cqrs-es` 0.5
//! with its in-memory `MemStore`.
//!
//! Round trip measured by [`CqrsPeer::place_order`]:
//! 1. the Order framework loads the `Order` aggregate, handles `PlaceOrder`,
//!    and commits a single `OrderPlaced` event;
//! 2. the framework dispatches the committed events to the registered
//!    [`ReserveStockOnOrderPlaced`] query (inline, awaited inside `execute`);
//! 3. that query executes `Reserve` on the Inventory framework for each line
//!    (aggregate id = sku), which loads, changes and commits the `Inventory`.
//!
//! Required dependencies (Cargo.toml of the bench):
//! ```toml
//! cqrs-es = "0.5.0"
//! async-trait = "0.1"
//! serde = { version = "1", features = ["derive"] }
//! tokio = { version = "1", features = ["rt", "macros"] }
//! ```

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::event_sink::EventSink;
use cqrs_es::mem_store::MemStore;
use cqrs_es::{Aggregate, AggregateContext, CqrsFramework, DomainEvent, EventEnvelope, EventStore, Query};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Order
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub sku: String,
    pub quantity: u32,
    pub unit_price_cents: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OrderStatus {
    #[default]
    Draft,
    Placed,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub customer_id: String,
    pub lines: Vec<Line>,
    pub status: OrderStatus,
}

#[derive(Debug)]
pub enum OrderCommand {
    PlaceOrder { order_id: String, customer_id: String, sku: String, quantity: u32, unit_price_cents: i64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderEvent {
    OrderPlaced { order_id: String, customer_id: String, lines: Vec<Line> },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        match self {
            OrderEvent::OrderPlaced { .. } => "OrderPlaced".to_string(),
        }
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum OrderError {
    AlreadyPlaced,
    ZeroQuantity,
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderError::AlreadyPlaced => f.write_str("order already exists or is already placed"),
            OrderError::ZeroQuantity => f.write_str("quantity must be greater than zero"),
        }
    }
}

impl std::error::Error for OrderError {}

impl Aggregate for Order {
    const TYPE: &'static str = "Order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            OrderCommand::PlaceOrder { order_id, customer_id, sku, quantity, unit_price_cents } => {
                if !self.id.is_empty() || self.status == OrderStatus::Placed {
                    return Err(OrderError::AlreadyPlaced);
                }
                if quantity == 0 {
                    return Err(OrderError::ZeroQuantity);
                }
                let lines = vec![Line { sku, quantity, unit_price_cents }];
                sink.write(OrderEvent::OrderPlaced { order_id, customer_id, lines }, self).await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            OrderEvent::OrderPlaced { order_id, customer_id, lines } => {
                self.id = order_id;
                self.customer_id = customer_id;
                self.lines = lines;
                self.status = OrderStatus::Placed;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Inventory
// ---------------------------------------------------------------------------

// `Clone` only because `MemStore<A>: Clone` (derived) requires `A: Clone`;
// cloning the store shares its event map, it never clones an aggregate.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Inventory {
    pub sku: String,
    pub on_hand: u32,
    pub reserved: u32,
}

#[derive(Debug)]
pub enum InventoryCommand {
    Stock { sku: String, quantity: u32 },
    Reserve { order_id: String, quantity: u32 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InventoryEvent {
    Stocked { sku: String, quantity: u32 },
    StockReserved { order_id: String, quantity: u32 },
    StockReservationFailed { order_id: String, quantity: u32 },
}

impl DomainEvent for InventoryEvent {
    fn event_type(&self) -> String {
        match self {
            InventoryEvent::Stocked { .. } => "Stocked".to_string(),
            InventoryEvent::StockReserved { .. } => "StockReserved".to_string(),
            InventoryEvent::StockReservationFailed { .. } => "StockReservationFailed".to_string(),
        }
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Inventory commands never fail (a reservation that does not fit is an
/// event, not an error); the type exists because cqrs-es requires one.
#[derive(Debug)]
pub enum InventoryError {}

impl fmt::Display for InventoryError {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

impl std::error::Error for InventoryError {}

impl Aggregate for Inventory {
    const TYPE: &'static str = "Inventory";
    type Command = InventoryCommand;
    type Event = InventoryEvent;
    type Error = InventoryError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            InventoryCommand::Stock { sku, quantity } => InventoryEvent::Stocked { sku, quantity },
            InventoryCommand::Reserve { order_id, quantity } => {
                if self.on_hand - self.reserved >= quantity {
                    InventoryEvent::StockReserved { order_id, quantity }
                } else {
                    InventoryEvent::StockReservationFailed { order_id, quantity }
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            InventoryEvent::Stocked { sku, quantity } => {
                self.sku = sku;
                self.on_hand += quantity;
            }
            InventoryEvent::StockReserved { quantity, .. } => {
                self.reserved += quantity;
            }
            InventoryEvent::StockReservationFailed { .. } => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Event delivery: OrderPlaced -> Reserve on Inventory
// ---------------------------------------------------------------------------

type InventoryCqrs = CqrsFramework<Inventory, MemStore<Inventory>>;
type OrderCqrs = CqrsFramework<Order, MemStore<Order>>;

/// Registered on the Order framework; cqrs-es awaits `dispatch` inside
/// `CqrsFramework::execute`, right after the Order events are committed.
pub struct ReserveStockOnOrderPlaced {
    inventory: Arc<InventoryCqrs>,
}

#[async_trait]
impl Query<Order> for ReserveStockOnOrderPlaced {
    async fn dispatch(&self, _aggregate_id: &str, events: &[EventEnvelope<Order>]) {
        for envelope in events {
            match &envelope.payload {
                OrderEvent::OrderPlaced { order_id, lines, .. } => {
                    for line in lines {
                        // `dispatch` returns `()`, so an error can only be
                        // surfaced by panicking: never swallow it.
                        if let Err(err) = self
                            .inventory
                            .execute(
                                &line.sku,
                                InventoryCommand::Reserve { order_id: order_id.clone(), quantity: line.quantity },
                            )
                            .await
                        {
                            panic!("Reserve for order {order_id} on sku {} failed: {err:?}", line.sku);
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Bench-facing API
// ---------------------------------------------------------------------------

pub struct CqrsPeer {
    orders: Arc<OrderCqrs>,
    inventory: Arc<InventoryCqrs>,
    /// Shares its event map with the store inside `inventory` (MemStore's
    /// clone shares one `Arc`), used only to load state for checks.
    inventory_store: MemStore<Inventory>,
}

impl Default for CqrsPeer {
    fn default() -> Self {
        Self::new()
    }
}

impl CqrsPeer {
    pub fn new() -> Self {
        let inventory_store = MemStore::<Inventory>::default();
        let inventory = Arc::new(CqrsFramework::new(inventory_store.clone(), vec![], ()));
        let reaction = ReserveStockOnOrderPlaced { inventory: Arc::clone(&inventory) };
        let orders = Arc::new(CqrsFramework::new(
            MemStore::<Order>::default(),
            vec![Box::new(reaction) as Box<dyn Query<Order>>],
            (),
        ));
        Self { orders, inventory, inventory_store }
    }

    /// setup, not timed: stocks an inventory item
    pub async fn stock(&self, sku: &str, quantity: u32) {
        self.inventory
            .execute(sku, InventoryCommand::Stock { sku: sku.to_string(), quantity })
            .await
            .expect("Stock failed");
    }

    /// the timed round trip: PlaceOrder, commit, deliver OrderPlaced to the inventory reaction
    pub async fn place_order(
        &self,
        order_id: &str,
        customer_id: &str,
        sku: &str,
        quantity: u32,
        unit_price_cents: i64,
    ) {
        self.orders
            .execute(
                order_id,
                OrderCommand::PlaceOrder {
                    order_id: order_id.to_string(),
                    customer_id: customer_id.to_string(),
                    sku: sku.to_string(),
                    quantity,
                    unit_price_cents,
                },
            )
            .await
            .expect("PlaceOrder failed");
    }

    /// for a correctness check: (on_hand, reserved) of an inventory, loaded from the store
    pub async fn inventory(&self, sku: &str) -> (u32, u32) {
        let mut context = self.inventory_store.load_aggregate(sku).await.expect("loading Inventory failed");
        let inventory = context.aggregate();
        (inventory.on_hand, inventory.reserved)
    }
}
