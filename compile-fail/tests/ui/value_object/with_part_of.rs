use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub placed: bool,
}

#[value_object(part_of = Order)]
pub struct Money {
    cents: i64,
}

fn main() {}
