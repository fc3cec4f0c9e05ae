//! The ledger filled straight through the store, for the rebuild benchmarks (§7a and §11
//! of docs/benchmarks.md): events written through `Records::commit` in transactions of
//! [`FILL_BATCH`], 100 per account of [`OWNERS`] owners, written delivered. A bench that
//! includes this file includes `support/ledger.rs` as `mod ledger` too.

use protean::model::RaisedEvent;
use protean::prelude::*;
use protean::store::{Batch, Cause, Commit, Envelope, Store, StreamId};

use crate::ledger::accounts::{Account, Deposited, Withdrawn};

/// Events of each account.
pub const EVENTS_PER_ACCOUNT: u64 = 100;
/// Events of one account per commit: 4 deposits, then a withdrawal.
pub const EVENTS_PER_COMMIT: u64 = 5;
/// Accounts' owners: the rows of `OwnerTotal`.
pub const OWNERS: usize = 8;
/// Events per fill transaction.
pub const FILL_BATCH: u64 = 1_000;

/// What the rows must add up to.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Expected {
    pub events: u64,
    pub accounts: u64,
    /// The sum of every account's balance (and of every owner's total).
    pub net: i64,
}

/// Writes `events` (rounded up to whole accounts) through the store, a round of one
/// commit per account after another, in transactions of [`FILL_BATCH`] events.
pub async fn fill(store: &dyn Store, events: u64) -> Expected {
    let accounts = events.div_ceil(EVENTS_PER_ACCOUNT).max(1);
    let ids: Vec<Identifier<Account>> = (0..accounts).map(|_| Identifier::generate()).collect();
    let owner = |account: usize| format!("owner-{}", account % OWNERS);
    let mut balances = vec![0i64; ids.len()];
    let commits_per_batch = (FILL_BATCH / EVENTS_PER_COMMIT) as usize;
    let mut batch = Vec::with_capacity(commits_per_batch);
    let mut written = 0u64;
    for round in 0..EVENTS_PER_ACCOUNT / EVENTS_PER_COMMIT {
        for (a, id) in ids.iter().enumerate() {
            let stream = StreamId::new("Account", id.to_string());
            let cause = Cause::command(uuid::Uuid::now_v7());
            let events: Vec<Envelope> = (0..EVENTS_PER_COMMIT)
                .map(|k| {
                    let (account_id, owner) = (id.clone(), owner(a));
                    let event: RaisedEvent = if k + 1 < EVENTS_PER_COMMIT {
                        let cents = 100 + (round * EVENTS_PER_COMMIT + k) as i64;
                        balances[a] += cents;
                        Deposited { account_id, owner, cents }.into()
                    } else {
                        balances[a] -= 150;
                        Withdrawn { account_id, owner, cents: 150 }.into()
                    };
                    Envelope::new(event, stream.clone(), cause).expect("an envelope")
                })
                .collect();
            let state = format!(r#"{{"id":"{id}","owner":"{}","balance":{}}}"#, owner(a), balances[a]);
            batch.push(Commit {
                stream,
                expected_version: round,
                advance: 1,
                state: Some(state.into()),
                events,
                snapshot: None,
            });
            if batch.len() == commits_per_batch {
                written += write(store, std::mem::take(&mut batch)).await;
            }
        }
    }
    if !batch.is_empty() {
        written += write(store, batch).await;
    }
    Expected { events: written, accounts, net: balances.iter().sum() }
}

/// One fill transaction, its events written as delivered.
async fn write(store: &dyn Store, commits: Vec<Commit>) -> u64 {
    let delivered: Vec<uuid::Uuid> = commits.iter().flat_map(|c| c.events.iter().map(|e| e.id)).collect();
    let count = delivered.len() as u64;
    store.commit(Batch { commits, delivered, ..Batch::default() }).await.expect("filled");
    count
}
