use protean::prelude::*;

pub struct Warehouse;

#[aggregate]
pub struct Order {
    pub warehouse_id: Identifier<Warehouse>,
}

fn main() {}
