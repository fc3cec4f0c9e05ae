use protean::prelude::*;

#[aggregate]
pub struct Order {
    #[field(default = "no")]
    pub placed: bool,
}

fn main() {}
