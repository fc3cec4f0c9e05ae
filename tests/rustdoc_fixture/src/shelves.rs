//! Shelves: an event-sourced aggregate, and a command with a reply.

use protean::prelude::*;

/// A shelf of books, rebuilt from its events.
#[aggregate(event_sourced)]
pub struct Shelf {
    /// Books on it.
    pub books: u32,
}

/// A book was shelved.
#[event(part_of = Shelf)]
pub struct Shelved {
    /// How many.
    pub count: u32,
}

#[apply]
impl Shelf {
    fn shelved(&mut self, event: &Shelved) {
        self.books += event.count;
    }
}

/// Puts books on a new shelf, answering with its identity.
#[command(part_of = Shelf, returns = Identifier<Shelf>)]
pub struct Stock {
    /// How many.
    #[field(min = 1)]
    pub count: u32,
}

/// The handler of shelves.
pub struct Shelving;

#[handler(part_of = Shelf)]
impl Shelving {
    async fn stock(ctx: &mut Context<Shelf>, command: Stock) -> ::core::result::Result<Identifier<Shelf>, DomainError> {
        let shelf = ctx.add(Shelf::blank(Identifier::generate()))?;
        shelf.raise(Shelved { count: command.count });
        Ok(shelf.id.clone())
    }
}
