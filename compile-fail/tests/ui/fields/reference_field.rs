use protean::prelude::*;

#[aggregate]
pub struct Customer {
    pub name: &'static str,
}

fn main() {}
