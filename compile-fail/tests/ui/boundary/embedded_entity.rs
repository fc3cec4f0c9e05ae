use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub items: HasMany<OrderItem>,
}

#[entity(part_of = Order)]
pub struct OrderItem {
    pub sku: String,
}

#[aggregate]
pub struct Shipment {
    pub item: OrderItem,
}

fn main() {}
