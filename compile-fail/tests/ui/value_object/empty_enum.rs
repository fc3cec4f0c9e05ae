use protean::prelude::*;

#[value_object]
pub enum Status {}

fn main() {}
