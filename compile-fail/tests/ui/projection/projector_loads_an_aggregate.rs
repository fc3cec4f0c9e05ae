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
    pub total: i64,
}

pub struct OrderViews;

#[projector(projection = OrderView)]
impl OrderViews {
    async fn placed(rows: &mut Rows<OrderView>, event: &OrderPlaced) -> Result<(), DomainError> {
        let order = rows.load(&event.order_id)?;
        rows.put(OrderView { order_id: event.order_id.clone(), total: order.total }).await
    }
}
fn main() {}
