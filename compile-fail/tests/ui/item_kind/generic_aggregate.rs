use protean::prelude::*;

#[aggregate]
pub struct Order<T> {
    pub payload: T,
}

fn main() {}
