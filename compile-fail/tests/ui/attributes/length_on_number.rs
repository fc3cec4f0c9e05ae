use protean::prelude::*;

#[aggregate]
pub struct Order {
    #[field(max_length = 3)]
    pub quantity: u32,
}

fn main() {}
