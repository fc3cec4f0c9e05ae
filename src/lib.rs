//! # protean
//!
//! Domain-Driven Design for Rust, where the compiler enforces aggregate boundaries.
//!
//! Annotate plain structs; the macros add the derives, validation, identity, the
//! registration into the domain registry, and the type-level facts that make boundary
//! violations fail to compile with a message that names the fix.
//!
//! ```
//! use protean::prelude::*;
//!
//! #[value_object]
//! pub struct Money {
//!     #[field(min = 0)]
//!     cents: i64,
//!     #[field(length = 3)]
//!     currency: String,
//! }
//!
//! #[aggregate]
//! #[invariant(post = has_items_when_placed)]
//! pub struct Order {
//!     pub customer_id: Identifier<Customer>, // another aggregate: by identity only
//!     pub items: HasMany<OrderItem>,         // entities of this aggregate
//!     #[field(default = false)]
//!     pub placed: bool,
//! }
//!
//! impl Order {
//!     fn has_items_when_placed(&self) -> InvariantResult {
//!         if self.placed && self.items.is_empty() {
//!             return Err(ValidationError::field("items", "a placed order has at least one item"));
//!         }
//!         Ok(())
//!     }
//!
//!     pub fn place(&mut self) -> Result<(), DomainError> {
//!         self.change(|order| {
//!             order.placed = true;
//!             let event = OrderPlaced { order_id: order.id.clone(), customer_id: order.customer_id.clone() };
//!             order.raise(event);
//!             Ok(())
//!         })
//!     }
//! }
//!
//! #[entity(part_of = Order)]
//! pub struct OrderItem {
//!     #[field(min_length = 1)]
//!     pub sku: String,
//!     #[field(min = 1)]
//!     pub quantity: u32,
//!     pub unit_price: Money,
//! }
//!
//! #[event(part_of = Order)]
//! pub struct OrderPlaced {
//!     pub order_id: Identifier<Order>,
//!     pub customer_id: Identifier<Customer>,
//! }
//!
//! #[aggregate]
//! pub struct Customer {
//!     #[field(min_length = 1)]
//!     pub name: String,
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut order = Order::builder().customer_id(Identifier::<Customer>::generate()).build()?;
//! // The invariant refuses the change, and the order is left as it was.
//! assert!(order.place().is_err());
//! assert!(!order.placed && order.pending_events().is_empty());
//!
//! let price = Money::new(1250, "EUR")?;
//! order.items.add(OrderItem::builder().sku("BOOK-1").quantity(2u32).unit_price(price).build()?);
//! order.place()?;
//! assert_eq!(order.take_events().len(), 1);
//!
//! // Every bad field is reported at once, keyed by its path.
//! let err = Money::new(-1, "EURO").unwrap_err();
//! assert_eq!(err.messages("cents"), ["must be at least 0"]);
//! assert_eq!(err.messages("currency"), ["must have exactly 3 characters, has 4"]);
//! # Ok(()) }
//! ```
//!
//! ## Handlers, the unit of work and the engine
//!
//! A `#[handler(part_of = X)]` changes only `X`; other aggregates react to its events in
//! their own units of work. [`Domain::process`](runtime::Domain::process) runs it all:
//!
//! ```
//! use protean::prelude::*;
//!
//! #[aggregate]
//! pub struct Account {
//!     #[field(min = 0)]
//!     pub balance: i64,
//! }
//!
//! #[command(part_of = Account)]
//! pub struct Deposit {
//!     pub account: Identifier<Account>,
//!     #[field(min = 1)]
//!     pub amount: i64,
//! }
//!
//! #[event(part_of = Account)]
//! pub struct Deposited {
//!     pub account: Identifier<Account>,
//!     pub amount: i64,
//! }
//!
//! #[aggregate]
//! pub struct Statement {
//!     pub deposits: u32,
//! }
//!
//! pub struct AccountCommands;
//!
//! #[handler(part_of = Account)]
//! impl AccountCommands {
//!     async fn deposit(ctx: &mut Context<Account>, command: Deposit) -> Result<(), DomainError> {
//!         let id = command.account.clone();
//!         let mut account = ctx.load_or_add(&id, || Ok(Account::builder().id(id.clone()).balance(0).build()?)).await?;
//!         account.balance += command.amount;
//!         account.raise(Deposited { account: command.account, amount: command.amount });
//!         Ok(())
//!     }
//! }
//!
//! pub struct StatementReactions;
//!
//! #[handler(part_of = Statement)]
//! impl StatementReactions {
//!     // Another aggregate reacts, in its own transaction; `ctx` here accepts only `Statement`.
//!     async fn count(ctx: &mut Context<Statement>, event: &Deposited) -> Result<(), DomainError> {
//!         let id = event.account.cast::<Statement>();
//!         ctx.load_or_add(&id, || Ok(Statement::builder().id(id.clone()).deposits(0u32).build()?)).await?.deposits += 1;
//!         Ok(())
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let domain = Domain::from_registry()?; // every command has exactly one handler
//! let account = Identifier::<Account>::generate();
//! let processed = domain.process(Deposit { account: account.clone(), amount: 50 }).await?;
//! assert_eq!(processed.event_types(), ["Account.Deposited"]);
//! assert_eq!(domain.get(&account).await?.unwrap().balance, 50);
//! assert_eq!(domain.get(&account.cast::<Statement>()).await?.unwrap().deposits, 1);
//!
//! // A refused command writes nothing and lists every bad field.
//! let refused = domain.process(Deposit { account, amount: 0 }).await.unwrap_err();
//! assert!(refused.to_string().contains("amount: must be at least 1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```
//!
//! The repository's `README.md` and `docs/` (the guide, storage, delivery, projections,
//! process managers, benchmarks) say more, and its `examples/` hold the e-commerce and
//! project-management models of the reference articles.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub use protean_core::cli;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use protean_core::http;
pub use protean_core::{contract, export, forward_ports, model, registry, runtime, store, testing};
pub use protean_macros::{
    aggregate, apply, command, entity, event, handler, process_manager, projection, projector, value_object,
};

