use protean::prelude::*;

#[aggregate]
pub struct Customer {
    #[field(max_length = 50)]
    #[field(max_length = 80)]
    pub name: String,
}

fn main() {}
