use protean::prelude::*;

#[aggregate]
pub fn order() {}

fn main() {}
