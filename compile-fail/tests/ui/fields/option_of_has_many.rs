use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub items: Option<HasMany<OrderItem>>,
}

#[entity(part_of = Order)]
pub struct OrderItem {
    pub sku: String,
}

fn main() {}
