//! Stored state evolves: a field added with a declared default, an optional field and a
//! collection fill what a record stored before them lacks, on every store; a new field
//! with neither is refused as corrupt (it needs a migration). The same model is declared
//! twice, `before` and `after` the change, under the same names, so that the `after`
//! domain reads what the `before` domain stored.

use std::process::ExitCode;
use std::sync::Arc;

use protean::contract::{compare, Change, Lock, Outcome};
use protean::prelude::*;
use protean::store::{Store, StreamId};

#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::{StoreCase, Trial};

/// The model as first deployed.
pub mod before {
    use protean::prelude::*;

    #[value_object]
    pub struct Address {
        pub city: String,
    }

    #[aggregate]
    pub struct Member {
        pub name: String,
        pub address: Address,
        pub loans: HasMany<Loan>,
    }

    #[entity(part_of = Member)]
    pub struct Loan {
        pub book: String,
    }

    #[aggregate(event_sourced)]
    pub struct Shelf {
        pub books: u32,
    }

    #[event(part_of = Shelf)]
    pub struct Shelved {
        pub title: String,
    }

    #[apply]
    impl Shelf {
        fn shelved(&mut self, _: &Shelved) {
            self.books += 1;
        }
    }
}

/// The same model later: new fields with a declared default, optional, or collections,
/// in the aggregate, its entity, its value object and its event.
pub mod after {
    use protean::prelude::*;

    #[value_object]
    pub struct Address {
        pub city: String,
        #[field(default = "unknown")]
        pub country: String,
    }

    #[aggregate]
    pub struct Member {
        pub name: String,
        pub address: Address,
        pub loans: HasMany<Loan>,
        #[field(default = "000")]
        pub phone: String,
        pub nickname: Option<String>,
        pub tags: Vec<String>,
        pub card: HasOne<Card>,
    }

    #[entity(part_of = Member)]
    pub struct Loan {
        pub book: String,
        #[field(default = 14u32)]
        pub days: u32,
    }

    #[entity(part_of = Member)]
    pub struct Card {
        pub number: String,
    }

    #[aggregate(event_sourced)]
    pub struct Shelf {
        pub books: u32,
        #[field(default = "main")]
        pub room: String,
        pub label: Option<String>,
    }

    #[event(part_of = Shelf)]
    pub struct Shelved {
        pub title: String,
        #[field(default = 1u32)]
        pub copies: u32,
    }

    #[apply]
    impl Shelf {
        fn shelved(&mut self, event: &Shelved) {
            self.books += event.copies;
        }
    }

    #[command(part_of = Member)]
    pub struct Rename {
        pub member: Identifier<Member>,
        #[field(min_length = 1)]
        pub name: String,
        #[field(default = "by the member")]
        pub reason: String,
        pub aliases: Vec<String>,
    }

    pub struct Members;

    #[handler(part_of = Member)]
    impl Members {
        async fn rename(ctx: &mut Context<Member>, command: Rename) -> Result<(), DomainError> {
            ctx.load(&command.member).await?.name = command.name;
            Ok(())
        }
    }
}

/// The same aggregate with a new field that has neither a default nor an empty value.
pub mod required {
    use protean::prelude::*;

    #[aggregate]
    pub struct Member {
        pub name: String,
        pub email: String,
    }
}

/// The e-commerce example's `OrderPlaced` as checked in (its lock is
/// `examples/ecommerce/protean.lock`), on an event-sourced order so that loading the order
/// reads every stored event back.
pub mod placed_v1 {
    use protean::prelude::*;

    #[value_object]
    pub struct Money {
        #[field(min = 0)]
        pub cents: i64,
        #[field(length = 3)]
        pub currency: String,
    }

    #[value_object]
    pub struct OrderLine {
        #[field(min_length = 1)]
        pub sku: String,
        #[field(min = 1, max = 1000)]
        pub quantity: u32,
        pub unit_price: Money,
    }

    #[aggregate(event_sourced)]
    pub struct Order {
        pub customer: String,
        pub total_cents: i64,
    }