/// Everything a domain model needs: `use protean::prelude::*;`.
pub mod prelude {
    pub use protean_core::model::{
        Aggregate, Apply, Choices, Command, DomainElement, DomainError, Entity, Event, HasMany, HasOne, Identifiable,
        Identifier, InvariantResult, Phase, Validate, ValidationError, ValueObject,
    };
    pub use protean_core::runtime::{
        Context, Delivered, Domain, Flow, Opened, ProcessError, ProcessManager, Processed, Projection, ProjectionKey,
        ReadModel, Rows,
    };
    // The store's ports, in scope without their names, so that a store's methods can be
    // called on a concrete store (`MemoryStore`, `SqliteStore`, ...) as well as on a
    // `dyn Store`. Hidden: a `use … as _` has no page of its own to link to.
    #[doc(hidden)]
    pub use protean_core::store::ports::{Deliveries as _, Outbox as _, Projections as _, Records as _, Schedule as _};
    pub use protean_macros::{
        aggregate, apply, command, entity, event, handler, process_manager, projection, projector, value_object,
    };
    /// Command ids and correlation ids ([`Domain::process_with`]) are UUIDs.
    pub use uuid::Uuid;
}

#[doc(hidden)]
pub use protean_core::__private;

// The Rust code blocks of the README and of every page in docs/, compiled and run as
// doctests (`cargo test --doc`), so what they show keeps compiling.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/guide.md")]
pub struct GuideDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/storage.md")]
pub struct StorageDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/delivery.md")]
pub struct DeliveryDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/projections.md")]
pub struct ProjectionsDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/process-managers.md")]
pub struct ProcessManagersDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/benchmarks.md")]
pub struct BenchmarksDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/metrics.md")]
pub struct MetricsDoctests;
#[cfg(all(doctest, feature = "http"))]
#[doc = include_str!("../docs/operations-http.md")]
pub struct OperationsHttpDoctests;
#[cfg(all(doctest, feature = "cli"))]
#[doc = include_str!("../docs/operations.md")]
pub struct OperationsDoctests;
