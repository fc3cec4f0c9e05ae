use protean::prelude::*;

#[aggregate]
pub struct Order;

fn main() {}
