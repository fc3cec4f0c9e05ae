use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub total: i64,
}

#[event(part_of = Order)]
pub struct OrderPlaced {
    pub order_id: Identifier<Order>,
}

pub struct OrderViews;

#[projector]
impl OrderViews {
    async fn placed(rows: &mut Rows<OrderView>, event: &OrderPlaced) -> Result<(), DomainError> {
        let _ = (rows, event);
        Ok(())
    }
}
fn main() {}
