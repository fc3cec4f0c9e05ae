use protean::prelude::*;

#[derive(Clone, Debug, PartialEq)]
pub struct Address {
    pub street: String,
}

#[aggregate]
pub struct Customer {
    pub address: Address,
}

fn main() {}
