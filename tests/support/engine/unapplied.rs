//! An event-sourced aggregate with an event it has no apply method for.

use protean::prelude::*;

#[aggregate(event_sourced)]
pub struct Wallet {
    pub coins: u32,
}

#[event(part_of = Wallet)]
pub struct CoinAdded {
    pub coins: u32,
}

#[event(part_of = Wallet)]
pub struct CoinLost {
    pub coins: u32,
}

#[apply]
impl Wallet {
    fn added(&mut self, event: &CoinAdded) {
        self.coins += event.coins;
    }
}
