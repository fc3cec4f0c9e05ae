//! The engine: routing, units of work, versions and conflicts, delivery and its
//! failures, read models, and what the domain refuses to build.

#[path = "../examples/ecommerce/model.rs"]
#[allow(dead_code)]
mod ecommerce;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use ecommerce::*;
use protean::prelude::*;
use protean::store::StreamId;
use protean::store::{Batch, BoxFuture, Commit, Committed, MemoryStore, Record, Store, StoreError, VersionConflict};

fn shop() -> Domain {
    Domain::builder().module(module_path!().to_string() + "::ecommerce").build().expect("the e-commerce model is valid")
}

fn sku(text: &str) -> Identifier<Inventory> {
    Identifier::parse(text).unwrap()
}

fn order_of(customer: &Identifier<Customer>, sku: &str, quantity: u32, cents: i64) -> PlaceOrder {
    PlaceOrder {
        order_id: Identifier::generate(),
        customer_id: customer.clone(),
        customer_name: "Ada".into(),
        customer_email: "ada@example.com".into(),
        lines: vec![OrderLine::new(sku, quantity, Money::new(cents, "EUR").unwrap()).unwrap()],
        shipping_address: None,
    }
}

#[tokio::test]
async fn a_command_is_committed_and_its_events_reach_every_handler_in_their_own_units() {
    let domain = shop();
    domain.process(Restock { sku: sku("BOOK-1"), quantity: 5 }).await.unwrap().all_delivered().unwrap();
    let ada = Identifier::<Customer>::generate();
    let command = order_of(&ada, "BOOK-1", 2, 1250);
    let order_id = command.order_id.clone();
    let processed = domain.process(command).await.unwrap();

    assert_eq!(
        processed.event_types(),
        ["Order.OrderPlaced", "Inventory.StockReserved", "CustomerLoyalty.LoyaltyPointsAdded"]
    );
    assert!(processed.failures.is_empty());
    let [committed] = processed.committed.as_slice() else { panic!("one aggregate committed") };
    assert_eq!(committed.stream, StreamId::new("Order", order_id.to_string()));
    assert_eq!(committed.version, 1);

    // Each aggregate was saved in its own unit of work, with its own version.
    let order = domain.get(&order_id).await.unwrap().unwrap();
    assert_eq!((order.status, order.version()), (OrderStatus::Placed, 1));
    let stock = domain.get(&sku("BOOK-1")).await.unwrap().unwrap();
    assert_eq!((stock.available, stock.reserved, stock.version()), (5, 2, 2));
    let loyalty = domain.get(&ada.cast::<CustomerLoyalty>()).await.unwrap().unwrap();
    assert_eq!(loyalty.points, 25);
}

#[tokio::test]
async fn envelopes_carry_stream_sequence_and_the_causal_chain() {
    let domain = shop();
    domain.process(Restock { sku: sku("PEN-1"), quantity: 1 }).await.unwrap().all_delivered().unwrap();
    let command_id = uuid::Uuid::now_v7();
    let command = order_of(&Identifier::generate(), "PEN-1", 3, 300);
    let order_id = command.order_id.clone();
    let processed = domain.process_with(command, command_id, None).await.unwrap();

    let [placed, failed, points, awaiting] = processed.events.as_slice() else {
        panic!("four events, got {:?}", processed.event_types())
    };
    assert_eq!(
        processed.event_types(),
        [
            "Order.OrderPlaced",
            "Inventory.StockReservationFailed",
            "CustomerLoyalty.LoyaltyPointsAdded",
            "Order.OrderAwaitingRestock"
        ]
    );
    for event in &processed.events {
        assert_eq!(event.correlation_id, command_id, "the command's id flows through the conversation");
    }
    assert_eq!(placed.causation_id, command_id);
    assert_eq!(failed.causation_id, placed.id);
    assert_eq!(points.causation_id, placed.id);
    assert_eq!(awaiting.causation_id, failed.id);
    assert_eq!((&*placed.stream.id, placed.sequence), (order_id.to_string().as_str(), 1));
    assert_eq!((&*awaiting.stream.id, awaiting.sequence), (order_id.to_string().as_str(), 2));
    assert_eq!((&*failed.stream.aggregate, failed.sequence), ("Inventory", 2), "after StockAdded");
    assert_eq!(placed.version, 1);

    // The store holds the same events, as JSON, in order per stream.
    let stored = domain.events_of(&order_id).await.unwrap();
    assert_eq!(stored, vec![placed.stored(), awaiting.stored()]);
    let parsed = stored[0].event::<OrderPlaced>().unwrap();
    assert_eq!(parsed.order_id, order_id);
    assert_eq!(domain.get(&order_id).await.unwrap().unwrap().status, OrderStatus::AwaitingRestock);
}

