use protean::prelude::*;

#[aggregate]
pub struct Customer {
    #[field(min = 1)]
    pub name: String,
}

fn main() {}
