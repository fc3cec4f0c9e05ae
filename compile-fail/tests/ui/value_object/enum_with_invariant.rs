use protean::prelude::*;

#[value_object]
#[invariant(post = allowed)]
pub enum Status {
    Draft,
    Placed,
}

impl Status {
    fn allowed(&self) -> InvariantResult {
        Ok(())
    }
}

fn main() {}
