//! "Design Small Aggregates", mistake 2: `HasOne(Customer)` inside Order embeds another
//! aggregate. The fix is `customer_id: Identifier<Customer>`.
use protean::prelude::*;

#[aggregate]
pub struct Customer {
    pub name: String,
}

#[aggregate]
pub struct Order {
    pub customer: HasOne<Customer>,
}

fn main() {}
