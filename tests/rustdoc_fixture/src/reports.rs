//! Reports: a projection of loans and a flow that chases late returns.

use protean::prelude::*;

use crate::loans::{Loan, LoanOpened, RenewLoan, Result};

/// The loans open now, one row per loan.
#[projection]
pub struct OpenLoans {
    /// The loan.
    #[key]
    pub loan: Identifier<Loan>,
    /// Whether it is late.
    #[index]
    pub late: bool,
}

/// Keeps [`OpenLoans`] current.
pub struct OpenLoansProjector;

#[projector(projection = OpenLoans)]
impl OpenLoansProjector {
    async fn opened(rows: &mut Rows<OpenLoans>, event: &LoanOpened) -> ::core::result::Result<(), DomainError> {
        rows.put(OpenLoans { loan: event.loan.clone(), late: false }).await?;
        Ok(())
    }

    async fn ended(rows: &mut Rows<OpenLoans>, event: &Result) -> ::core::result::Result<(), DomainError> {
        rows.delete(&event.loan).await?;
        Ok(())
    }
}

/// Chases a loan until it is back.
#[process_manager(correlate = loan)]
pub struct Reminder {
    /// The loan.
    pub loan: Identifier<Loan>,
}

#[process_manager]
impl Reminder {
    async fn opened(ctx: &mut Flow<Self>, event: &LoanOpened) -> ::core::result::Result<Self, DomainError> {
        ctx.send(RenewLoan { loan: event.loan.clone() });
        Ok(Reminder { loan: event.loan.clone() })
    }

    async fn ended(&mut self, ctx: &mut Flow<Self>, event: &Result) -> ::core::result::Result<(), DomainError> {
        let _ = event;
        ctx.end();
        Ok(())
    }
}
