use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub items: HasMany<OrderItem>,
}

#[entity(part_of = Order)]
pub struct OrderItem {
    pub sku: String,
}

#[value_object]
pub struct Receipt {
    item: OrderItem,
}

fn main() {}
