//! Every change guarded: invariants on every path, entities by identity, events from
//! entities, finite floats, stored data checked on load, and handlers that answer.
//! Each test here failed before the change it guards.

use std::collections::HashSet;
use std::sync::Arc;

use protean::prelude::*;
use protean::store::StreamId;
use protean::store::{Batch, Commit, MemoryStore, StoreError};
use protean::testing::Scenario;

mod shop {
    use protean::prelude::*;

    #[value_object]
    #[derive(Eq, Hash)] // the opt-in: a value object whose fields are all `Eq + Hash`
    pub struct Sku {
        #[field(min_length = 1)]
        pub code: String,
    }

    #[value_object]
    pub enum Status {
        Open,
        Shipped,
    }

    #[aggregate]
    #[invariant(pre = shipped_orders_do_not_change)]
    pub struct Order {
        pub customer: String,
        pub status: Status,
        #[field(max = 1000)]
        pub level: u32,
        pub weight: f64,
        pub lines: HasMany<Line>,
    }

    impl Order {
        fn shipped_orders_do_not_change(&self) -> InvariantResult {
            if self.status == Status::Shipped {
                return Err(ValidationError::object("a shipped order does not change"));
            }
            Ok(())
        }
    }

    #[entity(part_of = Order)]
    #[invariant(pre = packed_lines_do_not_change)]
    pub struct Line {
        #[field(min = 1)]
        pub copies: u32,
        pub packed: bool,
    }

    impl Line {
        fn packed_lines_do_not_change(&self) -> InvariantResult {
            if self.packed {
                return Err(ValidationError::object("a packed line does not change"));
            }
            Ok(())
        }

        /// An entity raises an event of its aggregate.
        pub fn pack(&mut self) {
            self.packed = true;
            let line = self.id.clone();
            self.raise(LinePacked { line });
        }
    }

    #[event(part_of = Order)]
    pub struct LinePacked {
        pub line: Identifier<Line>,
    }

    #[event(part_of = Order)]
    pub struct OrderShipped {
        pub order: Identifier<Order>,
    }

    #[command(part_of = Order, returns = Identifier<Order>)]
    pub struct OpenOrder {
        pub customer: String,
        pub copies: u32,
    }

    #[command(part_of = Order)]
    pub struct Reassign {
        pub order: Identifier<Order>,
        pub customer: String,
    }

    #[command(part_of = Order)]
    pub struct Weigh {
        pub order: Identifier<Order>,
        pub weight: f64,
    }

    #[command(part_of = Order)]
    pub struct PackAndShip {
        pub order: Identifier<Order>,
    }

    #[command(part_of = Order)]
    pub struct RecountLines {
        pub order: Identifier<Order>,
        pub copies: u32,
    }

    pub struct Orders;

    #[handler(part_of = Order)]
    impl Orders {
        async fn open(ctx: &mut Context<Order>, command: OpenOrder) -> Result<Identifier<Order>, DomainError> {
            let line = Line::builder().copies(command.copies).packed(false).build()?;
            let mut order = Order::builder().customer(command.customer).status(Status::Open).level(1).weight(0.0);
            order = order.lines(HasMany::from_iter([line]));
            let order = ctx.add(order.build()?)?;
            Ok(order.id.clone())
        }

        /// Assigns a field directly, as the guide's handlers do: guarded at commit.
        async fn reassign(ctx: &mut Context<Order>, command: Reassign) -> Result<(), DomainError> {
            ctx.load(&command.order).await?.customer = command.customer;
            Ok(())
        }

        async fn weigh(ctx: &mut Context<Order>, command: Weigh) -> Result<(), DomainError> {
            ctx.load(&command.order).await?.weight = command.weight;
            Ok(())
        }

        async fn pack_and_ship(ctx: &mut Context<Order>, command: PackAndShip) -> Result<(), DomainError> {
            let order = ctx.load(&command.order).await?;
            for line in order.lines.iter_mut() {
                line.pack();
            }
            order.status = Status::Shipped;
            let id = order.id.clone();
            order.raise(OrderShipped { order: id });
            Ok(())
        }

        async fn recount(ctx: &mut Context<Order>, command: RecountLines) -> Result<(), DomainError> {
            let order = ctx.load(&command.order).await?;
            for line in order.lines.iter_mut() {
                line.copies = command.copies;
            }
            Ok(())
        }
    }
}

mod ledger {
    use protean::prelude::*;

    #[aggregate(event_sourced)]
    pub struct Account {
        pub balance: i64,
    }

