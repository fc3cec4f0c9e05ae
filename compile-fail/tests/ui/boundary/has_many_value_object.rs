use protean::prelude::*;

#[value_object]
pub struct Money {
    cents: i64,
}

#[aggregate]
pub struct Order {
    pub prices: HasMany<Money>,
}

fn main() {}
