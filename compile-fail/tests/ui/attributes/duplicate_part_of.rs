use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub placed: bool,
}

#[aggregate]
pub struct Invoice {
    pub paid: bool,
}

#[command(part_of = Order, part_of = Invoice)]
pub struct PlaceOrder {
    pub note: String,
}

fn main() {}
