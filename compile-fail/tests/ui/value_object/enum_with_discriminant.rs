use protean::prelude::*;

#[value_object]
pub enum Status {
    Draft = 1,
    Placed = 2,
}

fn main() {}
