use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub items: HasMany<OrderItem>,
}

#[entity(part_of = Order)]
pub struct OrderItem {
    pub sku: String,
}

#[command(part_of = Order)]
pub struct AddItems {
    pub items: HasMany<OrderItem>,
}

fn main() {}
