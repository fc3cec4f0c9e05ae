//! The benchmarks' shop, written with protean: the same model as the cqrs-es peer's
//! (`benches/peer/cqrs_es.rs`), so both sides do the same work.

use protean::prelude::*;

/// One order line.
#[value_object]
pub struct Line {
    #[field(min_length = 1)]
    pub sku: String,
    #[field(min = 1)]
    pub quantity: u32,
    pub unit_price_cents: i64,
}

/// Where an order is.
#[value_object]
pub enum OrderStatus {
    Draft,
    Placed,
}

/// An order.
#[aggregate]
pub struct Order {
    pub customer_id: String,
    pub lines: Vec<Line>,
    #[field(default = OrderStatus::Draft)]
    pub status: OrderStatus,
}

/// Stock of one SKU (its identity).
#[aggregate]
pub struct Inventory {
    pub on_hand: u32,
    #[field(default = 0u32)]
    pub reserved: u32,
}

/// Create an order with one line and place it.
#[command(part_of = Order)]
pub struct PlaceOrder {
    pub order_id: Identifier<Order>,
    pub customer_id: String,
    pub sku: String,
    #[field(min = 1)]
    pub quantity: u32,
    pub unit_price_cents: i64,
}

/// Add stock.
#[command(part_of = Inventory)]
pub struct Stock {
    pub sku: Identifier<Inventory>,
    pub quantity: u32,
}

/// An order was placed.
#[event(part_of = Order)]
pub struct OrderPlaced {
    pub order_id: Identifier<Order>,
    pub customer_id: String,
    pub lines: Vec<Line>,
}

/// Stock arrived.
#[event(part_of = Inventory)]
pub struct Stocked {
    pub sku: String,
    pub quantity: u32,
}

/// Stock was reserved for an order.
#[event(part_of = Inventory)]
pub struct StockReserved {
    pub order_id: Identifier<Order>,
    pub quantity: u32,
}

/// Stock could not be reserved.
#[event(part_of = Inventory)]
pub struct StockReservationFailed {
    pub order_id: Identifier<Order>,
    pub quantity: u32,
}

/// Order's commands.
pub struct Orders;

#[handler(part_of = Order)]
impl Orders {
    async fn place(ctx: &mut Context<Order>, command: PlaceOrder) -> Result<(), DomainError> {
        if ctx.find(&command.order_id).await?.is_some() {
            return Err(DomainError::rule("already placed"));
        }
        let line = Line::new(command.sku, command.quantity, command.unit_price_cents)?;
        let mut order = Order::builder()
            .id(command.order_id.clone())
            .customer_id(command.customer_id.clone())
            .lines(vec![line.clone()])
            .build()?;
        order.status = OrderStatus::Placed;
        order.raise(OrderPlaced { order_id: command.order_id, customer_id: command.customer_id, lines: vec![line] });
        ctx.add(order)?;
        Ok(())
    }
}

/// Inventory's commands and reactions.
pub struct Stocks;

#[handler(part_of = Inventory)]
impl Stocks {
    async fn stock(ctx: &mut Context<Inventory>, command: Stock) -> Result<(), DomainError> {
        let sku = command.sku.clone();
        let mut inventory =
            ctx.load_or_add(&command.sku, || Ok(Inventory::builder().id(sku).on_hand(0u32).build()?)).await?;
        inventory.on_hand += command.quantity;
        let event = Stocked { sku: inventory.id.to_string(), quantity: command.quantity };
        inventory.raise(event);
        Ok(())
    }

    async fn reserve(ctx: &mut Context<Inventory>, event: &OrderPlaced) -> Result<(), DomainError> {
        for line in &event.lines {
            let sku = Identifier::<Inventory>::parse(line.sku()).map_err(|e| DomainError::rule(e.to_string()))?;
            let inventory = ctx.load(&sku).await?;
            let quantity = *line.quantity();
            if inventory.on_hand - inventory.reserved >= quantity {
                inventory.reserved += quantity;
                inventory.raise(StockReserved { order_id: event.order_id.clone(), quantity });
            } else {
                inventory.raise(StockReservationFailed { order_id: event.order_id.clone(), quantity });
            }
        }
        Ok(())
    }
}
