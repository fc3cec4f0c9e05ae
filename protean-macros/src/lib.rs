//! Procedural macros of [protean](https://docs.rs/protean). Depend on the `protean`
//! crate, not on this one: the generated code refers to `::protean::__private`.
//!
//! Each element macro runs in the steps of thiserror and serde: `ast` parses the item
//! and the attributes (`attr`) into an intermediate form, reporting only what it cannot
//! represent; `valid` checks it, recording every mistake on its own span (`errors`);
//! then `expand` generates the code, or, when something was wrong, `fallback` emits
//! the item with stub impls beside the errors, so that one mistake gives one error.
//! `#[projection]` and `#[process_manager]` on a struct are element macros too.
//! `#[handler]`, `#[projector]`, `#[process_manager]` on an `impl` block (`handler`,
//! `projector`, `steps`) and `#[apply]` (`apply`) share the argument parser and the
//! helpers of `expand`; the first three parse their methods in `signature`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod apply;
mod ast;
mod attr;
mod errors;
mod expand;
mod fallback;
mod handler;
mod projector;
mod serde_attr;
mod signature;
mod steps;
mod symbol;
mod valid;

use proc_macro::TokenStream;

use ast::Kind;
use errors::Errors;

/// Runs an element macro: parse, check, then expand or fall back.
fn run(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let item = match syn::parse::<syn::Item>(item) {
        Ok(item) => item,
        Err(e) => return e.to_compile_error().into(),
    };
    run_item(kind, args, item)
}

/// Runs an element macro on a parsed item.
fn run_item(kind: Kind, args: TokenStream, item: syn::Item) -> TokenStream {
    let mut errors = Errors::default();
    let args = attr::parse_args(args.into(), kind.macro_name(), kind.keys(), &mut errors);
    let element = ast::parse(kind, &args, &item, &mut errors);
    match &element {
        Some(element) => valid::check(element, &mut errors),
        None => valid::check_args(kind, &args, &mut errors),
    }
    match element {
        Some(element) if errors.is_empty() => expand::element(&element).into(),
        element => fallback::expand(kind, &item, element.as_ref(), errors).into(),
    }
}

/// Declares an **aggregate root**: the consistency boundary, loaded and saved as one.
///
/// ```text
/// #[aggregate]
/// #[invariant(post = total_matches_items)]
/// #[invariant(pre = not_cancelled)]
/// pub struct Order {
///     pub customer_id: Identifier<Customer>, // another aggregate: by identity only
///     pub items: HasMany<OrderItem>,         // entities `part_of = Order`
///     pub status: OrderStatus,               // an enum #[value_object]
///     pub total: Money,                      // an embedded value object
///     pub shipping: Option<ShippingAddress>,
/// }
/// ```
///
/// * **Arguments**: none.
/// * **Identity**: the field named `id`, or the one marked `#[field(identifier)]`; its
///   type must be `Identifier<Self>`. With neither, `pub id: Identifier<Self>` is added.
///   Exactly one identity field.
/// * **Fields**: values (numbers, `String`, `bool`, `char`, `Uuid`, `Identifier<T>`,
///   `#[value_object]` types, `Option`/`Vec` of them) and `HasMany<E>`/`HasOne<E>` of
///   entities declared `#[entity(part_of = ThisAggregate)]`. Holding another aggregate,
///   or an entity of another aggregate, fails to compile with the fix named.
/// * **`#[field(..)]`**: `min`, `max` (numbers), `min_length`, `max_length`, `length`
///   (text in characters, lists in items), `default = expr` (the value when the builder
///   is not given one, and when a stored record lacks the field), `identifier`.
/// * **`#[invariant(post = method)]`**, **`#[invariant(pre = method)]`**: methods
///   `fn(&self) -> Result<(), ValidationError>`; post-invariants run at construction and
///   after every [`change`](https://docs.rs/protean/latest/protean/prelude/trait.Aggregate.html#method.change),
///   pre-invariants before it.
/// * **Serde**: your `#[serde(..)]` attributes under `#[aggregate]` apply to the derives
///   (`deny_unknown_fields`, `rename_all`, ..), on every element; those that cannot
///   work on one do not compile, and say why.
/// * **Generates**: `Clone`, `Debug`, `PartialEq`, serde's `Serialize`/`Deserialize`
///   (unless you derive them yourself), `Order::builder()` returning a validating
///   `OrderBuilder` (left out of the module's documentation index: `builder()`'s own
///   documentation lists its setters), the `Aggregate` trait (`raise`, `take_events`,
///   `change`), the registry descriptor, and a paragraph after your docs saying what
///   the element is and where its page lists what it touches.
#[proc_macro_attribute]
pub fn aggregate(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::Aggregate, args, item)
}

