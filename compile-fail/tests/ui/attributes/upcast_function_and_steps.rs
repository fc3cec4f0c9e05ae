use protean::prelude::*;

#[aggregate]
pub struct Order {
    pub placed: bool,
}

#[event(part_of = Order, version = 2, upcast = every_version, upcast(from = 1, with = v1_to_v2))]
pub struct OrderPlaced {
    pub order_id: Identifier<Order>,
}

fn every_version(_from: u32, payload: serde_json::Value) -> Result<serde_json::Value, String> {
    Ok(payload)
}

fn v1_to_v2(payload: serde_json::Value) -> Result<serde_json::Value, String> {
    Ok(payload)
}

fn main() {}
