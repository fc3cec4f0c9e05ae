use protean::prelude::*;

#[aggregate]
pub struct Order {
    #[field(min = 10, max = 1)]
    pub quantity: u32,
}

fn main() {}
