//! Loans: the consistency boundary of one borrowing.

use protean::prelude::*;

/// The state a loan is in.
#[value_object]
pub enum LoanStatus {
    /// Lent and not yet back.
    Open,
    /// Back on the shelf.
    Returned,
}

/// A fee in cents.
#[value_object]
pub struct Fee {
    /// Minor units.
    #[field(min = 0)]
    pub cents: i64,
}

/// One borrowing of one or more copies.
#[aggregate]
pub struct Loan {
    /// Who borrows.
    pub member: Identifier<crate::members::Member>,
    /// The copies lent.
    pub copies: HasMany<Copy>,
    /// Where it stands.
    pub status: LoanStatus,
}

/// A physical copy of a book, named like the standard library's `Copy`.
#[entity(part_of = Loan)]
pub struct Copy {
    /// The shelf mark.
    pub mark: String,
}

/// Lends a book.
#[command(part_of = Loan)]
pub struct BorrowBook {
    /// The loan.
    pub loan: Identifier<Loan>,
    /// Who borrows.
    pub member: Identifier<crate::members::Member>,
}

/// Brings a book back.
#[command(part_of = Loan)]
pub struct ReturnBook {
    /// The loan.
    pub loan: Identifier<Loan>,
}

/// Keeps a book longer.
#[command(part_of = Loan)]
pub struct RenewLoan {
    /// The loan.
    pub loan: Identifier<Loan>,
}

/// A loan was opened.
#[event(part_of = Loan)]
pub struct LoanOpened {
    /// The loan.
    pub loan: Identifier<Loan>,
    /// Who borrows.
    pub member: Identifier<crate::members::Member>,
}

/// A loan ended: named like the standard library's `Result`.
#[event(part_of = Loan)]
pub struct Result {
    /// The loan.
    pub loan: Identifier<Loan>,
    /// What was charged.
    pub fee: Fee,
}

/// Nobody reacts to this one.
#[event(part_of = Loan)]
pub struct LoanRenewed {
    /// The loan.
    pub loan: Identifier<Loan>,
}

/// The handler of loans' commands.
pub struct LoanCommands;

#[handler(part_of = Loan)]
impl LoanCommands {
    async fn borrow(ctx: &mut Context<Loan>, command: BorrowBook) -> ::core::result::Result<(), DomainError> {
        let loan =
            Loan::builder().id(command.loan.clone()).member(command.member.clone()).status(LoanStatus::Open).build()?;
        let loan = ctx.add(loan)?;
        loan.raise(LoanOpened { loan: command.loan, member: command.member });
        Ok(())
    }

    async fn give_back(ctx: &mut Context<Loan>, command: ReturnBook) -> ::core::result::Result<(), DomainError> {
        let loan = ctx.load(&command.loan).await?;
        loan.status = LoanStatus::Returned;
        loan.raise(Result { loan: command.loan, fee: Fee::new(0)? });
        Ok(())
    }

    async fn renew(ctx: &mut Context<Loan>, command: RenewLoan) -> ::core::result::Result<(), DomainError> {
        let loan = ctx.load(&command.loan).await?;
        loan.raise(LoanRenewed { loan: command.loan });
        Ok(())
    }
}
