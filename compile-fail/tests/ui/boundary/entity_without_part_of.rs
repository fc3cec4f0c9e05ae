use protean::prelude::*;

#[entity]
pub struct OrderItem {
    pub sku: String,
}

fn main() {}
