//! `#[index]` on fields stores cannot compare, and a row read by a key of another type.
use protean::prelude::*;

#[aggregate]
pub struct Loan {
    pub title: String,
}

#[value_object]
pub struct ShelfMark {
    pub room: String,
}

#[projection]
pub struct LoanView {
    #[key]
    pub loan_id: Identifier<Loan>,
    #[index]
    pub renewals: Vec<u32>,
    #[index]
    pub shelf: ShelfMark,
    #[index]
    pub returned_at: Option<std::time::SystemTime>,
    #[index]
    pub overdue: bool,
}

#[command(part_of = Loan)]
pub struct Renew {
    pub loan_id: Identifier<Loan>,
    pub member: String,
}

pub struct Lending;

#[handler(part_of = Loan)]
impl Lending {
    async fn renew(ctx: &mut Context<Loan>, cmd: Renew) -> Result<(), DomainError> {
        let _view = ctx.read::<LoanView>(&cmd.member).await?;
        Ok(())
    }
}

async fn overdue(domain: &Domain) -> Result<Vec<LoanView>, ProcessError> {
    domain.query::<LoanView>().filter(LoanView::OVERDUE.eq("yes")).fetch().await
}

fn main() {}
