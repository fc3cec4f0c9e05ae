use protean::prelude::*;

#[aggregate]
#[invariant(before = not_cancelled)]
pub struct Order {
    pub cancelled: bool,
}

impl Order {
    fn not_cancelled(&self) -> InvariantResult {
        Ok(())
    }
}

fn main() {}
