use protean::prelude::*;

#[aggregate(version = 2)]
pub struct Order {
    pub placed: bool,
}

fn main() {}
