use protean::prelude::*;

#[value_object]
pub struct Money {
    #[field(identifier)]
    code: String,
    cents: i64,
}

fn main() {}
