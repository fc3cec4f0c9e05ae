use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub items: Vec<OrderItem>,
}

#[entity(part_of = Order)]
pub struct OrderItem {
    pub sku: String,
}

fn main() {}
