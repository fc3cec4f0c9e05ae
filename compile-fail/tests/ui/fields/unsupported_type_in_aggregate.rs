use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub receipt: std::fs::File,
}

fn main() {}
