use protean::prelude::*;

#[aggregate(event_sourced)]
pub struct Account {
    pub balance: i64,
}

#[event(part_of = Account)]
pub struct Deposited {
    pub amount: i64,
}

#[apply]
impl Account {
    fn deposited(&mut self, event: &Deposited) -> Result<(), DomainError> {
        self.balance += event.amount;
        Ok(())
    }
}

fn main() {}
