use protean::prelude::*;

#[value_object]
pub struct Money {
    cents: i64,
}

#[entity(part_of = Money)]
pub struct Coin {
    pub year: u16,
}

fn main() {}
