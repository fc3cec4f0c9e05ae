use protean::prelude::*;

#[aggregate]
pub struct Customer {
    pub name: String,
}

#[aggregate]
pub struct Order {
    pub id: Identifier<Customer>,
}

fn main() {}
