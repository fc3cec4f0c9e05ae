//! Handlers of their own, to exercise the context directly: a counter, a read model of
//! prices, and a loan whose handlers move their command's identity while the loaded
//! aggregate is in use.

use protean::prelude::*;

#[aggregate]
pub struct Counter {
    pub count: u32,
}

#[command(part_of = Counter)]
pub struct BumpTwice {
    pub id: Identifier<Counter>,
}

#[command(part_of = Counter)]
pub struct BumpByPrice {
    pub id: Identifier<Counter>,
    pub product: String,
}

/// A read model: prices kept elsewhere, read here, never changed here.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Price {
    pub cents: u32,
}

impl ReadModel for Price {
    const NAME: &'static str = "Price";
    type Key = String;
}

pub struct Counting;

#[handler(part_of = Counter)]
impl Counting {
    /// Loads the same counter twice: one instance, both changes kept.
    async fn bump_twice(ctx: &mut Context<Counter>, command: BumpTwice) -> Result<(), DomainError> {
        let id = command.id.clone();
        ctx.load_or_add(&id, || Ok(Counter::builder().id(id.clone()).count(0u32).build()?)).await?.count += 1;
        ctx.load(&command.id).await?.count += 1;
        Ok(())
    }

    async fn bump_by_price(ctx: &mut Context<Counter>, command: BumpByPrice) -> Result<(), DomainError> {
        let price = ctx.read::<Price>(&command.product).await?;
        let price = price.ok_or_else(|| DomainError::rule(format!("no price for {}", command.product)))?;
        ctx.load(&command.id).await?.count += price.cents;
        Ok(())
    }
}

#[aggregate]
pub struct Loan {
    pub title: String,
    pub returned: bool,
    pub renewals: u32,
}

#[command(part_of = Loan)]
pub struct ReturnLoan {
    pub loan_id: Identifier<Loan>,
}

#[command(part_of = Loan)]
pub struct RenewLoan {
    pub loan_id: Identifier<Loan>,
}

#[event(part_of = Loan)]
pub struct LoanReturned {
    pub loan_id: Identifier<Loan>,
}

pub struct Lending;

#[handler(part_of = Loan)]
impl Lending {
    /// The loaded loan is used after the command's identity moved into the event: the
    /// aggregate borrows the context, not the identity it was loaded by.
    async fn return_loan(ctx: &mut Context<Loan>, cmd: ReturnLoan) -> Result<(), DomainError> {
        let loan = ctx.load(&cmd.loan_id).await?;
        let event = LoanReturned { loan_id: cmd.loan_id };
        loan.returned = true;
        loan.raise(event);
        Ok(())
    }

    /// Loads by a temporary copy of the identity, which is dropped before the loan is used.
    #[allow(clippy::redundant_clone)]
    async fn renew(ctx: &mut Context<Loan>, cmd: RenewLoan) -> Result<(), DomainError> {
        let loan = ctx.load(&cmd.loan_id.clone()).await?;
        loan.renewals += 1;
        drop(cmd);
        loan.renewals += 1;
        Ok(())
    }
}
