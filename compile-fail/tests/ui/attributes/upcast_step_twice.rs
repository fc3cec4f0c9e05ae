use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub placed: bool,
}

#[event(part_of = Order, version = 3, upcast(from = 1, with = v1_to_v2), upcast(from = 1, with = v2_to_v3))]
pub struct OrderPlaced {
    pub order_id: Identifier<Order>,
}

fn v1_to_v2(payload: serde_json::Value) -> Result<serde_json::Value, String> {
    Ok(payload)
}

fn v2_to_v3(payload: serde_json::Value) -> Result<serde_json::Value, String> {
    Ok(payload)
}

fn main() {}
