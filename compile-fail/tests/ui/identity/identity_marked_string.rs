use protean::prelude::*;

#[aggregate]
pub struct Order {
    #[field(identifier)]
    pub order_id: String,
}

fn main() {}