    #[aggregate]
    pub struct Customer {
        pub name: String,
    }

    #[event(part_of = Order)]
    pub struct OrderPlaced {
        pub order_id: Identifier<Order>,
        pub customer_id: Identifier<Customer>,
        pub lines: Vec<OrderLine>,
        pub total: Money,
    }

    #[apply]
    impl Order {
        fn placed(&mut self, e: &OrderPlaced) {
            self.customer = e.customer_id.to_string();
            self.total_cents = e.total.cents;
        }
    }
}

/// The same event with its total changed to a plain amount in cents, in the same version:
/// what stored events cannot survive.
pub mod placed_broken {
    use protean::prelude::*;

    pub use super::placed_v1::OrderLine;

    #[aggregate(event_sourced)]
    pub struct Order {
        pub customer: String,
        pub total_cents: i64,
    }

    #[aggregate]
    pub struct Customer {
        pub name: String,
    }

    #[event(part_of = Order)]
    pub struct OrderPlaced {
        pub order_id: Identifier<Order>,
        pub customer_id: Identifier<Customer>,
        pub total: i64,
    }

    #[apply]
    impl Order {
        fn placed(&mut self, e: &OrderPlaced) {
            self.customer = e.customer_id.to_string();
            self.total_cents = e.total;
        }
    }
}

/// The change done right: version 2, with an upcaster step from version 1.
pub mod placed_v2 {
    use protean::prelude::*;

    #[aggregate(event_sourced)]
    pub struct Order {
        pub customer: String,
        pub total_cents: i64,
    }

    #[aggregate]
    pub struct Customer {
        pub name: String,
    }

    #[event(part_of = Order, version = 2, upcast(from = 1, with = total_in_cents))]
    pub struct OrderPlaced {
        pub order_id: Identifier<Order>,
        pub customer_id: Identifier<Customer>,
        pub total: i64,
    }

    /// `{"total": {"cents": 1250, "currency": "EUR"}, "lines": [..]}` to `{"total": 1250}`.
    fn total_in_cents(mut payload: serde_json::Value) -> Result<serde_json::Value, String> {
        let cents = payload["total"]["cents"].as_i64().ok_or("version 1 has `total.cents`")?;
        let object = payload.as_object_mut().ok_or("version 1 is an object")?;
        object.remove("lines");
        object.insert("total".into(), serde_json::json!(cents));
        Ok(payload)
    }

    #[apply]
    impl Order {
        fn placed(&mut self, e: &OrderPlaced) {
            self.customer = e.customer_id.to_string();
            self.total_cents = e.total;
        }
    }
}

fn domain(model: &str, store: &Arc<dyn Store>) -> Domain {
    Domain::builder()
        .module(format!("{}::{model}", module_path!()))
        .shared_store(Arc::clone(store))
        .snapshot_every(2)
        .build()
        .expect("the model is valid")
}

/// A member stored by the `before` model, with one loan.
async fn stored_member(store: &Arc<dyn Store>) -> Identifier<before::Member> {
    let domain = domain("before", store);
    let address = before::Address::new("Lisbon").unwrap();
    let mut member = before::Member::builder().name("Ada").address(address).build().unwrap();
    member.loans.add(before::Loan::builder().book("Dune").build().unwrap());
    let id = member.id.clone();
    let mut unit = domain.unit_of_work::<before::Member>();
    unit.add(member).unwrap();
    unit.commit().await.unwrap().all_delivered().unwrap();
    id
}

