use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub items: HasMany<OrderItem>,
}

#[entity(part_of = Order)]
pub struct OrderItem {
    pub sku: String,
}

#[event(part_of = Order)]
pub struct ItemAdded {
    pub item: OrderItem,
}

fn main() {}
