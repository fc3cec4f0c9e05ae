use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub placed: bool,
}

#[event(part_of = Order)]
pub struct OrderPlaced {
    #[field(identifier)]
    pub order_id: Identifier<Order>,
}

fn main() {}
