//! The kinds of domain element and the traits the macros implement for them.
//!
//! The boundary rules live here as traits that the compiler checks: an aggregate
//! raises only events that are [`EventOf`] it, an entity is [`EntityOf`] exactly one
//! parent, and the `Raises`/`Accepts`/`Contains` impls let rustdoc show each
//! aggregate's cluster on its own page.

mod raised;

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::error::DomainError;
use crate::model::identity::Identifiable;
use crate::model::validation::{Path, Phase, Validate, ValidationError};
use raised::{in_raise_order, refs_in_raise_order};
pub use raised::{EntityEvents, RaisedEvent};

/// What a domain element is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementKind {
    /// An aggregate root: the unit of consistency and of persistence.
    Aggregate,
    /// An entity inside an aggregate cluster, with an identity of its own.
    Entity,
    /// A value object: no identity, compared by value, immutable.
    ValueObject,
    /// A request to change one aggregate.
    Command,
    /// A fact raised by one aggregate.
    Event,
    /// A read model kept by projectors from events (`#[projection]`).
    Projection,
    /// The state of a flow across aggregates, moved on by events (`#[process_manager]`).
    ProcessManager,
}

impl ElementKind {
    /// The kind in words, as the model pictures label it: `"aggregate"`, `"value object"`, …
    pub const fn label(self) -> &'static str {
        match self {
            ElementKind::Aggregate => "aggregate",
            ElementKind::Entity => "entity",
            ElementKind::ValueObject => "value object",
            ElementKind::Command => "command",
            ElementKind::Event => "event",
            ElementKind::Projection => "projection",
            ElementKind::ProcessManager => "process manager",
        }
    }
}

/// Implemented by every type declared with protean's macros.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a domain element",
    label = "not declared with a protean macro",
    note = "declare it with `#[aggregate]`, `#[entity(part_of = ..)]`, `#[value_object]`, `#[command(part_of = ..)]` or `#[event(part_of = ..)]`"
)]
pub trait DomainElement: 'static {
    /// The type's name, as written (`"OrderItem"`).
    const NAME: &'static str;
    /// What kind of element it is.
    const KIND: ElementKind;
    /// `module::path::Name`: unique in a program, used to compare elements in const checks.
    const KEY: &'static str;
    /// The [`KEY`](Self::KEY) of the element named by `part_of`; `""` for aggregates and value objects.
    const PARENT_KEY: &'static str = "";
    /// The aggregate whose cluster this element is in: itself for an aggregate, the
    /// aggregate at the end of the `part_of` chain for an entity, and [`NoCluster`] for
    /// value objects, commands, events, projections and process managers.
    type Root: 'static;
}

/// The [`DomainElement::Root`] of elements outside any cluster: value objects, commands,
/// events, projections and process managers. It is not an aggregate, so nothing is raised or loaded through it.
#[derive(Debug, Clone, Copy)]
pub enum NoCluster {}

/// An aggregate that is not event-sourced: its state is stored as it is, so its entities
/// may raise events (an event-sourced aggregate changes only through its apply methods).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is event-sourced: its entities do not raise events",
    label = "an entity of an event-sourced aggregate",
    note = "raise the event from the root `{Self}` and change the entity in the root's `#[apply]` method for it"
)]
pub trait StateStored: Aggregate {}

