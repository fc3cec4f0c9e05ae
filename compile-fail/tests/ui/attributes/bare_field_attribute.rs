use protean::prelude::*;

#[aggregate]
pub struct Order {
    #[field]
    pub placed: bool,
}

fn main() {}
