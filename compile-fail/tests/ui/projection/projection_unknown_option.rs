use protean::prelude::*;

#[projection(versoin = 2)]
pub struct CustomerCreditView {
    #[key]
    pub customer_id: String,
}
fn main() {}