    #[event(part_of = Account)]
    pub struct Deposited {
        pub amount: i64,
    }

    #[apply]
    impl Account {
        fn deposited(&mut self, event: &Deposited) {
            self.balance += event.amount;
        }
    }

    #[command(part_of = Account)]
    pub struct Deposit {
        pub account: Identifier<Account>,
        pub amounts: Vec<i64>,
    }

    pub struct Accounts;

    #[handler(part_of = Account)]
    impl Accounts {
        async fn deposit(ctx: &mut Context<Account>, command: Deposit) -> Result<(), DomainError> {
            let id = command.account.clone();
            let mut account = ctx.load_or_add(&id, || Ok(Account::blank(id.clone()))).await?;
            for amount in command.amounts {
                account.raise(Deposited { amount });
            }
            Ok(())
        }
    }
}

fn shop() -> Domain {
    Domain::builder().module(module_path!().to_string() + "::shop").build().unwrap()
}

async fn open(domain: &Domain) -> Identifier<shop::Order> {
    let processed = domain.process(shop::OpenOrder { customer: "ada".into(), copies: 1 }).await.unwrap();
    processed.all_delivered().unwrap();
    processed.reply
}

async fn ship(domain: &Domain, order: &Identifier<shop::Order>) {
    domain.process(shop::PackAndShip { order: order.clone() }).await.unwrap().all_delivered().unwrap();
}

#[tokio::test]
async fn a_pre_invariant_refuses_a_direct_field_assignment_in_a_handler() {
    let domain = shop();
    let order = open(&domain).await;
    ship(&domain, &order).await;
    let error = domain.process(shop::Reassign { order: order.clone(), customer: "bob".into() }).await.unwrap_err();
    let Some(DomainError::Validation(errors)) = error.rejection() else { panic!("{error}") };
    assert_eq!(errors.messages(""), ["a shipped order does not change"]);
    let stored = domain.get(&order).await.unwrap().unwrap();
    assert_eq!((stored.customer.as_str(), stored.version()), ("ada", 2), "nothing was written");
}

#[tokio::test]
async fn a_pre_invariant_guards_unit_of_work_commits_too() {
    let domain = shop();
    let order = open(&domain).await;
    ship(&domain, &order).await;
    let mut unit = domain.unit_of_work::<shop::Order>();
    unit.load(&order).await.unwrap().customer = "bob".into();
    let error = unit.commit().await.unwrap_err();
    assert!(matches!(error.rejection(), Some(DomainError::Validation(_))), "{error}");
    assert_eq!(domain.get(&order).await.unwrap().unwrap().customer, "ada");
}

#[tokio::test]
async fn a_changed_entity_is_held_to_its_pre_invariants_as_loaded() {
    let domain = shop();
    let order = open(&domain).await;
    // Pack the line only (the order stays open): a packed line does not change.
    let mut unit = domain.unit_of_work::<shop::Order>();
    unit.load(&order).await.unwrap().lines.iter_mut().for_each(|l| l.packed = true);
    unit.commit().await.unwrap().all_delivered().unwrap();
    let error = domain.process(shop::RecountLines { order: order.clone(), copies: 3 }).await.unwrap_err();
    let Some(DomainError::Validation(errors)) = error.rejection() else { panic!("{error}") };
    assert_eq!(errors.messages("lines[0]"), ["a packed line does not change"]);
    // An unchanged packed line does not stop a change elsewhere in the order.
    domain
        .process(shop::Reassign { order: order.clone(), customer: "bob".into() })
        .await
        .unwrap()
        .all_delivered()
        .unwrap();
    let stored = domain.get(&order).await.unwrap().unwrap();
    assert_eq!((stored.customer.as_str(), stored.lines.as_slice()[0].copies), ("bob", 1));
}

#[test]
fn entities_and_aggregates_are_equal_by_identity_and_hash_by_it() {
    let line = shop::Line::builder().copies(1).packed(false).build().unwrap();
    let mut other_state = line.clone();
    other_state.copies = 7;
    assert_eq!(line, other_state, "the same entity, whatever its attributes");
    let another = shop::Line::builder().copies(1).packed(false).build().unwrap();
    assert_ne!(line, another, "same attributes, another identity");
    let set: HashSet<shop::Line> = [line.clone(), other_state, another].into_iter().collect();
    assert_eq!(set.len(), 2);

    let order = shop::Order::builder().customer("a").status(shop::Status::Open).level(1).weight(0.5).build().unwrap();
    let mut renamed = order.clone();
    renamed.customer = "b".into();
    assert_eq!(order, renamed);
    // Value objects stay equal by value, and `#[derive(Eq, Hash)]` makes them hashable.
    let sku = |code: &str| shop::Sku::new(code).unwrap();
    assert_eq!(sku("PEN"), sku("PEN"));
    assert_ne!(sku("PEN"), sku("INK"));
    assert_eq!([sku("PEN"), sku("PEN"), sku("INK")].into_iter().collect::<HashSet<_>>().len(), 2);
}

