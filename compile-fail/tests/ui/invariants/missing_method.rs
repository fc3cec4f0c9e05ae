use protean::prelude::*;

#[aggregate]
#[invariant(post = has_items)]
pub struct Order {
    pub count: u32,
}

fn main() {}
