//! "Aggregate Boundaries in Go": confirming an order must not change inventory in the
//! same transaction. An Order cannot even raise Inventory's event.
use protean::prelude::*;

#[aggregate]
pub struct Inventory {
    pub available: u32,
}

#[event(part_of = Inventory)]
pub struct StockReserved {
    pub quantity: u32,
}

#[aggregate]
pub struct Order {
    pub confirmed: bool,
}

impl Order {
    pub fn confirm(&mut self) {
        self.confirmed = true;
        self.raise(StockReserved { quantity: 1 });
    }
}

fn main() {}
