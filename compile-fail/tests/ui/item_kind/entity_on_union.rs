use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub placed: bool,
}

#[entity(part_of = Order)]
pub union Slot {
    pub number: u32,
    pub flag: bool,
}

fn main() {}
