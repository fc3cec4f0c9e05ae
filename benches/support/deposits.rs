//! The background-delivery benchmarks' model: a deposit into a wallet raises
//! `Deposited`, to which two handlers react, each in its own unit of work (a ledger
//! and an audit of the wallet). Handlers keep counts, not lists, so a reaction costs the
//! same however many came before it.
//!
//! When [`record_reactions`] is on, each reaction notes the id of the event it handled
//! and the wall-clock time it handled it, for the commit-to-reaction measurement.

use std::sync::Mutex;

use protean::prelude::*;
use protean::store::OffsetDateTime;

#[aggregate]
pub struct Wallet {
    pub balance: i64,
    pub deposits: u64,
}

/// Puts money in a wallet, opening it on the first deposit.
#[command(part_of = Wallet)]
pub struct Deposit {
    pub id: Identifier<Wallet>,
    pub amount: i64,
}

#[event(part_of = Wallet)]
pub struct Deposited {
    pub id: Identifier<Wallet>,
    pub number: u64,
    pub amount: i64,
}

/// What the bookkeeper booked for a wallet.
#[aggregate]
pub struct Ledger {
    pub entries: u64,
    pub total: i64,
}

/// How many deposits of a wallet the auditor saw.
#[aggregate]
pub struct Audit {
    pub seen: u64,
}

pub struct Wallets;

#[handler(part_of = Wallet)]
impl Wallets {
    async fn deposit(ctx: &mut Context<Wallet>, command: Deposit) -> Result<(), DomainError> {
        let id = command.id.clone();
        let mut wallet =
            ctx.load_or_add(&id, || Ok(Wallet::builder().id(id.clone()).balance(0i64).deposits(0u64).build()?)).await?;
        wallet.balance += command.amount;
        wallet.deposits += 1;
        let number = wallet.deposits;
        wallet.raise(Deposited { id: command.id, number, amount: command.amount });
        Ok(())
    }
}

/// The handled events and when they were handled, while recording is on.
static REACTIONS: Mutex<Option<Vec<(Uuid, OffsetDateTime)>>> = Mutex::new(None);

/// Starts (clearing what was noted) or stops noting reactions.
pub fn record_reactions(on: bool) {
    *REACTIONS.lock().unwrap() = on.then(Vec::new);
}

/// The reactions noted since [`record_reactions`]`(true)`: (event id, when handled).
pub fn reactions() -> Vec<(Uuid, OffsetDateTime)> {
    REACTIONS.lock().unwrap().clone().unwrap_or_default()
}

fn reacted(ctx: &Context<impl Aggregate>) {
    if let Some(noted) = REACTIONS.lock().unwrap().as_mut() {
        noted.push((ctx.cause().causation_id, OffsetDateTime::now_utc()));
    }
}

pub struct Bookkeeping;

#[handler(part_of = Ledger)]
impl Bookkeeping {
    async fn book(ctx: &mut Context<Ledger>, event: &Deposited) -> Result<(), DomainError> {
        let id = event.id.cast::<Ledger>();
        let mut ledger =
            ctx.load_or_add(&id, || Ok(Ledger::builder().id(id.clone()).entries(0u64).total(0i64).build()?)).await?;
        ledger.entries += 1;
        ledger.total += event.amount;
        reacted(ctx);
        Ok(())
    }
}

pub struct Auditing;

#[handler(part_of = Audit)]
impl Auditing {
    async fn audit(ctx: &mut Context<Audit>, event: &Deposited) -> Result<(), DomainError> {
        let id = event.id.cast::<Audit>();
        let mut audit = ctx.load_or_add(&id, || Ok(Audit::builder().id(id.clone()).seen(0u64).build()?)).await?;
        audit.seen += 1;
        reacted(ctx);
        Ok(())
    }
}
