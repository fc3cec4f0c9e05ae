use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub total: i64,
}

/// A receipt with no serde derives: a command's reply is kept as JSON for a copy of
/// the command, so it must be `Serialize` and `Deserialize`.
pub struct Receipt {
    pub number: u64,
}

#[command(part_of = Order, returns = Receipt)]
pub struct PlaceOrder {
    pub order_id: Identifier<Order>,
}

pub struct OrderCommands;

#[handler(part_of = Order)]
impl OrderCommands {
    async fn place(ctx: &mut Context<Order>, command: PlaceOrder) -> Result<Receipt, DomainError> {
        let _ = (ctx, command);
        Ok(Receipt { number: 1 })
    }
}
fn main() {}
