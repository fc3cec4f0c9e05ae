//! A fulfilment flow across three aggregates, for process managers: an order placed
//! reserves stock; reserved, the order is confirmed; out of stock, the order waits for
//! a restock until a deadline, then is cancelled and the customer's points for it are
//! withdrawn.

use std::time::Duration;

use protean::prelude::*;

/// How long an order waits for a restock before it is cancelled.
pub const RESTOCK_WAIT: Duration = Duration::from_secs(3600);

/// Orders that wait only a few milliseconds for a restock (for tests of workers).
static QUICK: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Makes `order` wait 50 ms for a restock instead of an hour.
pub fn quick_deadline(order: &Identifier<Order>) {
    QUICK.lock().unwrap().push(order.to_string());
}

fn restock_wait(order: &Identifier<Order>) -> Duration {
    if QUICK.lock().unwrap().contains(&order.to_string()) {
        Duration::from_millis(50)
    } else {
        RESTOCK_WAIT
    }
}

#[aggregate]
pub struct Order {
    pub customer: Identifier<Customer>,
    pub sku: String,
    pub status: String,
}

#[aggregate]
pub struct Stock {
    pub available: u32,
    /// Orders waiting for this SKU, oldest first.
    pub waiting: Vec<Identifier<Order>>,
}

#[aggregate]
pub struct Customer {
    pub points: i64,
}

#[command(part_of = Order)]
pub struct PlaceOrder {
    pub order_id: Identifier<Order>,
    pub customer: Identifier<Customer>,
    pub sku: Identifier<Stock>,
}

#[command(part_of = Order)]
pub struct ConfirmOrder {
    pub order_id: Identifier<Order>,
}

#[command(part_of = Order)]
pub struct CancelOrder {
    pub order_id: Identifier<Order>,
    pub reason: String,
}

#[command(part_of = Stock)]
pub struct ReserveStock {
    pub sku: Identifier<Stock>,
    pub order_id: Identifier<Order>,
}

#[command(part_of = Stock)]
pub struct Restock {
    pub sku: Identifier<Stock>,
    pub quantity: u32,
}

#[command(part_of = Customer)]
pub struct WithdrawPoints {
    pub customer: Identifier<Customer>,
    pub order_id: Identifier<Order>,
    pub points: i64,
}

#[event(part_of = Order)]
pub struct OrderPlaced {
    pub order_id: Identifier<Order>,
    pub customer: Identifier<Customer>,
    pub sku: Identifier<Stock>,
}

#[event(part_of = Order)]
pub struct OrderConfirmed {
    pub order_id: Identifier<Order>,
}

#[event(part_of = Order)]
pub struct OrderCancelled {
    pub order_id: Identifier<Order>,
    pub customer: Identifier<Customer>,
}

#[event(part_of = Stock)]
pub struct StockReserved {
    pub sku: Identifier<Stock>,
    pub order_id: Identifier<Order>,
}

#[event(part_of = Stock)]
pub struct ReservationFailed {
    pub sku: Identifier<Stock>,
    pub order_id: Identifier<Order>,
}

#[event(part_of = Customer)]
pub struct PointsWithdrawn {
    pub customer: Identifier<Customer>,
    pub order_id: Identifier<Order>,
    pub points: i64,
}

/// The points an order earns, withdrawn when it is cancelled.
pub const POINTS_PER_ORDER: i64 = 10;

pub struct Orders;

#[handler(part_of = Order)]
impl Orders {
    async fn place(ctx: &mut Context<Order>, command: PlaceOrder) -> Result<(), DomainError> {
        let order = Order::builder()
            .id(command.order_id.clone())
            .customer(command.customer.clone())
            .sku(command.sku.to_string())
            .status("placed".to_owned())
            .build()?;
        let order = ctx.add(order)?;
        order.raise(OrderPlaced { order_id: command.order_id, customer: command.customer, sku: command.sku });
        Ok(())
    }

    async fn confirm(ctx: &mut Context<Order>, command: ConfirmOrder) -> Result<(), DomainError> {
        let order = ctx.load(&command.order_id).await?;
        if order.status != "placed" {
            return Err(DomainError::rule(format!("a {} order cannot be confirmed", order.status)));
        }
        order.status = "confirmed".into();
        order.raise(OrderConfirmed { order_id: command.order_id.clone() });
        Ok(())
    }

