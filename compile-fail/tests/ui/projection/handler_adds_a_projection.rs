use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub total: i64,
}

#[command(part_of = Order)]
pub struct PlaceOrder {
    pub order_id: Identifier<Order>,
}

#[projection]
pub struct OrderView {
    #[key]
    pub order_id: Identifier<Order>,
    pub total: i64,
}

pub struct OrderCommands;

#[handler(part_of = Order)]
impl OrderCommands {
    async fn place(ctx: &mut Context<Order>, command: PlaceOrder) -> Result<(), DomainError> {
        ctx.add(OrderView { order_id: command.order_id, total: 0 })?;
        Ok(())
    }
}
fn main() {}
