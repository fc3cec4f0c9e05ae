//! Handlers of their own, to exercise the context directly: a counter, and a read
//! model of prices.

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
