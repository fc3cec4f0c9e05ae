use protean::prelude::*;

#[aggregate]
pub struct Customer {
    pub name: String,
}

#[aggregate]
pub struct Order {
    pub customer: Customer,
}

fn main() {}
