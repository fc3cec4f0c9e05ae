//! The unit of work a handler runs in: [`Context<A>`].
//!
//! A context changes aggregates of one type, `A`, and the compiler holds it to that:
//! [`load`](Context::load), [`find`](Context::find), [`add`](Context::add) and
//! [`remove`](Context::remove) accept only `A` (through [`ChangedBy<A>`]). Data of other
//! aggregates is read through [`read`](Context::read) as a [`ReadModel`]: an owned copy,
//! never saved. Nothing reaches the store until the unit commits, and it commits only
//! when the handler returns `Ok`.

mod commit;
mod replay;

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use crate::model::element::Aggregate;
use crate::model::error::DomainError;
use crate::model::identity::Identifier;
use crate::runtime::engine::Engine;
use crate::runtime::outcome::ProcessError;
use crate::runtime::query::{record_read, Reads};
use crate::runtime::read_model::{AsKey, ReadModel};
use crate::store::envelope::{Cause, Envelope, StreamId};
use crate::store::{BoxFuture, Handled, RowRead, RowVersion, StoreError};
pub(crate) use replay::replayed;
use replay::Replay;

/// `Self` may be loaded, added or removed through a handler's `Context<A>`: only when
/// `Self` is `A`. This is how "one aggregate changes per transaction" is checked.
#[diagnostic::on_unimplemented(
    message = "a handler `part_of = {A}` cannot load, add or remove `{Self}`: one aggregate changes per transaction",
    label = "this is a `Context<{A}>`; it changes only `{A}`",
    note = "raise an event of `{A}` and handle it in a handler `#[handler(part_of = {Self})]`, which changes `{Self}` in its own transaction",
    note = "to only read another aggregate's data here, keep a read model of it (`impl ReadModel`) and use `ctx.read`",
    note = "a `#[projection]` is changed only by its `#[projector]`, from events; a handler reads it with `ctx.read`"
)]
pub trait ChangedBy<A: Aggregate>: Aggregate {
    #[doc(hidden)]
    fn into_changed(self) -> A;
    #[doc(hidden)]
    fn from_changed(changed: &mut A) -> &mut Self;
    #[doc(hidden)]
    fn changed_id(id: &Identifier<Self>) -> Identifier<A>;
}

impl<A: Aggregate> ChangedBy<A> for A {
    fn into_changed(self) -> A {
        self
    }
    fn from_changed(changed: &mut A) -> &mut Self {
        changed
    }
    fn changed_id(id: &Identifier<Self>) -> Identifier<A> {
        id.clone()
    }
}

/// `Self` is the context a handler `part_of = A` receives: `Context<A>`.
#[diagnostic::on_unimplemented(
    message = "a handler `part_of = {A}` receives `&mut Context<{A}>`, not `&mut {Self}`",
    label = "write `ctx: &mut Context<{A}>`",
    note = "the context is typed to the one aggregate the handler changes: the one it is `part_of`"
)]
pub trait ContextOf<A: Aggregate> {}

impl<A: Aggregate> ContextOf<A> for Context<A> {}

/// `Self` is the aggregate `A`: a command of `Self` may be handled by a handler `part_of = A`.
#[diagnostic::on_unimplemented(
    message = "a handler `part_of = {A}` cannot handle a command of `{Self}`: one aggregate changes per transaction",
    label = "this command changes `{Self}`, not `{A}`",
    note = "handle it in a `#[handler(part_of = {Self})]`",
    note = "to change `{Self}` when something happens to `{A}`, raise an event of `{A}` and handle it in a handler `#[handler(part_of = {Self})]`"
)]
pub trait SameAggregate<A: Aggregate> {}

impl<A: Aggregate> SameAggregate<A> for A {}

struct Tracked<A> {
    state: A,
    /// Where it is stored; `None` until needed for an aggregate added here.
    stream: Option<StreamId>,
    /// The JSON the aggregate was loaded from; `None` when it was added here.
    loaded: Option<Arc<str>>,
    /// The state as loaded, kept only when the aggregate has pre-invariants: they are
    /// evaluated on it when the unit commits a change.
    original: Option<A>,
    removed: bool,
}