#[tokio::test]
async fn a_refused_command_writes_nothing_and_lists_every_bad_field() {
    let domain = shop();
    let mut command = order_of(&Identifier::generate(), "BOOK-1", 1, 100);
    command.customer_name.clear();
    command.lines.clear();
    let order_id = command.order_id.clone();
    let error = domain.process(command).await.unwrap_err();
    let Some(DomainError::Validation(errors)) = error.rejection() else { panic!("a validation error: {error}") };
    assert_eq!(errors.paths().collect::<Vec<_>>(), ["customer_name", "lines"]);
    assert!(domain.get(&order_id).await.unwrap().is_none());
    assert!(domain.events_of(&order_id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_business_rule_refusal_keeps_the_stored_state() {
    let domain = shop();
    domain.process(Restock { sku: sku("BOOK-1"), quantity: 5 }).await.unwrap().all_delivered().unwrap();
    let first = order_of(&Identifier::generate(), "BOOK-1", 1, 100);
    let again = PlaceOrder { order_id: first.order_id.clone(), ..order_of(&Identifier::generate(), "BOOK-1", 9, 1) };
    domain.process(first.clone()).await.unwrap().all_delivered().unwrap();
    let error = domain.process(again).await.unwrap_err();
    assert_eq!(error.rejection(), Some(&DomainError::rule(format!("order {} was already placed", first.order_id))));
    let order = domain.get(&first.order_id).await.unwrap().unwrap();
    assert_eq!((order.version(), order.items.len()), (1, 1));
}

#[tokio::test]
async fn a_stale_unit_of_work_gets_a_typed_conflict_and_writes_nothing() {
    let domain = shop();
    let id = sku("BOOK-1");
    domain.process(Restock { sku: id.clone(), quantity: 5 }).await.unwrap().all_delivered().unwrap();

    let mut first = domain.unit_of_work::<Inventory>();
    let mut second = domain.unit_of_work::<Inventory>();
    first.load(&id).await.unwrap().restock(1).unwrap();
    second.load(&id).await.unwrap().restock(100).unwrap();
    first.commit().await.unwrap().all_delivered().unwrap();
    let Err(ProcessError::Conflict(conflict)) = second.commit().await else { panic!("a conflict") };
    assert_eq!(conflict, VersionConflict { stream: conflict.stream.clone(), expected: 1, actual: 2 });
    assert_eq!(&*conflict.stream.id, "BOOK-1");
    assert_eq!(domain.get(&id).await.unwrap().unwrap().available, 6);
}

#[tokio::test]
async fn units_of_work_are_isolated_and_write_only_when_committed() {
    let domain = shop();
    let id = sku("BOOK-1");
    domain.process(Restock { sku: id.clone(), quantity: 5 }).await.unwrap().all_delivered().unwrap();

    let mut unit = domain.unit_of_work::<Inventory>();
    unit.load(&id).await.unwrap().restock(10).unwrap();
    // The identity map: the same aggregate, with the change, on the second load.
    assert_eq!(unit.load(&id).await.unwrap().available, 15);
    // Another unit (and the store) still sees the committed state.
    assert_eq!(domain.get(&id).await.unwrap().unwrap().available, 5);
    drop(unit);
    assert_eq!(domain.get(&id).await.unwrap().unwrap().available, 5, "dropped, never written");
    assert_eq!(domain.events_of(&id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn invariants_are_checked_before_saving_even_after_direct_field_changes() {
    let domain = shop();
    let id = sku("BOOK-1");
    domain.process(Restock { sku: id.clone(), quantity: 5 }).await.unwrap().all_delivered().unwrap();
    let mut unit = domain.unit_of_work::<Inventory>();
    unit.load(&id).await.unwrap().reserved = 9; // bypasses `reserve`
    let error = unit.commit().await.unwrap_err();
    let Some(DomainError::Validation(errors)) = error.rejection() else { panic!("invalid: {error}") };
    assert_eq!(errors.messages("reserved"), ["cannot exceed the available stock"]);
    assert_eq!(domain.get(&id).await.unwrap().unwrap().reserved, 0);
}

#[tokio::test]
async fn removal_is_committed_and_a_stale_writer_is_refused() {
    let domain = shop();
    let id = sku("BOOK-1");
    domain.process(Restock { sku: id.clone(), quantity: 5 }).await.unwrap().all_delivered().unwrap();
    let mut stale = domain.unit_of_work::<Inventory>();
    stale.load(&id).await.unwrap().restock(1).unwrap();

    let mut unit = domain.unit_of_work::<Inventory>();
    unit.remove(&id).await.unwrap();
    assert!(unit.find(&id).await.unwrap().is_none(), "removed within the unit");
    unit.commit().await.unwrap().all_delivered().unwrap();
    assert!(domain.get(&id).await.unwrap().is_none());
    assert!(matches!(stale.commit().await, Err(ProcessError::Conflict(_))));
}

#[tokio::test]
async fn a_failed_delivery_keeps_the_event_and_can_be_retried() {
    let domain = shop();
    // No inventory for PEN-1 yet: the Inventory handler cannot find it.
    let command = order_of(&Identifier::generate(), "PEN-1", 1, 300);
    let order_id = command.order_id.clone();
    let processed = domain.process(command).await.expect("the order itself is placed");
    let [failure] = processed.failures.as_slice() else { panic!("one failure: {:?}", processed.failures) };
    assert_eq!(failure.handler.name(), "InventoryReactions::reserve");
    assert_eq!(failure.event.type_name, "Order.OrderPlaced");
    assert_eq!(failure.error.rejection(), Some(&DomainError::NotFound { kind: "Inventory", id: "PEN-1".into() }));
    assert!(failure.to_string().starts_with("InventoryReactions::reserve failed on Order.OrderPlaced #1 of Order/"));
    assert_eq!(domain.failed_deliveries().len(), 1);
    // The other handler of the same event was not held back.
    assert_eq!(processed.event_types(), ["Order.OrderPlaced", "CustomerLoyalty.LoyaltyPointsAdded"]);

    // Retrying before the cause is fixed fails again and keeps the failure.
    let Delivered { failures: still, .. } = domain.retry_failed().await;
    assert_eq!(still.len(), 1);
    assert_eq!(domain.failed_deliveries().len(), 1);

    domain.process(Restock { sku: sku("PEN-1"), quantity: 3 }).await.unwrap().all_delivered().unwrap();
    let Delivered { events: delivered, failures } = domain.retry_failed().await;
    assert!(failures.is_empty());
    assert_eq!(delivered.iter().map(|e| &*e.type_name).collect::<Vec<_>>(), ["Inventory.StockReserved"]);
    assert!(domain.failed_deliveries().is_empty());
    assert_eq!(domain.get(&sku("PEN-1")).await.unwrap().unwrap().reserved, 1);
    assert_eq!(domain.get(&order_id).await.unwrap().unwrap().status, OrderStatus::Placed);
}

/// A store that refuses the first `conflicts` commits touching `Inventory`, as if another
/// process had written it in between.
struct ContendedStore {
    inner: MemoryStore,
    conflicts: AtomicU32,
}

impl Store for ContendedStore {
    fn load<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        self.inner.load(stream)
    }
    fn commit(&self, batch: Batch) -> BoxFuture<'_, Result<Vec<Committed>, StoreError>> {
        let commits = &batch.commits;
        let contended = commits.iter().any(|c| c.stream.aggregate == "Inventory" && c.expected_version > 0);
        if contended && self.conflicts.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            let c = &commits[0];
            let conflict = VersionConflict { stream: c.stream.clone(), expected: c.expected_version, actual: 99 };
            return Box::pin(std::future::ready(Err(conflict.into())));
        }
        self.inner.commit(batch)
    }
    fn claim_undelivered(
        &self,
        limit: usize,
        lease: std::time::Duration,
    ) -> BoxFuture<'_, Result<Vec<protean::store::Envelope>, StoreError>> {
        self.inner.claim_undelivered(limit, lease)
    }
    fn mark_delivered(&self, event_ids: Vec<uuid::Uuid>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.mark_delivered(event_ids)
    }
    fn is_handled<'a>(&'a self, handler: &'a str, message_id: uuid::Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.inner.is_handled(handler, message_id)
    }
    fn stream<'a>(&'a self, stream: &'a StreamId) -> BoxFuture<'a, Result<Vec<protean::store::Envelope>, StoreError>> {
        self.inner.stream(stream)
    }
    fn events(&self, from: u64, limit: usize) -> BoxFuture<'_, Result<Vec<protean::store::Envelope>, StoreError>> {
        self.inner.events(from, limit)
    }
    fn read_model<'a>(&'a self, name: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        self.inner.read_model(name, key)
    }
    fn put_read_model<'a>(
        &'a self,
        name: &'a str,
        key: &'a str,
        json: String,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.put_read_model(name, key, json)
    }
}

