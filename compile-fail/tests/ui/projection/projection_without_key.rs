use protean::prelude::*;

#[aggregate]
pub struct Customer {
    pub name: String,
}

#[projection]
pub struct CustomerCreditView {
    pub customer_id: Identifier<Customer>,
    pub available_cents: i64,
}
fn main() {}