impl<A: Aggregate> Tracked<A> {
    fn loaded(state: A, stream: StreamId, json: Arc<str>) -> Self {
        let original = A::HAS_PRE_INVARIANTS.then(|| state.clone());
        Tracked { state, stream: Some(stream), loaded: Some(json), original, removed: false }
    }
}

/// What [`Context::load_or_add`] found: the aggregate, and whether it was created.
/// It dereferences to the aggregate, so `ctx.load_or_add(..).await?.reserve(..)` reads
/// like a plain load.
#[derive(Debug)]
pub struct Opened<'a, T> {
    aggregate: &'a mut T,
    created: bool,
}

impl<'a, T> Opened<'a, T> {
    /// Whether the aggregate did not exist and was created (and added) by this call.
    pub fn created(&self) -> bool {
        self.created
    }

    /// The aggregate.
    pub fn into_mut(self) -> &'a mut T {
        self.aggregate
    }
}

impl<T> std::ops::Deref for Opened<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.aggregate
    }
}

impl<T> std::ops::DerefMut for Opened<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.aggregate
    }
}

/// Stored data that breaks the element's own field options or post-invariants is corrupt:
/// it could never have been written by a unit of work that checked it.
fn checked<A: Aggregate>(state: A, stream: &StreamId, position: u64) -> Result<A, StoreError> {
    state.validate().map_err(|e| {
        StoreError::corrupt(stream, position, format!("the stored `{}` breaks its rules: {e}", A::NAME))
    })?;
    Ok(state)
}

/// The unit of work of one handler call, typed to the one aggregate it may change.
///
/// Loading an aggregate twice gives the same instance (an identity map); every
/// aggregate loaded or added is saved when the unit commits, if it changed, after its
/// invariants are checked. Usually a unit changes one aggregate; when it changes several
/// of type `A` (an inventory handler reserving one SKU per order line, as in the
/// articles), they are committed together, all or nothing.
pub struct Context<A: Aggregate> {
    engine: Arc<Engine>,
    cause: Cause,
    message: &'static str,
    /// The event and handler this unit handles, recorded when it commits.
    handled: Option<Handled>,
    /// Events to mark delivered when it commits.
    delivered: Vec<uuid::Uuid>,
    /// An idempotent command's reply as JSON: its id is recorded with it when it commits.
    reply: Option<String>,
    tracked: Vec<Tracked<A>>,
    /// What it read of projections kept inline, checked when it commits; made on the
    /// first such read, so a unit that reads none pays nothing.
    reads: OnceLock<Reads>,
}

impl<A: Aggregate> std::fmt::Debug for Context<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("aggregate", &A::NAME)
            .field("message", &self.message)
            .field("cause", &self.cause)
            .field("tracked", &self.tracked.iter().map(|t| t.state.id().to_string()).collect::<Vec<_>>())
            .finish()
    }
}

/// A value serde could not write, as the error of the commit that needed it.
fn unserializable(what: impl std::fmt::Display, error: serde_json::Error) -> ProcessError {
    ProcessError::Store(StoreError::Serialize { what: what.to_string(), reason: error.to_string() })
}

/// The record of an event-sourced aggregate marks the head of its stream (its version);
/// the state is in the events and snapshots.
pub(crate) const EVENT_SOURCED_HEAD: &str = "null";

/// A read model by key, from `engine`'s store.
pub(crate) async fn read_model<V: ReadModel>(engine: &Engine, key: &str) -> Result<Option<V>, StoreError> {
    if V::PROJECTED {
        return crate::runtime::projection::read_row::<V>(engine, V::NAME, key).await;
    }
    let Some(json) = engine.store().read_model(V::NAME, key).await? else { return Ok(None) };
    let stream = StreamId::new(V::NAME, key);
    serde_json::from_str(&json).map(Some).map_err(|e| StoreError::corrupt(&stream, 0, e.to_string()))
}

pub(crate) fn stream_of<A: Aggregate>(id: &Identifier<A>) -> StreamId {
    StreamId::new(A::NAME, id.to_shared_str())
}

