use protean::prelude::*;

#[aggregate]
pub struct Order(u32, bool);

fn main() {}
