use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub id: String,
}

fn main() {}