    async fn cancel(ctx: &mut Context<Order>, command: CancelOrder) -> Result<(), DomainError> {
        let order = ctx.load(&command.order_id).await?;
        if order.status != "placed" {
            return Err(DomainError::rule(format!("a {} order cannot be cancelled", order.status)));
        }
        order.status = "cancelled".into();
        let customer = order.customer.clone();
        order.raise(OrderCancelled { order_id: command.order_id.clone(), customer });
        Ok(())
    }
}

pub struct Inventory;

#[handler(part_of = Stock)]
impl Inventory {
    async fn reserve(ctx: &mut Context<Stock>, command: ReserveStock) -> Result<(), DomainError> {
        let sku = command.sku.clone();
        let mut stock = ctx
            .load_or_add(&sku, || Ok(Stock::builder().id(sku.clone()).available(0u32).waiting(vec![]).build()?))
            .await?;
        if stock.available > 0 {
            stock.available -= 1;
            stock.raise(StockReserved { sku: command.sku, order_id: command.order_id });
        } else {
            stock.waiting.push(command.order_id.clone());
            stock.raise(ReservationFailed { sku: command.sku, order_id: command.order_id });
        }
        Ok(())
    }

    async fn restock(ctx: &mut Context<Stock>, command: Restock) -> Result<(), DomainError> {
        let sku = command.sku.clone();
        let mut stock = ctx
            .load_or_add(&sku, || Ok(Stock::builder().id(sku.clone()).available(0u32).waiting(vec![]).build()?))
            .await?;
        stock.available += command.quantity;
        // Waiting orders are served first, oldest first.
        while stock.available > 0 && !stock.waiting.is_empty() {
            let order_id = stock.waiting.remove(0);
            stock.available -= 1;
            stock.raise(StockReserved { sku: command.sku.clone(), order_id });
        }
        Ok(())
    }
}

pub struct Loyalty;

#[handler(part_of = Customer)]
impl Loyalty {
    async fn withdraw(ctx: &mut Context<Customer>, command: WithdrawPoints) -> Result<(), DomainError> {
        let id = command.customer.clone();
        let mut customer =
            ctx.load_or_add(&id, || Ok(Customer::builder().id(id.clone()).points(0i64).build()?)).await?;
        customer.points -= command.points;
        customer.raise(PointsWithdrawn {
            customer: command.customer,
            order_id: command.order_id,
            points: command.points,
        });
        Ok(())
    }
}

/// The fulfilment of one order, keyed by its id.
#[process_manager(correlate = order_id)]
pub struct Fulfilment {
    pub order_id: Identifier<Order>,
    pub customer: Identifier<Customer>,
    pub stage: String,
}

#[process_manager]
impl Fulfilment {
    /// An order placed: reserve its stock.
    async fn placed(ctx: &mut Flow<Self>, event: &OrderPlaced) -> Result<Self, DomainError> {
        ctx.send(ReserveStock { sku: event.sku.clone(), order_id: event.order_id.clone() });
        Ok(Fulfilment { order_id: event.order_id.clone(), customer: event.customer.clone(), stage: "reserving".into() })
    }

    /// Stock reserved (at once, or after a restock): confirm the order.
    async fn reserved(&mut self, ctx: &mut Flow<Self>, event: &StockReserved) -> Result<(), DomainError> {
        ctx.cancel("restock");
        ctx.send(ConfirmOrder { order_id: event.order_id.clone() });
        self.stage = "confirming".into();
        Ok(())
    }

    /// Out of stock: the order waits for a restock, until a deadline.
    async fn failed(&mut self, ctx: &mut Flow<Self>, event: &ReservationFailed) -> Result<(), DomainError> {
        let cancel = CancelOrder { order_id: event.order_id.clone(), reason: "no restock in time".into() };
        ctx.schedule_after("restock", restock_wait(&event.order_id), cancel);
        self.stage = "awaiting restock".into();
        Ok(())
    }

    /// Confirmed: the flow is done.
    async fn confirmed(&mut self, ctx: &mut Flow<Self>, _event: &OrderConfirmed) -> Result<(), DomainError> {
        self.stage = "confirmed".into();
        ctx.end();
        Ok(())
    }

    /// Cancelled: the points the order earned are withdrawn, and the flow is done.
    async fn cancelled(&mut self, ctx: &mut Flow<Self>, event: &OrderCancelled) -> Result<(), DomainError> {
        ctx.send(WithdrawPoints {
            customer: event.customer.clone(),
            order_id: event.order_id.clone(),
            points: POINTS_PER_ORDER,
        });
        self.stage = "cancelled".into();
        ctx.end();
        Ok(())
    }
}
