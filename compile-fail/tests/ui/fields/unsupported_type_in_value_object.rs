use protean::prelude::*;

#[value_object]
pub struct Money {
    cents: std::collections::HashMap<String, i64>,
}

fn main() {}
