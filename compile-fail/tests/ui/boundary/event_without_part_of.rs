use protean::prelude::*;

#[event]
pub struct OrderPlaced {
    pub note: String,
}

fn main() {}