async fn contended_shop(conflicts: u32, retries: u32) -> Domain {
    let store = ContendedStore { inner: MemoryStore::new(), conflicts: AtomicU32::new(conflicts) };
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::ecommerce")
        .store(store)
        .conflict_retries(retries)
        .build()
        .unwrap();
    domain.process(Restock { sku: sku("BOOK-1"), quantity: 5 }).await.unwrap().all_delivered().unwrap();
    domain
}

#[tokio::test]
async fn event_handlers_retry_version_conflicts_up_to_the_configured_bound() {
    let domain = contended_shop(2, 2).await;
    let processed = domain.process(order_of(&Identifier::generate(), "BOOK-1", 1, 100)).await.unwrap();
    assert!(processed.failures.is_empty(), "two conflicts, two retries: {:?}", processed.failures);
    assert_eq!(domain.get(&sku("BOOK-1")).await.unwrap().unwrap().reserved, 1, "reserved once, not three times");

    let domain = contended_shop(3, 2).await;
    let processed = domain.process(order_of(&Identifier::generate(), "BOOK-1", 1, 100)).await.unwrap();
    let [failure] = processed.failures.as_slice() else { panic!("one failure") };
    assert!(matches!(failure.error, ProcessError::Conflict(_)), "{}", failure.error);
    assert_eq!(domain.get(&sku("BOOK-1")).await.unwrap().unwrap().reserved, 0);
    // Once the contention is gone, the kept event is delivered.
    let Delivered { events: _, failures } = domain.retry_failed().await;
    assert!(failures.is_empty());
    assert_eq!(domain.get(&sku("BOOK-1")).await.unwrap().unwrap().reserved, 1);
}

