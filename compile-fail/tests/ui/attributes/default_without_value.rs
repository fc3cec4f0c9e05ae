use protean::prelude::*;

#[aggregate]
pub struct Order {
    #[field(default)]
    pub placed: bool,
}

fn main() {}
