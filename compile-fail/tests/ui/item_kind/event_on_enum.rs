use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub placed: bool,
}

#[event(part_of = Order)]
pub enum OrderEvent {
    Placed,
    Cancelled,
}

fn main() {}
