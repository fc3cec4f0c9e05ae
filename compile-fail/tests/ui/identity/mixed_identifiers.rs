use protean::prelude::*;

#[aggregate]
pub struct Customer {
    pub name: String,
}

#[aggregate]
pub struct Order {
    pub customer_id: Identifier<Customer>,
}

fn main() {
    let order_id = Identifier::<Order>::generate();
    let _ = Order::builder().customer_id(order_id).build();
}