impl<A: Aggregate> Context<A> {
    pub(crate) fn new(engine: Arc<Engine>, cause: Cause, message: &'static str) -> Self {
        Context {
            engine,
            cause,
            message,
            handled: None,
            delivered: Vec::new(),
            reply: None,
            tracked: Vec::new(),
            reads: OnceLock::new(),
        }
    }

    /// Makes this command's unit of work record its id, with `reply` (as JSON), when it
    /// commits: a copy of the command is then refused and handed the first outcome.
    pub(crate) fn record_command(&mut self, reply: String) {
        self.reply = Some(reply);
    }

    /// A unit of work of `handler` handling the event `envelope`: the pair is recorded
    /// when it commits, so a redelivered event is not handled twice.
    pub(crate) fn handling(
        engine: Arc<Engine>,
        envelope: &Envelope,
        message: &'static str,
        handler: &'static str,
    ) -> Self {
        let handled = Handled::event(Cow::Borrowed(handler), envelope.id);
        // Its only handler taking it is the event's delivery: marked in the same transaction.
        let delivered = if engine.handler_count(&envelope.type_name) == 1 { vec![envelope.id] } else { Vec::new() };
        Context {
            engine,
            cause: Cause::event(envelope),
            message,
            handled: Some(handled),
            delivered,
            reply: None,
            tracked: Vec::new(),
            reads: OnceLock::new(),
        }
    }

    /// Why this unit of work runs: the command or event being handled and the
    /// conversation it belongs to. Events raised here carry these ids.
    pub fn cause(&self) -> Cause {
        self.cause
    }

    fn position(&self, id: &Identifier<A>) -> Option<usize> {
        self.tracked.iter().position(|t| t.state.id() == id)
    }

    // `load`, `find`, `load_or_add`, `remove` and `read` return a boxed future rather than
    // being `async fn`s: an `async fn`'s future carries the `ChangedBy`/`ReadModel` bound,
    // so a handler touching another aggregate would get the same error three times (at
    // the argument, the call and the `.await`); this way it gets one.
    //
    // Their futures do not borrow the identity (they copy it, a reference count, before
    // they start): the aggregate they return borrows the context only, so the command
    // the identity came from can be moved while the aggregate is in use.

