use protean::prelude::*;

#[value_object]
pub enum Payment {
    Cash,
    Card { last_four: String },
}

fn main() {}
