use protean::prelude::*;

#[aggregate]
pub enum Order {
    Draft,
    Placed,
}

fn main() {}
