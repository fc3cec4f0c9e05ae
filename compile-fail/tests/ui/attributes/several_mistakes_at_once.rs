use protean::prelude::*;

#[aggregate]
pub struct Customer {
    #[field(required)]
    pub name: String,
    #[field(minimum = 18)]
    pub age: u8,
    #[field(unique, max_length = 80)]
    pub email: String,
}

fn main() {}
