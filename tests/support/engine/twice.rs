//! A command two handlers take: the domain refuses to build.

use protean::prelude::*;

#[aggregate]
pub struct Ledger {
    pub total: i64,
}

#[command(part_of = Ledger)]
pub struct Post {
    pub id: Identifier<Ledger>,
}

pub struct Posting;

#[handler(part_of = Ledger)]
impl Posting {
    async fn post(ctx: &mut Context<Ledger>, command: Post) -> Result<(), DomainError> {
        ctx.load(&command.id).await?.total += 1;
        Ok(())
    }
}

pub struct PostingAgain;

#[handler(part_of = Ledger)]
impl PostingAgain {
    async fn post_again(ctx: &mut Context<Ledger>, command: Post) -> Result<(), DomainError> {
        ctx.load(&command.id).await?.total += 1;
        Ok(())
    }
}
