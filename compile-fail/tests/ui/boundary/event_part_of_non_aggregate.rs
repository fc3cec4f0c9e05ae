use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub items: HasMany<OrderItem>,
}

#[entity(part_of = Order)]
pub struct OrderItem {
    pub sku: String,
}

#[event(part_of = OrderItem)]
pub struct ItemAdded {
    pub sku: String,
}

fn main() {}
