use protean::prelude::*;

#[aggregate]
#[invariant(post = has_items)]
pub struct Order {
    pub count: u32,
}

impl Order {
    fn has_items(&self) -> bool {
        self.count > 0
    }
}

fn main() {}
