use protean::prelude::*;

#[aggregate]
pub struct Order {
    #[field(identifier = true)]
    pub order_id: Identifier<Order>,
}

fn main() {}