/// Declares an **entity** inside an aggregate cluster: `#[entity(part_of = Order)]`.
///
/// * **Arguments**: `part_of = Parent` (required): the aggregate, or an entity of it,
///   whose `HasMany`/`HasOne` field holds this entity.
/// * **Identity**, **fields**, **`#[field(..)]`**, **`#[invariant(..)]`**: as for
///   [`macro@aggregate`]. Entity invariants run whenever the aggregate holding them is checked.
/// * **Generates**: the derives, a validating builder, `Entity`, `EntityOf<Parent>`
///   (hidden from the docs), and `Contains<Self>` on the parent, which rustdoc lists on
///   both pages.
#[proc_macro_attribute]
pub fn entity(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::Entity, args, item)
}

/// Declares a **value object**: no identity, compared by value, immutable.
///
/// On a struct: fields become private and get getters of the same name; construct with
/// `Money::new(..)` or `Money::builder()`, both validating. Fields hold values only (no
/// `HasMany`/`HasOne`, no entities, no identity). `#[field(..)]` options and
/// `#[invariant(post = method)]` are checked at construction.
///
/// On an enum of unit variants: a closed set of choices, stored by variant name, with
/// `Display`, `FromStr` and `Choices::CHOICES`.
///
/// * **Arguments**: none.
#[proc_macro_attribute]
pub fn value_object(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::ValueObject, args, item)
}

/// Declares a **command**: a request to change one aggregate.
///
/// * **Arguments**: `part_of = Aggregate` (required), `version = N` (default 1),
///   `name = "Stable.Name"` (default `"Aggregate.Command"`).
/// * **Fields**: values only; `#[field(..)]` options are checked by `validate()`.
/// * **Generates**: the derives, `Command`, `CommandOf<Aggregate>` (hidden from the
///   docs), and `Accepts<Self>` on the aggregate, which rustdoc lists on both pages.
#[proc_macro_attribute]
pub fn command(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::Command, args, item)
}

/// Declares a **domain event** raised by one aggregate.
///
/// * **Arguments**: `part_of = Aggregate` (required), `version = N` (default 1),
///   `name = "Stable.Name"` (default `"Aggregate.Event"`).
/// * **Fields**: values only.
/// * **Generates**: the derives, `Event`, `EventOf<Aggregate>` (what lets
///   `self.raise(event)` compile inside that aggregate, and only there; hidden from the
///   docs), and `Raises<Self>` on the aggregate, which rustdoc lists on both pages. The
///   event's page lists who reacts to it: the `Handles` impls of handlers and process
///   managers, and the `FedBy` impls of projectors.
#[proc_macro_attribute]
pub fn event(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::Event, args, item)
}