    /// The aggregate with this identity, loaded once per unit of work; a
    /// [`DomainError::NotFound`] when there is none.
    ///
    /// The aggregate borrows the context, not `id`: the message holding the identity can
    /// be moved while the aggregate is in use.
    ///
    /// ```no_run
    /// # extern crate protean_core as protean;
    /// # use protean::runtime::Context;
    /// # use protean::model::{Aggregate, DomainError, Identifier};
    /// # struct Renamed<A> { id: Identifier<A>, name: String }
    /// # fn rename<A: Aggregate>(_: &mut A, _: Identifier<A>, _: String) {}
    /// # async fn demo<A: Aggregate>(ctx: &mut Context<A>, command: Renamed<A>) -> Result<(), DomainError> {
    /// let aggregate = ctx.load(&command.id).await?;
    /// rename(aggregate, command.id, command.name); // `command.id` moves; `aggregate` is still usable
    /// # Ok(()) }
    /// ```
    pub fn load<'a, T: ChangedBy<A>>(
        &'a mut self,
        id: &Identifier<T>,
    ) -> BoxFuture<'a, Result<&'a mut T, DomainError>> {
        let id = T::changed_id(id);
        Box::pin(async move {
            match self.track(&id).await? {
                Some(index) => Ok(T::from_changed(&mut self.tracked[index].state)),
                None => Err(DomainError::NotFound { kind: A::NAME, id: id.to_string() }),
            }
        })
    }

    /// The aggregate with this identity, if it exists (and was not removed in this unit).
    /// Like [`load`](Self::load), it borrows the context, not `id`.
    pub fn find<'a, T: ChangedBy<A>>(
        &'a mut self,
        id: &Identifier<T>,
    ) -> BoxFuture<'a, Result<Option<&'a mut T>, DomainError>> {
        let id = T::changed_id(id);
        Box::pin(async move {
            let index = self.track(&id).await?;
            Ok(index.map(|index| T::from_changed(&mut self.tracked[index].state)))
        })
    }

    /// Where the aggregate with this identity is tracked, loading it on first use;
    /// `None` when there is none (or it was removed in this unit).
    async fn track(&mut self, id: &Identifier<A>) -> Result<Option<usize>, DomainError> {
        let index = match self.position(id) {
            Some(index) => index,
            None => {
                let Some(state) = self.fetch(id).await? else { return Ok(None) };
                self.tracked.push(state);
                self.tracked.len() - 1
            }
        };
        Ok((!self.tracked[index].removed).then_some(index))
    }

    async fn fetch(&self, id: &Identifier<A>) -> Result<Option<Tracked<A>>, StoreError> {
        let stream = stream_of(id);
        let Some(record) = self.engine.store().load(&stream).await? else { return Ok(None) };
        if A::EVENT_SOURCED {
            // Through the aggregate, so that only an event-sourced one compiles the replay.
            let Replay(replay) = A::__replay::<Replay<A>>()
                .ok_or_else(|| StoreError::corrupt(&stream, 0, format!("`{}` is not event-sourced", A::NAME)))?;
            let mut state = replay(self.engine.store().as_ref(), &stream, id).await?;
            state.__meta_mut().version = record.version;
            let state = checked(state, &stream, record.version)?;
            return Ok(Some(Tracked::loaded(state, stream, record.state)));
        }
        let mut state: A = serde_json::from_str(&record.state)
            .map_err(|e| StoreError::corrupt(&stream, record.version, format!("not a valid `{}`: {e}", A::NAME)))?;
        if state.id() != id {
            return Err(StoreError::corrupt(&stream, record.version, format!("the record holds `{}`", state.id())));
        }
        state.__meta_mut().version = record.version;
        let state = checked(state, &stream, record.version)?;
        Ok(Some(Tracked::loaded(state, stream, record.state)))
    }

    /// Adds a new aggregate; it is saved when the unit commits. Adding an identity that
    /// already exists in the store is a version conflict at commit.
    pub fn add<T: ChangedBy<A>>(&mut self, aggregate: T) -> Result<&mut T, DomainError> {
        let mut aggregate = aggregate.into_changed();
        let mut replaced = None;
        if let Some(index) = self.position(aggregate.id()) {
            if !self.tracked[index].removed {
                return Err(DomainError::rule(format!(
                    "{} `{}` is already part of this unit of work",
                    A::NAME,
                    aggregate.id()
                )));
            }
            replaced = Some(self.tracked.remove(index));
        }
        // Removed and added again in one unit: one write over the stored record, at its
        // version. It is a new aggregate (no pre-invariants of the removed one apply).
        let (stream, loaded) = match replaced {
            Some(old) if old.loaded.is_some() => {
                aggregate.__meta_mut().version = old.state.__meta().version;
                (old.stream, old.loaded)
            }
            _ => (None, None),
        };
        self.tracked.push(Tracked { state: aggregate, stream, loaded, original: None, removed: false });
        let last = self.tracked.len() - 1;
        Ok(T::from_changed(&mut self.tracked[last].state))
    }

    /// The aggregate with this identity, or the one `create` makes when there is none
    /// (added to this unit of work); [`Opened::created`] says which. `create` runs only
    /// when needed.
    ///
    /// An event-sourced aggregate opens on its first event in one call:
    /// `let mut account = ctx.load_or_add(&id, || Ok(Account::blank(id.clone()))).await?;`
    /// then `if account.created() { account.raise(AccountOpened { .. }) }`.
    pub fn load_or_add<'a, T, F>(
        &'a mut self,
        id: &Identifier<T>,
        create: F,
    ) -> BoxFuture<'a, Result<Opened<'a, T>, DomainError>>
    where
        T: ChangedBy<A>,
        F: FnOnce() -> Result<T, DomainError> + Send + 'a,
    {
        let id = T::changed_id(id);
        Box::pin(async move {
            match self.track(&id).await? {
                Some(index) => {
                    Ok(Opened { aggregate: T::from_changed(&mut self.tracked[index].state), created: false })
                }
                None => Ok(Opened { aggregate: self.add(create()?)?, created: true }),
            }
        })
    }

    /// Removes the aggregate with this identity when the unit commits.
    ///
    /// An event-sourced aggregate is not removed (its events are its history): raise an
    /// event that closes it instead; removing one is refused.
    pub fn remove<'a, T: ChangedBy<A>>(&'a mut self, id: &Identifier<T>) -> BoxFuture<'a, Result<(), DomainError>> {
        let id = T::changed_id(id);
        Box::pin(async move {
            if A::EVENT_SOURCED {
                return Err(DomainError::rule(format!(
                    "{} is event-sourced: its history is not removed; raise an event that closes it",
                    A::NAME
                )));
            }
            let Some(index) = self.track(&id).await? else {
                return Err(DomainError::NotFound { kind: A::NAME, id: id.to_string() });
            };
            self.tracked[index].removed = true;
            Ok(())
        })
    }

    /// A read model by key: an owned copy, for reading only. `Ok(None)` when absent.
    ///
    /// # Deciding on what is read
    ///
    /// When `V` is a `#[projection]` kept by an **inline** projector, the row read (or
    /// its absence) is remembered, and the unit's commit checks it inside the commit's
    /// transaction: if another unit of work changed that row (or created it) meanwhile,
    /// the commit fails with a version conflict and the handler runs again, in a fresh
    /// unit of work, on the new row. So a limit decided on an inline projection holds
    /// under concurrency (two orders racing for one customer's credit: the second runs
    /// again and sees the first). No lock is held while the handler runs.
    ///
    /// A projection kept by an **async** projector is updated after the commits of its
    /// events, by the delivery workers: a decision on it can be stale, whatever this
    /// unit checks, and is not checked. Decide on an inline projection, or on the
    /// aggregate itself, when the rule must hold; or compensate after the fact (a
    /// handler of the resulting event that detects the breach and raises the event that
    /// undoes it). A hand-written [`ReadModel`] (not a projection) has no versions and is
    /// not checked either.
    ///
    /// `key` has the read model's key type ([`ReadModel::Key`]; a projection's `#[key]`
    /// field's): `ctx.read::<LoanView>(&cmd.loan_id)`. Like [`load`](Self::load), the
    /// future does not hold `key`'s borrow.
    pub fn read<'a, V: ReadModel>(
        &'a self,
        key: &(impl AsKey<V::Key> + ?Sized),
    ) -> BoxFuture<'a, Result<Option<V>, DomainError>> {
        let key = key.key_text();
        Box::pin(async move {
            let key = key.as_str();
            if V::PROJECTED && self.engine.checks_reads_of(V::NAME) {
                let row = self.engine.store.projection_row(V::NAME, None, key).await?;
                let found = row.as_ref().map(RowVersion::of);
                record_read(self.reads(), RowRead::Key { projection: V::NAME.into(), key: key.to_owned(), found });
                let Some(row) = row else { return Ok(None) };
                return Ok(Some(crate::runtime::projection::read_as::<V>(&self.engine, V::NAME, &row).await?));
            }
            read_model::<V>(&self.engine, key).await.map_err(DomainError::from)
        })
    }

    /// A query over the rows of projection `V`, executed by the store; see
    /// [`Query`](crate::runtime::Query). Like [`read`](Self::read), the rows a query of
    /// an inline projection returned are checked when the unit commits: when running it
    /// again would give other rows (one changed, appeared or went), the commit fails with
    /// a version conflict and the handler runs again. It returns at most 1,000 rows unless
    /// [`Query::limit`](crate::runtime::Query::limit) says otherwise.
    ///
    /// ```text
    /// let open_loans = ctx
    ///     .query::<LoanView>()
    ///     .filter(LoanView::MEMBER_ID.eq(&cmd.member_id))
    ///     .filter(LoanView::OPEN.eq(true))
    ///     .fetch()
    ///     .await?;
    /// ```
    pub fn query<V: crate::runtime::Projection>(&self) -> crate::runtime::Query<V, DomainError> {
        let reads = self.engine.checks_reads_of(V::NAME).then(|| Arc::clone(self.reads()));
        crate::runtime::query::query_of::<V, DomainError>(Arc::clone(&self.engine), reads)
    }

    fn reads(&self) -> &Reads {
        self.reads.get_or_init(Reads::default)
    }
}
