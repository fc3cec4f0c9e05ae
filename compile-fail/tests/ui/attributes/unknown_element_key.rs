use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub placed: bool,
}

#[event(part_of = Order, topic = "orders")]
pub struct OrderPlaced {
    pub order_id: Identifier<Order>,
}

fn main() {}
