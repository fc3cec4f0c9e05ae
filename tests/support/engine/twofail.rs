//! One event, two handlers that fail until their aggregates exist.

use protean::prelude::*;

#[aggregate]
pub struct Source {
    pub n: u32,
}

#[event(part_of = Source)]
pub struct Happened {
    pub id: Identifier<Source>,
}

#[aggregate]
pub struct Left {
    pub seen: u32,
}

#[aggregate]
pub struct Right {
    pub seen: u32,
}

pub struct LeftReactions;

#[handler(part_of = Left)]
impl LeftReactions {
    async fn seen(ctx: &mut Context<Left>, event: &Happened) -> Result<(), DomainError> {
        ctx.load(&event.id.cast::<Left>()).await?.seen += 1;
        Ok(())
    }
}

pub struct RightReactions;

#[handler(part_of = Right)]
impl RightReactions {
    async fn seen(ctx: &mut Context<Right>, event: &Happened) -> Result<(), DomainError> {
        ctx.load(&event.id.cast::<Right>()).await?.seen += 1;
        Ok(())
    }
}
