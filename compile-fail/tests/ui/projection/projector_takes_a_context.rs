use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub total: i64,
}

#[event(part_of = Order)]
pub struct OrderPlaced {
    pub order_id: Identifier<Order>,
}

#[projection]
pub struct OrderView {
    #[key]
    pub order_id: Identifier<Order>,
}

pub struct OrderViews;

#[projector(projection = OrderView)]
impl OrderViews {
    async fn placed(ctx: &mut Context<Order>, event: &OrderPlaced) -> Result<(), DomainError> {
        let _ = (ctx, event);
        Ok(())
    }
}
fn main() {}
