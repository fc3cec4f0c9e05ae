use protean::prelude::*;

#[command]
pub struct PlaceOrder {
    pub note: String,
}

fn main() {}
