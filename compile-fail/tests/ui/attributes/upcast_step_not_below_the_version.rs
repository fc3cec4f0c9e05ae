use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub placed: bool,
}

// A step reads a version below the event's: from 3 on version 3 reads nothing stored.
#[event(part_of = Order, version = 3, upcast(from = 3, with = v2_to_v3))]
pub struct OrderPlaced {
    pub order_id: Identifier<Order>,
}

fn v2_to_v3(payload: serde_json::Value) -> Result<serde_json::Value, String> {
    Ok(payload)
}

fn main() {}
