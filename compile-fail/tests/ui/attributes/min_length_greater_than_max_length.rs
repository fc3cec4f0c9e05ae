use protean::prelude::*;

#[aggregate]
pub struct Customer {
    #[field(min_length = 10, max_length = 2)]
    pub name: String,
}

fn main() {}