/// Declares a **handler**: an `impl` block whose `async fn`s handle commands and react to
/// events, changing exactly one aggregate type, the one it is `part_of`.
///
/// ```text
/// pub struct InventoryReactions;
///
/// #[handler(part_of = Inventory)]
/// impl InventoryReactions {
///     /// Reserves stock for each line of a placed order.
///     async fn reserve(ctx: &mut Context<Inventory>, event: &OrderPlaced) -> Result<(), DomainError> {
///         let inventory = ctx.load(&event.sku).await?;
///         inventory.reserve(event.order_id.clone(), event.quantity)
///     }
/// }
/// ```
///
/// * **Arguments**: `part_of = Aggregate`, required.
/// * **Methods**: every function of the block is a handler method: `async fn(ctx: &mut
///   Context<Aggregate>, message) -> Result<(), E>` where `E: Into<DomainError>`. The
///   message is a command of `Aggregate` taken by value, or an event of any aggregate
///   taken by reference. Keep helpers in another `impl` block.
/// * **Rules the compiler checks**: the context is `Context<Aggregate>`; a command is
///   `part_of` the same aggregate; through the context only `Aggregate` can be loaded,
///   added or removed. Each violation names the fix: raise an event and handle it in a
///   handler `part_of` the other aggregate.
/// * **Generates**: a registration per method (routed by the message's stable type
///   name), collected by `Domain::builder()`, which also checks that every command has
///   exactly one handler; and per message type taken, `Handles<Message, Self>` on the
///   aggregate, which rustdoc lists on the aggregate's, the message's and the handler's
///   pages. Two blocks of one handler type for one aggregate cannot both take the same
///   message (the two impls would conflict): put those methods in one block.
#[proc_macro_attribute]
pub fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    handler::expand(args.into(), item.into()).into()
}

/// Declares the **apply methods** of an `#[aggregate(event_sourced)]`: one
/// `fn(&mut self, event: &Event)` per event the aggregate raises. Raising an event
/// applies it at once; loading the aggregate replays its stored events through them.
///
/// ```text
/// #[apply]
/// impl Account {
///     fn opened(&mut self, event: &AccountOpened) { self.owner = event.owner.clone(); }
///     fn deposited(&mut self, event: &Deposited) { self.balance += event.amount; }
/// }
/// ```
///
/// * **Arguments**: none.
/// * **Rules**: each method's event must be `#[event(part_of = ThisAggregate)]`
///   (checked by the compiler); building the `Domain` reports an event of an
///   event-sourced aggregate that has no apply method.
#[proc_macro_attribute]
pub fn apply(args: TokenStream, item: TokenStream) -> TokenStream {
    apply::expand(args.into(), item.into()).into()
}

/// Declares a **projection**: a read model kept current by `#[projector]`s from events,
/// stored as rows keyed by one field, and read by handlers with `ctx.read`.
///
/// ```text
/// /// How much credit a customer has left.
/// #[projection]                              // or #[projection(version = 2)]
/// pub struct CustomerCreditView {
///     #[key]
///     pub customer_id: Identifier<Customer>, // keys the rows
///     #[index]
///     pub status: String,                    // queries filter and order on it
///     pub orders: u32,
/// }
/// ```
///
/// * **Arguments**: `version = N` (default 1): the version of its shape and projectors;
///   bump it to rebuild the projection from the event log.
/// * **`#[key]`**: on exactly one field, whose value (a `ProjectionKey`: an
///   `Identifier<T>`, a `String`, a number or a `Uuid`) keys the rows. Its type is the
///   projection's key type (`ReadModel::Key`): `ctx.read::<View>(&customer_id)`.
/// * **`#[index]`**: on the fields queries filter and order on (`Projection::INDEXED`),
///   of a type stores can compare (`Indexable`: a number, `String`, `bool`, `char`,
///   `Uuid`, `Identifier<T>`, a choice, or an `Option` of one; anything else does not
///   compile). Each gets a typed constant named after it, for queries:
///   `status` gives `CustomerCreditView::STATUS`, a `Field<CustomerCreditView, String>`
///   (`.filter(CustomerCreditView::STATUS.eq("open"))`).
/// * **Fields**: values, as in an event; no `#[field(..)]` options and no invariants: a
///   projection's rows are what its projectors make of events that already happened.
/// * **Generates**: `Clone`, `Debug`, `PartialEq`, serde's `Serialize`/`Deserialize`
///   (unless you derive them yourself), `ReadModel`, `Projection` (`VERSION`, `INDEXED`,
///   `key()`), the `Field` constants, and the registry descriptor. Its rustdoc page lists
///   the events feeding it (`FedBy<Event, Projector>`). Only its projectors change it: a
///   handler's `ctx.add(view)` does not compile.
#[proc_macro_attribute]
pub fn projection(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::Projection, args, item)
}

