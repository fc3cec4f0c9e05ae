use protean::prelude::*;

#[aggregate]
pub struct Customer {
    #[field(required)]
    pub name: String,
}

fn main() {}
