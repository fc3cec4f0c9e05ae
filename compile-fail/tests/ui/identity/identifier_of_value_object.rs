use protean::prelude::*;

#[value_object]
pub struct Money {
    cents: i64,
}

#[aggregate]
pub struct Order {
    pub total: Identifier<Money>,
}

fn main() {}