/// An aggregate root: the consistency boundary, loaded and saved as a whole.
///
/// Implemented by `#[aggregate]`. Change an aggregate through its own methods; wrap a
/// change in [`Aggregate::change`] to have its invariants checked before and after,
/// with the aggregate left untouched when they fail.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an aggregate",
    label = "not an `#[aggregate]`",
    note = "`part_of` of a command names the aggregate it changes, and of an event the aggregate that raises it",
    note = "name that aggregate, or declare `{Self}` with `#[aggregate]`"
)]
pub trait Aggregate:
    DomainElement + Identifiable + Validate + ClusterEvents + Clone + Debug + Serialize + DeserializeOwned + Send + Sync
{
    #[doc(hidden)]
    fn __meta(&self) -> &AggregateMeta;
    #[doc(hidden)]
    fn __meta_mut(&mut self) -> &mut AggregateMeta;

    /// Whether the aggregate is event-sourced (`#[aggregate(event_sourced)]`): its events
    /// are its state, applied as they are raised and replayed when it is loaded.
    const EVENT_SOURCED: bool = false;

    #[doc(hidden)]
    fn __apply(&mut self, event: &RaisedEvent) {
        let _ = event;
    }

    #[doc(hidden)]
    fn __blank(id: &crate::model::identity::Identifier<Self>) -> Option<Self>
    where
        Self: Sized,
    {
        let _ = id;
        None
    }

    /// How an event-sourced aggregate is rebuilt from its stream (by the runtime's
    /// `R`); `None` for any other. Written by `#[aggregate(event_sourced)]` only, so that
    /// a unit of work of a state-stored aggregate does not compile the replay.
    #[doc(hidden)]
    fn __replay<R: Replayer<Self>>() -> Option<R>
    where
        Self: Sized,
    {
        None
    }

    /// Records a domain event raised by this aggregate; it is handed out once by
    /// [`take_events`](Self::take_events) (the unit of work does this when it commits).
    ///
    /// Only events declared `#[event(part_of = ThisAggregate)]` compile here.
    fn raise<E>(&mut self, event: E)
    where
        E: EventOf<Self>,
        Self: Sized,
    {
        let raised = RaisedEvent::new(event);
        if Self::EVENT_SOURCED {
            // An event-sourced aggregate changes only by applying its events.
            self.__apply(&raised);
        }
        self.__meta_mut().events.push(raised);
    }

    /// The events raised by the root and its entities since they were last taken, in
    /// raise order.
    fn pending_events(&self) -> Vec<&RaisedEvent> {
        let mut events: Vec<&RaisedEvent> = self.__meta().events.iter().collect();
        let own = events.len();
        self.raised_in(&mut events);
        if events.len() > own {
            refs_in_raise_order(&mut events);
        }
        events
    }

    /// Hands out the events raised by the root and its entities, in raise order, leaving
    /// none behind.
    fn take_events(&mut self) -> Vec<RaisedEvent> {
        let mut events = std::mem::take(&mut self.__meta_mut().events);
        let own = events.len();
        self.take_raised_in(&mut events);
        if events.len() > own {
            in_raise_order(&mut events);
        }
        events
    }

    /// The version of this aggregate: 0 for a new one. A state-stored aggregate's version
    /// counts its commits. An event-sourced aggregate's counts its events, the ones raised
    /// and not yet committed included, so it is the same live and reloaded. Stores use
    /// the version the aggregate was loaded at for optimistic concurrency.
    fn version(&self) -> u64 {
        let meta = self.__meta();
        if Self::EVENT_SOURCED {
            meta.version + meta.events.len() as u64
        } else {
            meta.version
        }
    }

    /// Field options and invariants of the given phase, of the root and every entity it holds.
    fn check(&self, phase: Phase) -> Result<(), ValidationError> {
        let mut errors = ValidationError::default();
        if phase == Phase::Post {
            self.validate_fields(&Path::Root, &mut errors);
        }
        self.check_invariants(phase, &Path::Root, &mut errors);
        errors.into_result()
    }

    /// Applies a change atomically: checks the `pre` invariants, runs `change`, then
    /// checks field options and the `post` invariants. When any of these fails (or the
    /// closure returns an error) the aggregate, its raised events included, is left
    /// exactly as it was.
    fn change<R, F>(&mut self, change: F) -> Result<R, DomainError>
    where
        Self: Sized,
        F: FnOnce(&mut Self) -> Result<R, DomainError>,
    {
        self.check(Phase::Pre)?;
        let before = self.clone();
        let outcome = change(self).and_then(|r| self.check(Phase::Post).map(|()| r).map_err(DomainError::from));
        if outcome.is_err() {
            *self = before;
        }
        outcome
    }
}

/// How the runtime rebuilds an event-sourced aggregate `A`: handed out by
/// [`Aggregate::__replay`] for an event-sourced aggregate only.
#[doc(hidden)]
pub trait Replayer<A>: Sized {
    /// The replayer of `A`.
    fn of_aggregate() -> Self;
}

