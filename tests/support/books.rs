//! A model for projections: accounts charged by their owners, with an async projection
//! of each account (`AccountView`) and an inline projection of each owner's totals
//! (`OwnerTotal`, one row changed by many accounts' streams). The projections live in
//! `views`, so a domain built from `accounts` alone writes events no projector sees.

pub mod accounts {
    use protean::prelude::*;

    #[aggregate]
    pub struct Account {
        pub owner: String,
        pub balance: i64,
        pub charges: u32,
    }

    /// Charges an account (opening it on the first charge).
    #[command(part_of = Account)]
    pub struct Charge {
        pub id: Identifier<Account>,
        pub owner: String,
        pub cents: i64,
    }

    #[event(part_of = Account)]
    pub struct Charged {
        pub account_id: Identifier<Account>,
        pub owner: String,
        pub cents: i64,
        pub number: u32,
    }

    pub struct Accounts;

    #[handler(part_of = Account)]
    impl Accounts {
        async fn charge(ctx: &mut Context<Account>, command: Charge) -> Result<(), DomainError> {
            let id = command.id.clone();
            let owner = command.owner.clone();
            let mut account = ctx
                .load_or_add(&id, || {
                    Ok(Account::builder().id(id.clone()).owner(owner).balance(0i64).charges(0u32).build()?)
                })
                .await?;
            account.balance += command.cents;
            account.charges += 1;
            let number = account.charges;
            account.raise(Charged { account_id: command.id, owner: command.owner, cents: command.cents, number });
            Ok(())
        }
    }
}

pub mod views {
    use protean::prelude::*;

    use super::accounts::{Account, Charged};

    /// One row per account: its balance and the numbers of its charges, in the order
    /// the projector saw them.
    #[projection]
    pub struct AccountView {
        #[key]
        pub account_id: Identifier<Account>,
        #[index]
        pub owner: String,
        #[index]
        pub balance: i64,
        pub numbers: Vec<u32>,
    }

    pub struct AccountViews;

    #[projector(projection = AccountView)]
    impl AccountViews {
        async fn charged(rows: &mut Rows<AccountView>, event: &Charged) -> Result<(), DomainError> {
            let new = || AccountView {
                account_id: event.account_id.clone(),
                owner: event.owner.clone(),
                balance: 0,
                numbers: Vec::new(),
            };
            rows.upsert(&event.account_id, new, |view| {
                view.balance += event.cents;
                view.numbers.push(event.number);
            })
            .await
        }
    }

    /// One row per owner, changed in the transaction of every charge of any of the
    /// owner's accounts.
    #[projection]
    pub struct OwnerTotal {
        #[key]
        pub owner: String,
        #[index]
        pub total: i64,
        #[index]
        pub charges: u32,
    }

    pub struct OwnerTotals;

    /// A charge of this many cents makes the inline projector fail.
    pub const REFUSED_CENTS: i64 = 666;

    #[projector(projection = OwnerTotal, inline)]
    impl OwnerTotals {
        async fn charged(rows: &mut Rows<OwnerTotal>, event: &Charged) -> Result<(), DomainError> {
            if event.cents == REFUSED_CENTS {
                return Err(DomainError::rule("the owner totals refuse this charge"));
            }
            let new = || OwnerTotal { owner: event.owner.clone(), total: 0, charges: 0 };
            rows.upsert(&event.owner, new, |total| {
                total.total += event.cents;
                total.charges += 1;
            })
            .await
        }
    }
}
