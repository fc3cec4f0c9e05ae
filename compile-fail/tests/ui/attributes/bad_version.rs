use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub placed: bool,
}

#[event(part_of = Order, version = 0)]
pub struct OrderPlaced {
    pub order_id: Identifier<Order>,
}

fn main() {}
