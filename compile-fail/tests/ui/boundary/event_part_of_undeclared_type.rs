use protean::prelude::*;

pub struct Order {
    pub placed: bool,
}

#[event(part_of = Order)]
pub struct OrderPlaced {
    pub note: String,
}

fn main() {}
