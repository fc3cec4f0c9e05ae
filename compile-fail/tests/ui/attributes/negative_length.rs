use protean::prelude::*;

#[aggregate]
pub struct Customer {
    #[field(max_length = -1)]
    pub name: String,
}

fn main() {}