#[tokio::test]
async fn an_event_sourced_version_counts_events_live_reloaded_and_as_of() {
    use ledger::*;
    let domain = Domain::builder().module(module_path!().to_string() + "::ledger").build().unwrap();
    let id = Identifier::<Account>::generate();
    let mut live = Account::blank(id.clone());
    for amount in [1, 2, 3] {
        live.raise(Deposited { amount });
    }
    assert_eq!(live.version(), 3, "live: one version per event raised");

    domain.process(Deposit { account: id.clone(), amounts: vec![1, 2, 3] }).await.unwrap().all_delivered().unwrap();
    let reloaded = domain.get(&id).await.unwrap().unwrap();
    assert_eq!((reloaded.balance, reloaded.version()), (6, 3), "reloaded: the same counter");
    domain.process(Deposit { account: id.clone(), amounts: vec![10, 20] }).await.unwrap().all_delivered().unwrap();
    let reloaded = domain.get(&id).await.unwrap().unwrap();
    assert_eq!((reloaded.balance, reloaded.version()), (36, 5), "two more events: two more versions");
    let then = domain.get_as_of(&id, 4).await.unwrap().unwrap();
    assert_eq!((then.balance, then.version()), (16, 4), "as of an event: its sequence is the version");
    let events = domain.events_of(&id).await.unwrap();
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn entities_raise_events_of_their_aggregate_in_raise_order() {
    let domain = shop();
    let order = open(&domain).await;
    let processed = domain.process(shop::PackAndShip { order: order.clone() }).await.unwrap();
    processed.all_delivered().unwrap();
    assert_eq!(processed.event_types(), ["Order.LinePacked", "Order.OrderShipped"]);
    let events = domain.events_of(&order).await.unwrap();
    assert_eq!(events.iter().map(|e| &*e.type_name).collect::<Vec<_>>(), ["Order.LinePacked", "Order.OrderShipped"]);

    let mut line = shop::Line::builder().copies(1).packed(false).build().unwrap();
    line.pack();
    let mut order =
        shop::Order::builder().customer("a").status(shop::Status::Open).level(1).weight(0.0).build().unwrap();
    let id = order.id.clone();
    order.raise(shop::OrderShipped { order: id });
    order.lines.add(line);
    let pending: Vec<&str> = order.pending_events().iter().map(|e| e.type_name()).collect();
    assert_eq!(pending, ["Order.LinePacked", "Order.OrderShipped"], "raise order across root and entities");
    assert_eq!(order.take_events().len(), 2);
    assert!(order.pending_events().is_empty(), "taken once");
}

#[tokio::test]
async fn non_finite_floats_are_refused_and_never_stored() {
    let domain = shop();
    let order = open(&domain).await;
    for weight in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let error = domain.process(shop::Weigh { order: order.clone(), weight }).await.unwrap_err();
        let Some(DomainError::Validation(errors)) = error.rejection() else { panic!("{error}") };
        assert_eq!(errors.paths().collect::<Vec<_>>(), ["weight"], "{errors}");
    }
    // Assigned in application code, a NaN is refused at commit: the stored order stays readable.
    let mut unit = domain.unit_of_work::<shop::Order>();
    unit.load(&order).await.unwrap().weight = f64::NAN;
    let error = unit.commit().await.unwrap_err();
    assert!(error.to_string().contains("weight: must be a finite number"), "{error}");
    domain.process(shop::Weigh { order: order.clone(), weight: 2.5 }).await.unwrap().all_delivered().unwrap();
    assert_eq!(domain.get(&order).await.unwrap().unwrap().weight, 2.5);
}

