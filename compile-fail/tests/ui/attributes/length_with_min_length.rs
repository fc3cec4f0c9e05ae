use protean::prelude::*;

#[value_object]
pub struct Currency {
    #[field(length = 3, min_length = 1)]
    code: String,
}

fn main() {}
