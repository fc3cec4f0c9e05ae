use protean::prelude::*;

#[aggregate(event_sourced)]
pub struct Account {
    pub balance: i64,
}

#[aggregate]
pub struct Customer {
    pub name: String,
}

#[event(part_of = Customer)]
pub struct CustomerRenamed {
    pub name: String,
}

#[apply]
impl Account {
    fn renamed(&mut self, event: &CustomerRenamed) {
        let _ = event;
    }
}

fn main() {}
