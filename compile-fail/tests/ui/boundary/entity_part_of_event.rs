use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub placed: bool,
}

#[event(part_of = Order)]
pub struct OrderPlaced {
    pub order_id: Identifier<Order>,
}

#[entity(part_of = OrderPlaced)]
pub struct PlacedLine {
    pub sku: String,
}

fn main() {}
