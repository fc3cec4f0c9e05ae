use protean::prelude::*;

#[value_object]
pub struct Email(String);

fn main() {}
