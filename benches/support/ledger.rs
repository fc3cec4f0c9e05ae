//! The projection benchmarks' model: accounts of a few owners, deposited into and
//! withdrawn from, and two async projections of their events:
//!
//! * `AccountBalance` (in `views::balances`): one row per account, updated by every event
//!   of the account: many rows, each changed many times;
//! * `OwnerTotal` (in `views::owners`): one row per owner: a handful of rows, each
//!   changed by a large share of all events.
//!
//! Each projection lives in a module of its own, so a domain can take the accounts with
//! one projection, both, or none (`Domain::builder().module(..)`).

pub mod accounts {
    use protean::prelude::*;

    #[aggregate]
    pub struct Account {
        pub owner: String,
        pub balance: i64,
    }

    /// Puts money in an account, opening it on the first deposit.
    #[command(part_of = Account)]
    pub struct Deposit {
        pub id: Identifier<Account>,
        pub owner: String,
        pub cents: i64,
    }

    #[event(part_of = Account)]
    pub struct Deposited {
        pub account_id: Identifier<Account>,
        pub owner: String,
        pub cents: i64,
    }

    /// Raised only by the benchmark's fill (written straight through the store).
    #[event(part_of = Account)]
    pub struct Withdrawn {
        pub account_id: Identifier<Account>,
        pub owner: String,
        pub cents: i64,
    }

    pub struct Accounts;

    #[handler(part_of = Account)]
    impl Accounts {
        async fn deposit(ctx: &mut Context<Account>, command: Deposit) -> Result<(), DomainError> {
            let id = command.id.clone();
            let owner = command.owner.clone();
            let mut account = ctx
                .load_or_add(&id, || Ok(Account::builder().id(id.clone()).owner(owner).balance(0i64).build()?))
                .await?;
            account.balance += command.cents;
            account.raise(Deposited { account_id: command.id, owner: command.owner, cents: command.cents });
            Ok(())
        }
    }
}

pub mod views {
    pub mod balances {
        use protean::prelude::*;

        use super::super::accounts::{Account, Deposited, Withdrawn};

        /// One row per account.
        #[projection]
        pub struct AccountBalance {
            #[key]
            pub account_id: Identifier<Account>,
            #[index]
            pub owner: String,
            #[index]
            pub balance: i64,
            pub deposits: u32,
            pub withdrawals: u32,
        }

        impl AccountBalance {
            /// An account's row before its first event.
            pub fn opened(account_id: &Identifier<Account>, owner: &str) -> Self {
                AccountBalance {
                    account_id: account_id.clone(),
                    owner: owner.to_owned(),
                    balance: 0,
                    deposits: 0,
                    withdrawals: 0,
                }
            }
        }

        pub struct AccountBalances;

        #[projector(projection = AccountBalance)]
        impl AccountBalances {
            async fn deposited(rows: &mut Rows<AccountBalance>, event: &Deposited) -> Result<(), DomainError> {
                let new = || AccountBalance::opened(&event.account_id, &event.owner);
                rows.upsert(&event.account_id, new, |row| {
                    row.balance += event.cents;
                    row.deposits += 1;
                })
                .await
            }

            async fn withdrawn(rows: &mut Rows<AccountBalance>, event: &Withdrawn) -> Result<(), DomainError> {
                let new = || AccountBalance::opened(&event.account_id, &event.owner);
                rows.upsert(&event.account_id, new, |row| {
                    row.balance -= event.cents;
                    row.withdrawals += 1;
                })
                .await
            }
        }
    }

    pub mod owners {
        use protean::prelude::*;

        use super::super::accounts::{Deposited, Withdrawn};

        /// One row per owner: the net of every account of the owner.
        #[projection]
        pub struct OwnerTotal {
            #[key]
            pub owner: String,
            #[index]
            pub total: i64,
            pub events: u64,
        }

        pub struct OwnerTotals;

        #[projector(projection = OwnerTotal)]
        impl OwnerTotals {
            async fn deposited(rows: &mut Rows<OwnerTotal>, event: &Deposited) -> Result<(), DomainError> {
                let new = || OwnerTotal { owner: event.owner.clone(), total: 0, events: 0 };
                rows.upsert(&event.owner, new, |row| {
                    row.total += event.cents;
                    row.events += 1;
                })
                .await
            }

            async fn withdrawn(rows: &mut Rows<OwnerTotal>, event: &Withdrawn) -> Result<(), DomainError> {
                let new = || OwnerTotal { owner: event.owner.clone(), total: 0, events: 0 };
                rows.upsert(&event.owner, new, |row| {
                    row.total -= event.cents;
                    row.events += 1;
                })
                .await
            }
        }
    }
}
