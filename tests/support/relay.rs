//! A model whose reactions can be told to fail, for background delivery: deposits into
//! wallets, booked by a healthy handler and audited by one that fails on demand.
//! Shared by the background delivery tests and the multi-process tests.

use std::collections::HashMap;
use std::sync::Mutex;

use protean::prelude::*;

#[aggregate]
pub struct Wallet {
    pub balance: i64,
    pub deposits: u64,
}

/// Puts money in a wallet (opening it on the first deposit); replies with the
/// deposit's number in the wallet.
#[command(part_of = Wallet, returns = u64)]
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

/// The numbers of a wallet's deposits, in the order the bookkeeper saw them.
#[aggregate]
pub struct Ledger {
    pub numbers: Vec<u64>,
}

/// The numbers of a wallet's deposits, in the order the auditor saw them.
#[aggregate]
pub struct Audit {
    pub numbers: Vec<u64>,
}

pub struct Wallets;

#[handler(part_of = Wallet)]
impl Wallets {
    async fn deposit(ctx: &mut Context<Wallet>, command: Deposit) -> Result<u64, DomainError> {
        let id = command.id.clone();
        let mut wallet =
            ctx.load_or_add(&id, || Ok(Wallet::builder().id(id.clone()).balance(0i64).deposits(0u64).build()?)).await?;
        wallet.balance += command.amount;
        wallet.deposits += 1;
        let number = wallet.deposits;
        wallet.raise(Deposited { id: command.id, number, amount: command.amount });
        Ok(number)
    }
}

/// A handler's short name and a deposit's number: `("book", 1)`.
pub type Reaction = (&'static str, u64);

/// What the handlers took, per wallet id, in the order they ran.
static REACTIONS: Mutex<Option<HashMap<String, Vec<Reaction>>>> = Mutex::new(None);

fn reacted(event: &Deposited, handler: &'static str) {
    let mut reactions = REACTIONS.lock().unwrap();
    reactions.get_or_insert_with(HashMap::new).entry(event.id.to_string()).or_default().push((handler, event.number));
}

/// The deposits of `wallet` the handlers took, in the order they ran (a run whose unit
/// of work then failed to commit counts too).
pub fn reactions(wallet: &Identifier<Wallet>) -> Vec<Reaction> {
    REACTIONS.lock().unwrap().get_or_insert_with(HashMap::new).get(&wallet.to_string()).cloned().unwrap_or_default()
}

pub struct Bookkeeping;

#[handler(part_of = Ledger)]
impl Bookkeeping {
    async fn book(ctx: &mut Context<Ledger>, event: &Deposited) -> Result<(), DomainError> {
        let id = event.id.cast::<Ledger>();
        let mut ledger = ctx.load_or_add(&id, || Ok(Ledger::builder().id(id.clone()).numbers(vec![]).build()?)).await?;
        ledger.numbers.push(event.number);
        reacted(event, "book");
        Ok(())
    }
}

/// How the auditor fails, per wallet id: `Some(n)` fails the next `n` attempts, `None`
/// (not in the map) never fails, `u32::MAX` always fails.
static FAILURES: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);

/// Makes the auditor fail `times` times on deposits of `wallet` (`u32::MAX`: always).
pub fn fail_audits(wallet: &Identifier<Wallet>, times: u32) {
    FAILURES.lock().unwrap().get_or_insert_with(HashMap::new).insert(wallet.to_string(), times);
}

fn audit_fails(wallet: &Identifier<Wallet>) -> bool {
    let mut failures = FAILURES.lock().unwrap();
    let Some(left) = failures.get_or_insert_with(HashMap::new).get_mut(&wallet.to_string()) else { return false };
    match *left {
        0 => false,
        u32::MAX => true,
        _ => {
            *left -= 1;
            true
        }
    }
}

pub struct Auditing;

#[handler(part_of = Audit)]
impl Auditing {
    async fn audit(ctx: &mut Context<Audit>, event: &Deposited) -> Result<(), DomainError> {
        if audit_fails(&event.id) {
            return Err(DomainError::rule(format!("the auditor is down for deposit #{}", event.number)));
        }
        let id = event.id.cast::<Audit>();
        let mut audit = ctx.load_or_add(&id, || Ok(Audit::builder().id(id.clone()).numbers(vec![]).build()?)).await?;
        audit.numbers.push(event.number);
        reacted(event, "audit");
        Ok(())
    }
}
