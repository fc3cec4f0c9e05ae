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

pub struct InventoryReactions;

#[handler(part_of = Order)]
impl InventoryReactions {
    async fn place(ctx: &mut Context<Order>, command: PlaceOrder) -> Result<(), DomainError> {
        let stock = ctx.read::<Inventory>("SKU-1").await?;
        let _ = (stock, command);
        Ok(())
    }
}
fn main() {}
