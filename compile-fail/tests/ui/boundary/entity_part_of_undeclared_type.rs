use protean::prelude::*;

pub struct Order {
    pub placed: bool,
}

#[entity(part_of = Order)]
pub struct OrderItem {
    pub sku: String,
}

fn main() {}
