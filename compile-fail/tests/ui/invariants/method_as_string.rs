use protean::prelude::*;

#[aggregate]
#[invariant(post = "has_items")]
pub struct Order {
    pub count: u32,
}

impl Order {
    fn has_items(&self) -> InvariantResult {
        Ok(())
    }
}

fn main() {}
