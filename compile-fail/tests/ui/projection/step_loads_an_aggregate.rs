use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub total: i64,
}

#[event(part_of = Order)]
pub struct OrderPlaced {
    pub order_id: Identifier<Order>,
}

#[process_manager(correlate = order_id)]
pub struct Fulfilment {
    pub order_id: Identifier<Order>,
}

#[process_manager]
impl Fulfilment {
    async fn placed(ctx: &mut Flow<Self>, event: &OrderPlaced) -> Result<Self, DomainError> {
        let order = ctx.load(&event.order_id)?;
        let _ = order.total;
        Ok(Fulfilment { order_id: event.order_id.clone() })
    }
}
fn main() {}