#[tokio::test]
async fn commands_retry_conflicts_too_and_report_them_when_retries_run_out() {
    let domain = contended_shop(1, 0).await;
    let error = domain.process(Restock { sku: sku("BOOK-1"), quantity: 1 }).await.unwrap_err();
    assert!(matches!(error, ProcessError::Conflict(_)), "{error}");
    let domain = contended_shop(1, 1).await;
    domain.process(Restock { sku: sku("BOOK-1"), quantity: 1 }).await.unwrap().all_delivered().unwrap();
    assert_eq!(domain.get(&sku("BOOK-1")).await.unwrap().unwrap().available, 6);
}

#[tokio::test]
async fn corrupt_stored_records_are_typed_errors() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::ecommerce")
        .shared_store(Arc::clone(&store))
        .build()
        .unwrap();
    let stream = StreamId::new("Inventory", "BOOK-1");
    let bad = Commit {
        stream,
        expected_version: 0,
        advance: 1,
        state: Some(r#"{"id":"BOOK-1","available":"many"}"#.into()),
        events: vec![],
        snapshot: None,
    };
    store.commit(Batch { commits: vec![bad], handled: None, delivered: vec![] }).await.unwrap();
    let error = domain.get(&sku("BOOK-1")).await.unwrap_err();
    let ProcessError::Store(StoreError::Corrupt { stream, position, reason }) = &error else { panic!("{error}") };
    assert_eq!((&*stream.id, *position), ("BOOK-1", 1));
    assert!(reason.contains("not a valid `Inventory`"), "{reason}");
    // A handler meeting it fails the command with the same typed error.
    let error = domain.process(Restock { sku: sku("BOOK-1"), quantity: 1 }).await.unwrap_err();
    assert!(matches!(error, ProcessError::Store(StoreError::Corrupt { .. })), "{error}");
}

/// Handlers of their own, to exercise the context directly.
mod lab {
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
}

