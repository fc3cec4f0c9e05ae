use protean::prelude::*;

#[value_object]
pub struct Money {
    cents: i64,
}

#[command(part_of = Money)]
pub struct ChangeAmount {
    pub cents: i64,
}

fn main() {}