async fn a_record_stored_before_new_fields_loads_with_their_defaults(store: Arc<dyn Store>) {
    let id = stored_member(&store).await.cast::<after::Member>();
    let domain = domain("after", &store);
    let member = domain.get::<after::Member>(&id).await.expect("the old record loads").expect("it is there");
    assert_eq!((member.name.as_str(), member.phone.as_str()), ("Ada", "000"));
    assert_eq!(member.nickname, None);
    assert!(member.tags.is_empty() && !member.card.is_set());
    assert_eq!((member.address.city().as_str(), member.address.country().as_str()), ("Lisbon", "unknown"));
    let loans: Vec<(&str, u32)> = member.loans.iter().map(|l| (l.book.as_str(), l.days)).collect();
    assert_eq!(loans, [("Dune", 14)]);

    // The new model changes it and stores it whole; it reads back as it was written.
    let rename = after::Rename { member: id.clone(), name: "Ada L.".into(), reason: "married".into(), aliases: vec![] };
    domain.process(rename).await.unwrap().all_delivered().unwrap();
    let member = domain.get::<after::Member>(&id).await.unwrap().unwrap();
    assert_eq!((member.name.as_str(), member.phone.as_str()), ("Ada L.", "000"));
    assert_eq!(member.loans.iter().map(|l| l.days).collect::<Vec<_>>(), [14]);
}

async fn a_new_field_without_a_default_is_refused_as_corrupt(store: Arc<dyn Store>) {
    let id = stored_member(&store).await.cast::<required::Member>();
    let err = domain("required", &store).get::<required::Member>(&id).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("missing field `email`"), "{text}");
}

async fn an_event_sourced_snapshot_and_events_stored_before_new_fields_load(store: Arc<dyn Store>) {
    let before = domain("before", &store);
    let id = Identifier::<before::Shelf>::generate();
    let mut unit = before.unit_of_work::<before::Shelf>();
    let shelf = unit.add(before::Shelf::blank(id.clone())).unwrap();
    shelf.raise(before::Shelved { title: "Dune".into() });
    shelf.raise(before::Shelved { title: "Emma".into() });
    unit.commit().await.unwrap().all_delivered().unwrap();
    let mut unit = before.unit_of_work::<before::Shelf>();
    unit.load(&id).await.unwrap().raise(before::Shelved { title: "Ulysses".into() });
    unit.commit().await.unwrap().all_delivered().unwrap();

    // The snapshot taken at the second event reads as the new shape...
    let stream = StreamId::new("Shelf", id.to_string());
    let snapshot = store.load_snapshot(&stream, None).await.unwrap().expect("a snapshot at the second event");
    assert_eq!(snapshot.sequence, 2);
    let state: after::Shelf = serde_json::from_str(&snapshot.state).expect("the old snapshot reads");
    assert_eq!((state.books, state.room.as_str(), state.label.as_deref()), (2, "main", None));

    // ... and so does the whole aggregate: the snapshot, then the third event, whose
    // missing `copies` takes its default.
    let shelf = domain("after", &store).get::<after::Shelf>(&id.cast()).await.unwrap().unwrap();
    assert_eq!((shelf.books, shelf.room.as_str(), shelf.label.as_deref()), (3, "main", None));
}

/// Commands and events read what a payload lacks as the builder fills what it is not
/// given; a missing required field is still refused, and the field options still hold.
fn messages_read_missing_fields_as_the_builder_fills_them() {
    let id = Identifier::<after::Member>::generate();
    let json = serde_json::json!({ "member": id.to_string(), "name": "Ada" });
    let command: after::Rename = serde_json::from_value(json).unwrap();
    assert_eq!(command, after::Rename::builder().member(id.clone()).name("Ada").build().unwrap());
    assert_eq!((command.reason.as_str(), command.aliases.len()), ("by the member", 0));

    let event: after::Shelved = serde_json::from_value(serde_json::json!({ "title": "Dune" })).unwrap();
    assert_eq!(event.copies, 1);

    let missing = serde_json::from_value::<after::Rename>(serde_json::json!({ "member": id.to_string() }));
    assert!(missing.unwrap_err().to_string().contains("missing field `name`"));
    let empty: after::Rename =
        serde_json::from_value(serde_json::json!({ "member": id.to_string(), "name": "" })).unwrap();
    assert!(empty.validate().is_err(), "a name shorter than its `min_length` is still refused");
}