#[tokio::test]
async fn the_identity_map_gives_one_instance_per_identity() {
    let domain = Domain::builder().module(module_path!().to_string() + "::lab").build().unwrap();
    let id = Identifier::<lab::Counter>::generate();
    domain.process(lab::BumpTwice { id: id.clone() }).await.unwrap().all_delivered().unwrap();
    let counter = domain.get(&id).await.unwrap().unwrap();
    assert_eq!((counter.count, counter.version()), (2, 1));
}

#[tokio::test]
async fn handlers_read_read_models_without_changing_them() {
    let domain = Domain::builder().module(module_path!().to_string() + "::lab").build().unwrap();
    let id = Identifier::<lab::Counter>::generate();
    domain.process(lab::BumpTwice { id: id.clone() }).await.unwrap().all_delivered().unwrap();
    let command = lab::BumpByPrice { id: id.clone(), product: "pen".into() };
    let error = domain.process(command.clone()).await.unwrap_err();
    assert_eq!(error.rejection(), Some(&DomainError::rule("no price for pen")));
    domain.put_read_model("pen", &lab::Price { cents: 40 }).await.unwrap();
    domain.process(command).await.unwrap().all_delivered().unwrap();
    assert_eq!(domain.get(&id).await.unwrap().unwrap().count, 42);
    assert_eq!(domain.read_model::<lab::Price>("pen").await.unwrap().unwrap().cents, 40);
}

mod unhandled {
    use protean::prelude::*;

    #[aggregate]
    pub struct Ledger {
        pub total: i64,
    }

    #[command(part_of = Ledger)]
    pub struct Post {
        pub amount: i64,
    }
}

mod twice {
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
}