/// Declares a **projector**: an `impl` block whose `async fn`s take events of any
/// aggregate and change the rows of one `#[projection]`.
///
/// ```text
/// pub struct CreditProjector;
///
/// #[projector(projection = CustomerCreditView)]
/// impl CreditProjector {
///     /// Counts a customer's orders.
///     async fn placed(rows: &mut Rows<CustomerCreditView>, event: &OrderPlaced) -> Result<(), DomainError> {
///         rows.update(&event.customer_id, |view| view.orders += 1).await?;
///         Ok(())
///     }
/// }
/// ```
///
/// * **Arguments**: `projection = View`, required; `inline` to run the projector in the
///   unit of work that raises the event (committed with it, so the caller reads its own
///   writes) instead of after the commit, like an event handler (the default).
/// * **Methods**: every function of the block is a projector method: `async fn(rows:
///   &mut Rows<View>, event: &Event) -> Result<(), E>` where `E: Into<DomainError>`.
/// * **Rules the compiler checks**: the rows are `Rows<View>`; the message is an event
///   taken by reference; a projector loads no aggregate (`rows.load(..)` does not
///   compile): it builds its rows from events alone.
/// * **Generates**: a registration per method, and `FedBy<Event, Projector>` on the
///   projection, which rustdoc lists on the projection's, the event's and the
///   projector's pages.
#[proc_macro_attribute]
pub fn projector(args: TokenStream, item: TokenStream) -> TokenStream {
    projector::expand(args.into(), item.into()).into()
}

/// Declares a **process manager**: on a struct, the state of a flow across aggregates;
/// on an `impl` block of it, the steps that start and move the flow on, one per event.
///
/// ```text
/// #[process_manager(correlate = order_id)]   // the events' field holding a flow's key
/// pub struct Fulfilment {
///     pub order_id: Identifier<Order>,
///     pub stage: String,
/// }
///
/// #[process_manager]
/// impl Fulfilment {
///     // No `self`: starts a flow and returns its state.
///     async fn placed(ctx: &mut Flow<Self>, event: &OrderPlaced) -> Result<Self, DomainError> {
///         ctx.send(ReserveStock { order_id: event.order_id.clone() });
///         Ok(Fulfilment { order_id: event.order_id.clone(), stage: "reserving".into() })
///     }
///     // `&mut self`: moves a running flow on.
///     async fn reserved(&mut self, ctx: &mut Flow<Self>, event: &StockReserved) -> Result<(), DomainError> {
///         ctx.end();
///         Ok(())
///     }
///     #[correlate(order)]                      // this step's own correlation field
///     async fn paid(&mut self, ctx: &mut Flow<Self>, event: &PaymentTaken) -> Result<(), DomainError> {
///         Ok(())
///     }
/// }
/// ```
///
/// * **Arguments**: on the struct, `correlate = field` (optional when every step names
///   its own with `#[correlate(field)]`); on the `impl` block, none.
/// * **Fields**: values, as in an event; no `#[field(..)]` options and no invariants.
/// * **Steps**: `async fn(ctx: &mut Flow<Self>, event: &Event) -> Result<Self, E>`
///   starts a flow; `async fn(&mut self, ctx: &mut Flow<Self>, event: &Event) ->
///   Result<(), E>` moves one on; `E: Into<DomainError>`. A step acts only through its
///   flow context: it sends and schedules commands, and ends the flow.
/// * **Rules the compiler checks**: the context is `Flow<Self>`; the message is an event
///   taken by reference; a `#[correlate(field)]` names a field of the event; a step
///   without one has the struct's `correlate`, a field of its event; a process manager loads no aggregate
///   (`ctx.load(..)` does not compile).
/// * **Generates**: on the struct, the derives (as `#[projection]`), `ProcessManager`
///   and the registry descriptor; on the block, a registration per step and
///   `Handles<Event, Self>` on the struct, which rustdoc lists on its page and the
///   event's.
#[proc_macro_attribute]
pub fn process_manager(args: TokenStream, item: TokenStream) -> TokenStream {
    match syn::parse::<syn::Item>(item) {
        Ok(syn::Item::Impl(block)) => steps::expand(args.into(), quote::ToTokens::to_token_stream(&block)).into(),
        Ok(item) => run_item(Kind::ProcessManager, args, item),
        Err(e) => e.to_compile_error().into(),
    }
}
