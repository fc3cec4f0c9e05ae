use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub __version: u64,
}

fn main() {}
