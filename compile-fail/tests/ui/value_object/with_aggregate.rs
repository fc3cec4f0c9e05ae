use protean::prelude::*;

#[aggregate]
pub struct Customer {
    pub name: String,
}

#[value_object]
pub struct Address {
    owner: Customer,
}

fn main() {}
