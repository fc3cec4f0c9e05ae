use protean::prelude::*;

#[value_object]
pub struct Label<'a> {
    text: &'a str,
}

fn main() {}
