//! Members: who borrows.

use protean::prelude::*;

use crate::loans::{LoanOpened, Result};

/// A member of the library.
#[aggregate]
pub struct Member {
    /// Books out now.
    pub out: u32,
}

/// Counts the books a member has out. Private: its page is not generated.
struct Counting;

#[handler(part_of = Member)]
impl Counting {
    async fn opened(ctx: &mut Context<Member>, event: &LoanOpened) -> ::core::result::Result<(), DomainError> {
        let id = event.member.clone();
        ctx.load_or_add(&id, || Ok(Member::builder().id(id.clone()).out(0u32).build()?)).await?.out += 1;
        Ok(())
    }
}

/// Reacts to ended loans for members.
pub struct MemberReactions;

#[handler(part_of = Member)]
impl MemberReactions {
    /// One fewer book out.
    async fn ended(ctx: &mut Context<Member>, event: &Result) -> ::core::result::Result<(), DomainError> {
        let _ = (ctx, event);
        Ok(())
    }
}