/// The checked-in lock's `Order.OrderPlaced` against a model: its changes.
fn placed_changes(model: &str, store: &Arc<dyn Store>) -> Vec<Change> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ecommerce/protean.lock"))
        .expect("the e-commerce example's lock is checked in");
    let lock = Lock::parse(&text).expect("it reads");
    let model = domain(model, store);
    let (changes, _) = compare(model.model(), &lock, &Lock::of(model.model()));
    changes.into_iter().filter(|c| c.type_name == "Order.OrderPlaced").collect()
}

/// Realistic drift: `OrderPlaced` changed in a copy of the e-commerce model fails the
/// checked-in lock; bumped to version 2 with an upcaster it passes, and orders placed
/// before the change load through the upcaster.
async fn a_changed_event_fails_the_lock_until_bumped_and_old_events_load_through_the_upcaster(store: Arc<dyn Store>) {
    assert_eq!(placed_changes("placed_v1", &store), vec![], "the copy matches the checked-in lock");
    let broken = placed_changes("placed_broken", &store);
    let rules: Vec<(&str, Option<&str>, Outcome)> =
        broken.iter().map(|c| (c.rule, c.path.as_deref(), c.outcome)).collect();
    assert!(rules.contains(&("type-changed", Some("total"), Outcome::Breaking)), "{broken:#?}");
    let message = &broken.iter().find(|c| c.rule == "type-changed").unwrap().message;
    assert_eq!(
        message,
        "`OrderPlaced.total` changed from an object to integer: bump `#[event(version = 2)]` and add an upcaster \
         from 1, or keep the old field"
    );
    let bumped = placed_changes("placed_v2", &store);
    let outcomes: Vec<(&str, Outcome)> = bumped.iter().map(|c| (c.rule, c.outcome)).collect();
    assert_eq!(outcomes, [("version-bumped", Outcome::Mitigated)], "{bumped:#?}");

    // Orders placed by version 1...
    let v1 = domain("placed_v1", &store);
    let id = Identifier::<placed_v1::Order>::generate();
    let mut unit = v1.unit_of_work::<placed_v1::Order>();
    let order = unit.add(placed_v1::Order::blank(id.clone())).unwrap();
    let price = placed_v1::Money::new(1250, "EUR").unwrap();
    order.raise(placed_v1::OrderPlaced {
        order_id: id.clone(),
        customer_id: Identifier::generate(),
        lines: vec![placed_v1::OrderLine::new("BOOK-1", 1, price.clone()).unwrap()],
        total: price,
    });
    unit.commit().await.unwrap().all_delivered().unwrap();
    // ... load in version 2, through the upcaster.
    let v2 = domain("placed_v2", &store);
    let order = v2.get::<placed_v2::Order>(&id.cast()).await.expect("the version 1 event loads").unwrap();
    assert_eq!(order.total_cents, 1250);
    // Without the bump, the same stored event does not load: what the lock stopped.
    let broken = domain("placed_broken", &store).get::<placed_broken::Order>(&id.cast()).await;
    assert!(broken.is_err(), "{broken:?}");
}

fn cases() -> Vec<(&'static str, StoreCase)> {
    vec![
        ("a_record_stored_before_new_fields_loads_with_their_defaults", |s| {
            Box::pin(a_record_stored_before_new_fields_loads_with_their_defaults(s))
        }),
        ("a_new_field_without_a_default_is_refused_as_corrupt", |s| {
            Box::pin(a_new_field_without_a_default_is_refused_as_corrupt(s))
        }),
        ("an_event_sourced_snapshot_and_events_stored_before_new_fields_load", |s| {
            Box::pin(an_event_sourced_snapshot_and_events_stored_before_new_fields_load(s))
        }),
        ("a_changed_event_fails_the_lock_until_bumped_and_old_events_load_through_the_upcaster", |s| {
            Box::pin(a_changed_event_fails_the_lock_until_bumped_and_old_events_load_through_the_upcaster(s))
        }),
    ]
}

fn main() -> ExitCode {
    let mut trials = harness::every_store("evolution", cases, 4);
    trials.push(Trial::test("messages_read_missing_fields_as_the_builder_fills_them", || {
        messages_read_missing_fields_as_the_builder_fills_them();
        Ok(())
    }));
    harness::run(trials)
}
