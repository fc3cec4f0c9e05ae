use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub total: i64,
}

#[aggregate]
pub struct Inventory {
    pub available: u32,
}

#[command(part_of = Order)]
pub struct PlaceOrder {
    pub order_id: Identifier<Order>,
    pub sku: Identifier<Inventory>,
}

#[command(part_of = Inventory)]
pub struct ReserveStock {
    pub sku: Identifier<Inventory>,
}

#[event(part_of = Order)]
pub struct OrderPlaced {
    pub order_id: Identifier<Order>,
    pub sku: Identifier<Inventory>,
}

pub struct OrderCommands;

#[handler(part_of = Order)]
impl OrderCommands {
    async fn place(ctx: &mut Context<Order>, command: PlaceOrder) -> Result<(), DomainError> {
        let stock = ctx.load(&command.sku).await?;
        stock.available -= 1;
        Ok(())
    }
}
fn main() {}