/// An entity: identity of its own, lives inside one aggregate cluster.
///
/// Implemented by `#[entity(part_of = Parent)]`.
pub trait Entity:
    DomainElement + Identifiable + Validate + ClusterEvents + Clone + Debug + Serialize + DeserializeOwned + Send + Sync
{
    /// The aggregate (or entity of it) this entity belongs to.
    type Parent: DomainElement;

    #[doc(hidden)]
    fn __events_mut(&mut self) -> &mut EntityEvents;

    /// Records a domain event of this entity's aggregate. It is handed out with the
    /// root's events, in raise order, by [`Aggregate::take_events`] (the unit of work
    /// does this when it commits), and delivered like them.
    ///
    /// Only events declared `#[event(part_of = TheAggregate)]` compile here, and only in
    /// an aggregate that is not event-sourced.
    fn raise<E>(&mut self, event: E)
    where
        E: EventOf<Self::Root>,
        Self::Root: StateStored,
        Self: Sized,
    {
        self.__events_mut().push(RaisedEvent::new(event));
    }
}

/// The events raised inside a cluster, below its root: what [`Aggregate::pending_events`]
/// and [`Aggregate::take_events`] gather. Implemented by the macros.
#[doc(hidden)]
pub trait ClusterEvents {
    /// Adds the events raised by this entity (not by an aggregate root, which keeps its
    /// own) and by the entities it holds.
    fn raised_in<'a>(&'a self, out: &mut Vec<&'a RaisedEvent>);
    /// Moves them into `out`.
    fn take_raised_in(&mut self, out: &mut Vec<RaisedEvent>);
}

/// A value object: no identity, compared by value, immutable through its public API.
///
/// Implemented by `#[value_object]`.
pub trait ValueObject:
    DomainElement + Validate + Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync
{
}

/// A unit-variant enum declared with `#[value_object]`: a closed set of choices.
pub trait Choices: ValueObject + Copy {
    /// Every choice, as stored (the variant names).
    const CHOICES: &'static [&'static str];
    /// This value's choice, as stored.
    fn as_str(&self) -> &'static str;
}

/// A request to change one aggregate; declared `#[command(part_of = Aggregate)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a command",
    label = "not declared `#[command(part_of = ..)]`",
    note = "a handler method takes a command by value and an event by reference: if `{Self}` is an event, take it as `event: &{Self}`"
)]
pub trait Command: DomainElement + Validate + Clone + Debug + Serialize + DeserializeOwned + Send + Sync {
    /// The aggregate this command changes.
    type Aggregate: Aggregate;
    /// A stable name that survives moving or renaming the Rust type (`"Order.PlaceOrder"`).
    const TYPE_NAME: &'static str;
    /// The schema version of this command.
    const VERSION: u32;
    /// What the command's handler hands back to the caller of
    /// [`Domain::process`](crate::runtime::Domain::process), in
    /// [`Processed::reply`](crate::runtime::Processed::reply): `()` unless declared with
    /// `#[command(part_of = User, returns = Identifier<User>)]`.
    type Reply: Reply;
}

/// What a command's handler may hand back: an owned value that can cross threads, and
/// that serde can write and read (a command processed with an id keeps its reply, to
/// hand it back to a copy of the command).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a command's reply",
    label = "not an owned, serializable value that can be sent between threads",
    note = "a reply is handed back by `domain.process(..)` after the commit, and kept (as JSON) for a copy of the \
            command: an owned `Send + 'static` value with serde's `Serialize` and `Deserialize`, such as an \
            identity, a number, a `String` or a struct of yours deriving them; not a reference, an `Rc` or a `RefCell`"
)]
pub trait Reply: serde::Serialize + serde::de::DeserializeOwned + Send + 'static {}

impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static> Reply for T {}

/// A handler of `Self` returns `Result<R, _>`: `R` must be the reply the command declares.
#[diagnostic::on_unimplemented(
    message = "a handler of `{Self}` returns `Result<{R}, _>`, but `{Self}` does not declare `returns = {R}`",
    label = "the reply the command does not declare",
    note = "a command handler returns `Result<(), E>`, or `Result<T, E>` when the command is declared \
            `#[command(part_of = .., returns = T)]`; `domain.process(command)` hands `T` back in `Processed::reply`"
)]
pub trait Returns<R>: Command {
    /// The handler's value as the command's reply. (`#[command]` implements this trait
    /// for the one reply the command declares.)
    fn into_reply(reply: R) -> Self::Reply;
}

/// An event handler returns `Result<(), E>`: an event is shared by its handlers, and no
/// one waits for an answer.
#[diagnostic::on_unimplemented(
    message = "an event handler returns `Result<(), E>`, not `Result<{Self}, E>`",
    label = "an event is shared by all its handlers, and nobody waits for a reply",
    note = "return `Ok(())`; to hand a value back to a caller, handle a command declared `#[command(part_of = .., returns = T)]`"
)]
pub trait NoReply {}

