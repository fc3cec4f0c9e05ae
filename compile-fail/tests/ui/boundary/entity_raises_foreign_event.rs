use protean::prelude::*;

#[aggregate]
pub struct Customer {
    pub name: String,
}

#[event(part_of = Customer)]
pub struct CustomerRenamed {
    pub name: String,
}

#[aggregate]
pub struct Order {
    pub items: HasMany<OrderItem>,
}

#[entity(part_of = Order)]
pub struct OrderItem {
    pub quantity: u32,
}

impl OrderItem {
    pub fn f(&mut self) {
        self.raise(CustomerRenamed { name: String::from("Ada") });
    }
}

fn main() {}
