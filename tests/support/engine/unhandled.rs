//! A command no handler takes: the domain refuses to build.

use protean::prelude::*;

#[aggregate]
pub struct Ledger {
    pub total: i64,
}

#[command(part_of = Ledger)]
pub struct Post {
    pub amount: i64,
}
