use protean::prelude::*;

#[aggregate]
pub struct Order {
    #[field(identifier)]
    pub order_id: Identifier<Order>,
    #[field(identifier)]
    pub reference: Identifier<Order>,
}

fn main() {}
