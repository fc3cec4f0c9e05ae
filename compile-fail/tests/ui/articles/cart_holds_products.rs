//! "Aggregate Boundaries in Go", the cart that knows too much: a Cart holding live
//! Product aggregates. The fix is a snapshot value object plus the product's identity.
use protean::prelude::*;

#[aggregate]
pub struct Product {
    pub sku: String,
    pub stock: u32,
}

#[aggregate]
pub struct Cart {
    pub items: Vec<Product>,
}

fn main() {}