#[tokio::test]
async fn stored_data_that_breaks_a_field_option_is_corrupt() {
    let store = Arc::new(MemoryStore::new());
    let domain =
        Domain::builder().module(module_path!().to_string() + "::shop").shared_store(store.clone()).build().unwrap();
    let order = open(&domain).await;
    let stream = StreamId::new("Order", order.to_string());
    let record = store.load(&stream).await.unwrap().unwrap();
    let damaged = record.state.replace("\"level\":1", "\"level\":5000");
    assert_ne!(damaged, *record.state);
    let commit = Commit {
        stream: stream.clone(),
        expected_version: record.version,
        advance: 1,
        state: Some(damaged.into()),
        events: vec![],
        snapshot: None,
    };
    store.commit(Batch { commits: vec![commit], ..Batch::default() }).await.unwrap();
    let error = domain.get(&order).await.unwrap_err();
    let ProcessError::Store(StoreError::Corrupt { stream: at, reason, .. }) = &error else { panic!("{error}") };
    assert_eq!(at, &stream);
    assert!(reason.contains("level: must be at most 1000"), "{reason}");
}

#[tokio::test]
async fn a_command_handler_hands_back_its_reply() {
    let domain = shop();
    let processed = domain.process(shop::OpenOrder { customer: "ada".into(), copies: 2 }).await.unwrap();
    let id: Identifier<shop::Order> = processed.reply.clone();
    assert_eq!(domain.get(&id).await.unwrap().unwrap().lines.as_slice()[0].copies, 2);
    // The test kit carries it too.
    let outcome = Scenario::new(shop()).when(shop::OpenOrder { customer: "bob".into(), copies: 1 }).await;
    let id = outcome.reply().clone();
    outcome.then_state(&id, |o: &shop::Order| assert_eq!(o.customer, "bob"));
}

#[tokio::test]
async fn load_or_add_says_whether_it_created() {
    use ledger::*;
    let domain = Domain::builder().module(module_path!().to_string() + "::ledger").build().unwrap();
    let id = Identifier::<Account>::generate();
    let mut unit = domain.unit_of_work::<Account>();
    let opened = unit.load_or_add(&id, || Ok(Account::blank(id.clone()))).await.unwrap();
    assert!(opened.created());
    let mut opened = unit.load_or_add(&id, || unreachable!("it is in the unit now")).await.unwrap();
    assert!(!opened.created());
    opened.raise(Deposited { amount: 5 });
    unit.commit().await.unwrap().all_delivered().unwrap();
    let mut unit = domain.unit_of_work::<Account>();
    let opened = unit.load_or_add(&id, || unreachable!("it is stored")).await.unwrap();
    assert!(!opened.created());
    assert_eq!(opened.balance, 5);
}

#[tokio::test]
async fn a_failed_reaction_is_an_error_on_request() {
    mod failing {
        use protean::prelude::*;

        #[aggregate]
        pub struct Source {
            pub n: u32,
        }

        #[event(part_of = Source)]
        pub struct Happened {
            pub n: u32,
        }

        #[command(part_of = Source)]
        pub struct Make {
            pub n: u32,
        }

        #[aggregate]
        pub struct Sink {
            pub n: u32,
        }

        pub struct Sources;

        #[handler(part_of = Source)]
        impl Sources {
            async fn make(ctx: &mut Context<Source>, command: Make) -> Result<(), DomainError> {
                ctx.add(Source::builder().n(command.n).build()?)?.raise(Happened { n: command.n });
                Ok(())
            }
        }

        pub struct Sinks;

        #[handler(part_of = Sink)]
        impl Sinks {
            async fn refuse(_ctx: &mut Context<Sink>, _event: &Happened) -> Result<(), DomainError> {
                Err(DomainError::rule("the sink is full"))
            }
        }
    }
    let domain = Domain::builder().module(module_path!().to_string()).build().unwrap();
    let processed = domain.process(failing::Make { n: 1 }).await.unwrap();
    let Err(ProcessError::ReactionsFailed { failures }) = processed.all_delivered() else { panic!("a failure") };
    assert_eq!(failures.len(), 1);
    assert!(failures[0].to_string().contains("the sink is full"), "{}", failures[0]);
    assert_eq!(domain.failed_deliveries().len(), 1, "kept for retrying");
    let retried = domain.retry_failed().await;
    assert!(matches!(retried.all_delivered(), Err(ProcessError::ReactionsFailed { .. })));
    let rejected = domain.process(failing::Make { n: 0 }).await.unwrap().all_delivered().unwrap_err();
    assert!(rejected.to_string().contains("reaction(s) failed"), "{rejected}");
}

#[test]
fn builder_setters_take_integer_literals_and_the_prelude_has_uuid() {
    // `.copies(1)` for a `u32` field: no `1u32` needed.
    let line = shop::Line::builder().copies(1).packed(false).build().unwrap();
    assert_eq!(line.copies, 1);
    let id: Uuid = Uuid::now_v7();
    assert_eq!(id.get_version_num(), 7);
}
