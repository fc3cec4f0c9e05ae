use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub placed: bool,
}

#[event(part_of = Order, version = 2, upcast(from = 1))]
pub struct OrderPlaced {
    pub order_id: Identifier<Order>,
}

fn main() {}
