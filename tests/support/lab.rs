//! A model with a field of every kind a store must round-trip, and a reaction: shared by
//! the conformance suite and the crash test.

use protean::prelude::*;

#[value_object]
pub struct Money {
    pub cents: i64,
    pub currency: String,
}

#[value_object]
pub enum Mood {
    Calm,
    Busy,
}

#[entity(part_of = Everything)]
pub struct Part {
    pub label: String,
    pub weight: f64,
}

#[aggregate]
pub struct Everything {
    pub text: String,
    pub unicode: String,
    pub small: i8,
    pub big: i64,
    pub huge: u64,
    pub ratio: f64,
    pub flag: bool,
    pub letter: char,
    pub uuid: uuid::Uuid,
    pub at: std::time::SystemTime,
    pub maybe: Option<String>,
    pub nothing: Option<i32>,
    pub list: Vec<u16>,
    pub other: Identifier<Counter>,
    pub price: Money,
    pub prices: Vec<Money>,
    pub mood: Mood,
    pub parts: HasMany<Part>,
}

#[aggregate]
pub struct Counter {
    pub count: u32,
}

#[aggregate]
pub struct Tally {
    pub seen: u32,
}

#[command(part_of = Counter)]
pub struct Bump {
    pub id: Identifier<Counter>,
}

#[event(part_of = Counter)]
pub struct Bumped {
    pub id: Identifier<Counter>,
    pub count: u32,
}

pub struct Counting;

#[handler(part_of = Counter)]
impl Counting {
    async fn bump(ctx: &mut Context<Counter>, command: Bump) -> Result<(), DomainError> {
        let id = command.id.clone();
        let mut counter = ctx.load_or_add(&id, || Ok(Counter::builder().id(id.clone()).count(0u32).build()?)).await?;
        counter.count += 1;
        let event = Bumped { id: command.id, count: counter.count };
        counter.raise(event);
        Ok(())
    }
}

/// Counts every `Bumped` in one tally per counter: shows each event is handled once.
pub struct Tallying;

#[handler(part_of = Tally)]
impl Tallying {
    async fn count(ctx: &mut Context<Tally>, event: &Bumped) -> Result<(), DomainError> {
        let id = event.id.cast::<Tally>();
        ctx.load_or_add(&id, || Ok(Tally::builder().id(id.clone()).seen(0u32).build()?)).await?.seen += 1;
        Ok(())
    }
}

/// Version 2 keeps the name in two parts; version 1 stored it whole.
#[event(part_of = Counter, version = 2, upcast = renamed_from_older)]
pub struct Renamed {
    pub first: String,
    pub last: String,
}

/// Brings a stored `Renamed` up to version 2.
pub fn renamed_from_older(from_version: u32, payload: serde_json::Value) -> Result<serde_json::Value, String> {
    match from_version {
        1 => {
            let name = payload.get("name").and_then(|n| n.as_str()).ok_or("version 1 has no `name`")?;
            let (first, last) = name.split_once(' ').unwrap_or((name, ""));
            Ok(serde_json::json!({ "first": first, "last": last }))
        }
        other => Err(format!("there was no version {other}")),
    }
}

/// An event-sourced aggregate: its events are its state.
#[aggregate(event_sourced)]
pub struct Account {
    pub owner: String,
    pub balance: i64,
    pub deposits: u32,
}

#[event(part_of = Account)]
pub struct AccountOpened {
    pub owner: String,
}

#[event(part_of = Account)]
pub struct Deposited {
    pub amount: i64,
}

#[apply]
impl Account {
    fn opened(&mut self, event: &AccountOpened) {
        self.owner = event.owner.clone();
    }

    fn deposited(&mut self, event: &Deposited) {
        self.balance += event.amount;
        self.deposits += 1;
    }
}

#[command(part_of = Account)]
pub struct Deposit {
    pub account: Identifier<Account>,
    pub amount: i64,
}

pub struct Banking;

#[handler(part_of = Account)]
impl Banking {
    /// Opens the account on its first deposit; every change is an applied event.
    async fn deposit(ctx: &mut Context<Account>, command: Deposit) -> Result<(), DomainError> {
        let id = command.account.clone();
        let account = match ctx.find(&id).await? {
            Some(_) => ctx.load(&id).await?,
            None => {
                let account = ctx.add(Account::blank(id))?;
                account.raise(AccountOpened { owner: "Ada".into() });
                account
            }
        };
        account.raise(Deposited { amount: command.amount });
        Ok(())
    }
}

/// Three events of a counter, committed and not delivered, as a stopped process leaves them.
pub async fn undelivered_bumps(store: &dyn protean::store::Store, id: &Identifier<Counter>) {
    use protean::store::{Batch, Commit};
    use protean::store::{Cause, Envelope, StreamId};
    let stream = StreamId::new("Counter", id.to_string());
    let events = (1..=3)
        .map(|count| {
            let event = Bumped { id: id.clone(), count };
            Envelope::new(event.into(), stream.clone(), Cause::command(uuid::Uuid::now_v7())).unwrap()
        })
        .collect();
    let state = format!(r#"{{"id":"{id}","count":3}}"#);
    let commit = Commit { stream, expected_version: 0, advance: 1, state: Some(state.into()), events, snapshot: None };
    store.commit(Batch { commits: vec![commit], handled: None, delivered: vec![], ..Batch::default() }).await.unwrap();
}
