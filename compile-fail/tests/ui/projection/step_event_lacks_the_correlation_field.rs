use protean::prelude::*;

#[aggregate]
pub struct Loan {
    pub book: String,
}

#[aggregate]
pub struct Member {
    pub name: String,
}

#[event(part_of = Loan)]
pub struct BookLent {
    pub loan_id: Identifier<Loan>,
    pub member_id: Identifier<Member>,
}

#[event(part_of = Member)]
pub struct MemberSuspended {
    pub member_id: Identifier<Member>,
}

/// Keyed by `loan_id`, but `MemberSuspended` has none.
#[process_manager(correlate = loan_id)]
pub struct Lending {
    pub loan_id: Identifier<Loan>,
}

#[process_manager]
impl Lending {
    async fn lent(ctx: &mut Flow<Self>, event: &BookLent) -> Result<Self, DomainError> {
        let _ = ctx;
        Ok(Lending { loan_id: event.loan_id.clone() })
    }

    async fn suspended(&mut self, ctx: &mut Flow<Self>, event: &MemberSuspended) -> Result<(), DomainError> {
        let _ = (ctx, event);
        Ok(())
    }
}
fn main() {}
