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
    async fn placed(&mut self, ctx: &mut Context<Order>, event: &OrderPlaced) -> Result<(), DomainError> {
        let _ = (ctx, event);
        Ok(())
    }
}
fn main() {}
