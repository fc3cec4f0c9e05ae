use protean::prelude::*;

#[aggregate]
pub struct Order {
    #[field(identifier)]
    pub order_id: Identifier<Order>,
    pub id: Identifier<Order>,
}

fn main() {}
