use protean::prelude::*;

#[aggregate(event_sourced = true)]
pub struct Account {
    pub balance: i64,
}

fn main() {}
