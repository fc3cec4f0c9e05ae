use protean::prelude::*;

#[value_object]
#[invariant(pre = positive)]
pub struct Money {
    cents: i64,
}

impl Money {
    fn positive(&self) -> InvariantResult {
        Ok(())
    }
}

fn main() {}
