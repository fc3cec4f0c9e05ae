use protean::prelude::*;

#[aggregate(event_sourced)]
pub struct Account {
    pub cards: HasMany<Card>,
}

#[entity(part_of = Account)]
pub struct Card {
    pub blocked: bool,
}

#[event(part_of = Account)]
pub struct CardBlocked {
    pub card: Identifier<Card>,
}

#[apply]
impl Account {
    fn blocked(&mut self, event: &CardBlocked) {
        if let Some(card) = self.cards.get_mut(&event.card) {
            card.blocked = true;
        }
    }
}

impl Card {
    pub fn block(&mut self) {
        let card = self.id.clone();
        self.raise(CardBlocked { card });
    }
}

fn main() {}
