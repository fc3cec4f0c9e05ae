use protean::prelude::*;

#[aggregate]
pub struct Customer {
    pub name: String,
}

#[projection]
pub struct CustomerCreditView {
    #[key]
    pub customer_id: Identifier<Customer>,
    #[key]
    pub email: String,
}
fn main() {}
