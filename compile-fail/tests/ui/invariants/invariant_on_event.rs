use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub placed: bool,
}

#[event(part_of = Order)]
#[invariant(post = valid)]
pub struct OrderPlaced {
    pub order_id: Identifier<Order>,
}

impl OrderPlaced {
    fn valid(&self) -> InvariantResult {
        Ok(())
    }
}

fn main() {}
