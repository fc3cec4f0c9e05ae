use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub items: HasMany<OrderItem>,
}

#[entity(part_of = Order, version = 2)]
pub struct OrderItem {
    pub sku: String,
}

fn main() {}