impl NoReply for () {}

/// A fact raised by one aggregate; declared `#[event(part_of = Aggregate)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event",
    label = "not declared `#[event(part_of = ..)]`",
    note = "a handler method takes an event by reference and a command by value: if `{Self}` is a command, take it as `command: {Self}`"
)]
pub trait Event: DomainElement + Validate + Clone + Debug + Serialize + DeserializeOwned + Send + Sync {
    /// The aggregate that raises this event.
    type Aggregate: Aggregate;
    /// A stable name that survives moving or renaming the Rust type (`"Order.OrderPlaced"`).
    const TYPE_NAME: &'static str;
    /// The schema version of this event (`#[event(part_of = Order, version = 2)]`).
    const VERSION: u32;

    /// Brings a payload stored by an older version of this event (`from_version`) up to
    /// [`VERSION`](Self::VERSION). Declared with `#[event(.., version = 2, upcast = f)]`,
    /// where `f(from_version: u32, payload: serde_json::Value) -> Result<serde_json::Value, String>`;
    /// without it, older payloads are refused with a typed error.
    fn upcast(from_version: u32, payload: serde_json::Value) -> Result<serde_json::Value, String> {
        let _ = payload;
        Err(format!(
            "no upcaster from version {from_version} to version {}: declare `#[event(.., upcast = function)]`",
            Self::VERSION
        ))
    }
}

/// `Self` is an event raised by aggregate `A`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event of `{A}`: an aggregate raises only its own events",
    label = "not declared `#[event(part_of = {A})]`",
    note = "raise `{Self}` from the aggregate it is `part_of`, or declare an event `#[event(part_of = {A})]` for what happened to `{A}`",
    note = "to change another aggregate in reaction, raise an event of `{A}` and let a handler of the other aggregate react to it: one aggregate changes per transaction"
)]
pub trait EventOf<A>: Event<Aggregate = A> {}

/// `Self` is a command that changes aggregate `A`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a command of `{A}`",
    label = "not declared `#[command(part_of = {A})]`",
    note = "a command changes exactly one aggregate: the one it is `part_of`"
)]
pub trait CommandOf<A>: Command<Aggregate = A> {}

/// `Self` is an entity held directly by `P` (an aggregate or an entity of one).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an entity of `{P}`",
    label = "not declared `#[entity(part_of = {P})]`"
)]
pub trait EntityOf<P: DomainElement>: Entity<Parent = P> {}

/// Lists, on the aggregate's documentation page, each event it raises, and on each
/// event's page the aggregate raising it. (Rustdoc shows a trait impl on the pages of the
/// types in its parameters too; the macros hide the `EventOf` impls, which would list
/// the same facts under one name repeated.)
pub trait Raises<E: Event> {}

/// Lists, on the aggregate's documentation page, each command it accepts, and on each
/// command's page the aggregate it changes.
pub trait Accepts<C: Command> {}

/// Lists, on an aggregate's or entity's documentation page, each entity it holds, and
/// on each entity's page what holds it.
pub trait Contains<E: Entity> {}

/// The metadata the framework keeps beside an aggregate's state: its version and the
/// events raised but not yet handed out. Not part of equality or serialization.
#[derive(Clone, Default)]
pub struct AggregateMeta {
    /// The version the aggregate was loaded at (0 when new).
    pub version: u64,
    /// The sequence of the last stored event it reflects (event-sourced aggregates).
    pub sequence: u64,
    /// Raised, not yet taken.
    pub events: Vec<RaisedEvent>,
}

impl PartialEq for AggregateMeta {
    /// Metadata never makes two aggregates unequal: equality is about state.
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Debug for AggregateMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregateMeta")
            .field("version", &self.version)
            .field("pending_events", &self.events.len())
            .finish()
    }
}

/// Compares two `&'static str` in a const context (the macros' boundary checks use it).
pub const fn const_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `Self` changes by applying `E`. Implemented by `#[apply]`, one method per event.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no apply method for `{E}`",
    label = "an event-sourced aggregate changes only by applying its events",
    note = "add `fn(&mut self, event: &{E})` to an `#[apply] impl {Self}` block"
)]
pub trait Apply<E: EventOf<Self>>: Aggregate {
    /// Changes the state as the event says. It cannot fail: the event already happened.
    fn apply(&mut self, event: &E);
}