#[test]
fn a_command_needs_exactly_one_handler_when_the_domain_is_built() {
    let problems = |module: &str| {
        let error = Domain::builder().module(module_path!().to_string() + module).build().unwrap_err();
        error.problems.into_iter().map(|p| format!("{}: {}", p.element, p.message)).collect::<Vec<_>>()
    };
    assert_eq!(
        problems("::unhandled"),
        ["Post: command `Post` has no handler: add a method `async fn(ctx: &mut Context<Ledger>, command: Post)` \
          to a `#[handler(part_of = Ledger)]`"]
    );
    assert_eq!(
        problems("::twice"),
        ["Post: command `Post` has 2 handlers (Posting::post, PostingAgain::post_again): \
          a command is handled exactly once; keep one"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_on_one_aggregate_lose_no_update() {
    let domain =
        Domain::builder().module(module_path!().to_string() + "::ecommerce").conflict_retries(1_000).build().unwrap();
    let id = sku("BOOK-1");
    domain.process(Restock { sku: id.clone(), quantity: 1 }).await.unwrap().all_delivered().unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (domain, id) = (domain.clone(), id.clone());
            tokio::spawn(async move {
                let mut done = 0;
                for _ in 0..50 {
                    domain.process(Restock { sku: id.clone(), quantity: 1 }).await.unwrap().all_delivered().unwrap();
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut succeeded = 0;
    for task in tasks {
        succeeded += task.await.unwrap();
    }
    let stock = domain.get(&id).await.unwrap().unwrap();
    assert_eq!(stock.available, 1 + succeeded);
    assert_eq!(stock.version(), 1 + u64::from(succeeded), "one version per successful command");
    assert_eq!(domain.events_of(&id).await.unwrap().len(), 1 + succeeded as usize);
}

mod unapplied {
    use protean::prelude::*;

    #[aggregate(event_sourced)]
    pub struct Wallet {
        pub coins: u32,
    }

    #[event(part_of = Wallet)]
    pub struct CoinAdded {
        pub coins: u32,
    }

    #[event(part_of = Wallet)]
    pub struct CoinLost {
        pub coins: u32,
    }

    #[apply]
    impl Wallet {
        fn added(&mut self, event: &CoinAdded) {
            self.coins += event.coins;
        }
    }
}

#[test]
fn an_event_sourced_aggregate_applies_what_it_raises_and_needs_an_apply_for_every_event() {
    use unapplied::*;
    let mut wallet = Wallet::builder().coins(0u32).build().unwrap();
    wallet.raise(CoinAdded { coins: 3 });
    assert_eq!(wallet.coins, 3, "raising applies the event at once");
    assert_eq!(wallet.pending_events().len(), 1);
    assert_eq!(Wallet::blank(wallet.id.clone()).coins, 0, "a blank wallet starts from the defaults");

    let error = Domain::builder().module(module_path!().to_string() + "::unapplied").build().unwrap_err();
    let problems: Vec<String> = error.problems.iter().map(|p| format!("{}: {}", p.element, p.message)).collect();
    assert_eq!(
        problems,
        ["CoinLost: event `CoinLost` of the event-sourced `Wallet` has no apply method: add \
          `fn(&mut self, event: &CoinLost)` to an `#[apply] impl Wallet` block"]
    );
}

mod dups {
    pub mod billing {
        use protean::prelude::*;

        #[aggregate]
        pub struct Bill {
            pub total: i64,
        }

        #[event(part_of = Bill)]
        pub struct Billed {
            pub id: Identifier<Bill>,
        }

        pub struct Reactions;

        #[handler(part_of = Bill)]
        impl Reactions {
            async fn on(ctx: &mut Context<Bill>, event: &Billed) -> Result<(), DomainError> {
                ctx.load(&event.id).await?.total += 1;
                Ok(())
            }
        }
    }

    pub mod shipping {
        use protean::prelude::*;

        #[aggregate]
        pub struct Parcel {
            pub count: i64,
        }

        pub struct Reactions;

        #[handler(part_of = Parcel)]
        impl Reactions {
            async fn on(ctx: &mut Context<Parcel>, event: &super::billing::Billed) -> Result<(), DomainError> {
                ctx.load(&event.id.cast::<Parcel>()).await?.count += 1;
                Ok(())
            }
        }
    }
}

#[test]
fn two_handler_methods_with_one_name_are_refused_since_handled_events_are_recorded_by_it() {
    let error = Domain::builder().module(module_path!().to_string() + "::dups").build().unwrap_err();
    let [problem] = error.problems.as_slice() else { panic!("one problem: {error}") };
    assert_eq!(problem.element, "Reactions::on");
    assert!(
        problem.message.starts_with(
            "2 handler methods are named `Reactions::on` (in engine::dups::billing, engine::dups::shipping)"
        ),
        "{}",
        problem.message
    );
}

mod twofail {
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
}

#[tokio::test]
async fn an_event_stays_undelivered_while_any_of_its_handlers_still_fails() {
    use twofail::*;
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::twofail")
        .delivery_lease(std::time::Duration::ZERO)
        .build()
        .unwrap();
    let id = Identifier::<Source>::generate();
    let mut unit = domain.unit_of_work::<Source>();
    unit.add(Source::builder().id(id.clone()).n(0u32).build().unwrap()).unwrap().raise(Happened { id: id.clone() });
    let processed = unit.commit().await.unwrap();
    assert_eq!(processed.failures.len(), 2, "neither Left nor Right exists yet");
    for _ in 0..3 {
        let _ = domain.deliver_pending().await.unwrap();
    }
    assert_eq!(domain.failed_deliveries().len(), 2, "one entry per handler and event, however often retried");

    // Left appears; retrying delivers to it, but Right still fails: the event is not delivered yet.
    let mut unit = domain.unit_of_work::<Left>();
    unit.add(Left::builder().id(id.cast()).seen(0u32).build().unwrap()).unwrap();
    unit.commit().await.unwrap().all_delivered().unwrap();
    let Delivered { failures: still, .. } = domain.retry_failed().await;
    assert_eq!(still.len(), 1);
    let Delivered { events: again, .. } = domain.deliver_pending().await.unwrap();
    assert_eq!(again.len(), 1, "the event is still pending for Right");
    assert_eq!(domain.get(&id.cast::<Left>()).await.unwrap().unwrap().seen, 1, "Left took it once");

    let mut unit = domain.unit_of_work::<Right>();
    unit.add(Right::builder().id(id.cast()).seen(0u32).build().unwrap()).unwrap();
    unit.commit().await.unwrap().all_delivered().unwrap();
    let Delivered { events: delivered, failures } = domain.deliver_pending().await.unwrap();
    assert!(failures.is_empty());
    assert_eq!(delivered.len(), 1);
    assert_eq!(domain.get(&id.cast::<Right>()).await.unwrap().unwrap().seen, 1);
    assert_eq!(domain.get(&id.cast::<Left>()).await.unwrap().unwrap().seen, 1, "still once");
    assert!(domain.deliver_pending().await.unwrap().events.is_empty(), "delivered for good");
}
