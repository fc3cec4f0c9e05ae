use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub total: i64,
}

#[event(part_of = Order)]
pub struct OrderPlaced {
    pub order_id: Identifier<Order>,
}

#[process_manager]
pub struct Fulfilment {
    pub order_id: Identifier<Order>,
}

#[process_manager]
impl Fulfilment {
    #[correlate(order)]
    async fn placed(ctx: &mut Flow<Self>, event: &OrderPlaced) -> Result<Self, DomainError> {
        let _ = ctx;
        Ok(Fulfilment { order_id: event.order_id.clone() })
    }
}
fn main() {}
