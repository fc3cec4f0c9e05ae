use protean::prelude::*;

#[projection]
pub struct CustomerCreditView(#[key] String, #[index] i64);
fn main() {}
