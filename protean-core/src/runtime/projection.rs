//! Projections: read models that keep themselves current.
//!
//! `#[projection]` on a struct makes it a [`Projection`]: a read model with its own key,
//! stored as rows by the store and queried by key or by its declared (indexed) fields.
//! `#[projector(projection = V)]` on an impl block registers methods that take events of
//! any aggregate and change rows of `V` through [`Rows<V>`]:
//!
//! * an **async** projector (the default) is delivered like a handler, by the delivery
//!   workers (or inline, in [`DeliveryMode::Inline`](crate::runtime::DeliveryMode)): each
//!   update commits with its handled record, so every event has exactly one effect, in
//!   stream order;
//! * an **inline** projector (`#[projector(projection = V, inline)]`) runs in the unit of
//!   work that raised the event and commits in the same transaction, so the caller reads
//!   its own writes as soon as `process` returns; a failing inline projector rejects the
//!   unit of work ([`ProcessError::RejectedByProjector`], naming the command, the
//!   projector and the event).
//!
//! Either kind is rebuilt from the event log into a fresh copy while the old copy keeps
//! serving reads ([`Domain::rebuild`](crate::runtime::Domain::rebuild)).

use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::element::Event;
use crate::model::error::{DomainError, StoreError, VersionConflict};
use crate::model::identity::Identifier;
use crate::runtime::engine::{Engine, ProjectorRoute};
use crate::runtime::outcome::ProcessError;
use crate::runtime::read_model::{AsKey, ReadModel};
use crate::runtime::rows::{explained, RowSet};
use crate::store::envelope::Envelope;
use crate::store::{Batch, BoxFuture, Committed, Handled, ProjectionSpec, Row, RowChange};

/// A read model kept by projectors: what `#[projection]` implements.
///
/// Its rows are keyed by [`key`](Projection::key); queries may filter and order on the
/// fields in [`INDEXED`](Projection::INDEXED). When [`VERSION`](Projection::VERSION)
/// changes, the projection is rebuilt from the event log.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a projection",
    label = "a projector changes the rows of a `#[projection]`",
    note = "declare the read model with `#[projection]` and one `#[key]` field; an aggregate changes only through its own handlers"
)]
pub trait Projection: ReadModel + Clone + std::fmt::Debug {
    /// The version of its shape and projectors: bump it to rebuild.
    const VERSION: u32;
    /// The fields queries filter and order on (indexed by SQL stores), as declared.
    const INDEXED: &'static [&'static str];
    /// The keys the fields of [`INDEXED`](Self::INDEXED) are stored under in a row's
    /// JSON, in the same order: their names, unless serde renames them.
    const INDEXED_KEYS: &'static [&'static str] = Self::INDEXED;
    /// This row's key.
    fn key(&self) -> String;

    /// What a store needs to know of it.
    fn spec() -> ProjectionSpec {
        ProjectionSpec {
            name: Self::NAME.into(),
            version: Self::VERSION,
            indexed: Self::INDEXED_KEYS.iter().map(|f| std::borrow::Cow::Borrowed(*f)).collect(),
        }
    }
}

/// Something a projector may not load: every type. A projector builds its rows from
/// events alone.
#[diagnostic::on_unimplemented(
    message = "a projector cannot load `{Self}`: it builds its rows from events only",
    label = "projectors do not load aggregates",
    note = "put the data the projection needs in the events it takes, or keep it in this projection's rows (`rows.get`)",
    note = "a command handler that needs a projection reads it with `ctx.read`; a projection is never changed by a handler"
)]
pub trait LoadableInProjector {}

/// `Self` is the row set a projector of `V` receives: `Rows<V>`.
#[diagnostic::on_unimplemented(
    message = "a projector of `{V}` receives `&mut Rows<{V}>`, not `&mut {Self}`",
    label = "write `rows: &mut Rows<{V}>`",
    note = "a projector changes rows of the one projection it is for: the `projection = ..` it names"
)]
pub trait RowsOf<V: Projection> {}

impl<V: Projection> RowsOf<V> for Rows<V> {}

/// Marks a projection fed by events of type `E` through projector `Via`: `#[projector]`
/// implements it for each event a method takes. Rustdoc lists each impl on the
/// projection's page (the events feeding it), on the event's page (who reacts to it) and
/// on the projector's page (what it takes), like [`Handles`](crate::runtime::Handles).
pub trait FedBy<E: Event, Via: 'static>: Projection {}

/// The rows of projection `V` a projector method reads and changes. Changes are kept
/// until the projector's unit of work commits (with the event's handled record, or
/// with the events, for an inline projector).
pub struct Rows<V: Projection> {
    set: RowSet,
    _v: PhantomData<fn() -> V>,
}

impl<V: Projection> std::fmt::Debug for Rows<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows").field("projection", &V::NAME).field("set", &self.set).finish()
    }
}

fn to_json<V: Serialize>(row: &V) -> Result<Arc<str>, DomainError> {
    serde_json::to_string(row).map(Arc::from).map_err(|e| {
        DomainError::Store(StoreError::Serialize { what: "a projection row".into(), reason: e.to_string() })
    })
}

impl<V: Projection> Rows<V> {
    pub(crate) fn new(set: RowSet) -> Self {
        Rows { set, _v: PhantomData }
    }

    pub(crate) fn into_set(self) -> RowSet {
        self.set
    }

    /// The row under `key` (of `V`'s key type), if there is one. A row that does not
    /// read as `V` is [`StoreError::UnreadableRow`].
    pub async fn get(&mut self, key: &(impl AsKey<V::Key> + ?Sized)) -> Result<Option<V>, DomainError> {
        let key = key.key_text();
        let Some((json, version)) = self.set.versioned(key.clone()).await? else { return Ok(None) };
        match serde_json::from_str(&json) {
            Ok(row) => Ok(Some(row)),
            Err(error) => Err(self.set.explained(V::VERSION, unreadable(V::NAME, &key, version, &error)).await.into()),
        }
    }

    /// Writes `row` under its key, creating or replacing it.
    pub async fn put(&mut self, row: V) -> Result<(), DomainError> {
        let json = to_json(&row)?;
        self.set.set(row.key(), Some(json)).await?;
        Ok(())
    }

    /// Changes the row under `key` with `change`; `false` when there is none.
    pub async fn update(
        &mut self,
        key: &(impl AsKey<V::Key> + ?Sized),
        change: impl FnOnce(&mut V) + Send,
    ) -> Result<bool, DomainError> {
        let Some(mut row) = self.get(key).await? else { return Ok(false) };
        change(&mut row);
        self.set.set(key.key_text(), Some(to_json(&row)?)).await?;
        Ok(true)
    }

    /// Changes the row under `key` with `change`, first creating it with `new` when
    /// there is none.
    pub async fn upsert(
        &mut self,
        key: &(impl AsKey<V::Key> + ?Sized),
        new: impl FnOnce() -> V + Send,
        change: impl FnOnce(&mut V) + Send,
    ) -> Result<(), DomainError> {
        let mut row = match self.get(key).await? {
            Some(row) => row,
            None => new(),
        };
        change(&mut row);
        self.set.set(key.key_text(), Some(to_json(&row)?)).await?;
        Ok(())
    }

    /// Deletes the row under `key`; whether there was one.
    pub async fn delete(&mut self, key: &(impl AsKey<V::Key> + ?Sized)) -> Result<bool, DomainError> {
        let key = key.key_text();
        let existed = self.set.get(key.clone()).await?.is_some();
        self.set.set(key, None).await?;
        Ok(existed)
    }

    /// Refused at compile time: a projector does not load aggregates (see
    /// [`LoadableInProjector`]).
    pub fn load<T: LoadableInProjector>(&mut self, id: &Identifier<T>) -> Result<T, DomainError> {
        let _ = id;
        Err(DomainError::rule("a projector cannot load aggregates"))
    }
}

/// A projector method taking event `E` and changing rows of `V`. Implemented by
/// `#[projector]`.
pub trait Project<V: Projection, E: Event>: 'static {
    /// Calls the method.
    fn project<'a>(rows: &'a mut Rows<V>, event: &'a E) -> BoxFuture<'a, Result<(), DomainError>>;
}

/// Compile-time check that a projector method's first argument is `Rows<V>`.
pub const fn assert_rows_of<T: RowsOf<V>, V: Projection>() {}

/// The `ProjectRoute` of projector method `H`.
pub fn project<'a, V, E, H>(set: &'a mut RowSet, envelope: &'a Envelope) -> BoxFuture<'a, Result<(), ProcessError>>
where
    V: Projection,
    E: Event,
    H: Project<V, E>,
{
    Box::pin(async move {
        let event = envelope.event::<E>().map_err(ProcessError::Store)?;
        let mut rows = Rows::<V>::new(std::mem::take(set));
        let outcome = H::project(&mut rows, &event).await;
        *set = rows.into_set();
        outcome.map_err(|error| ProcessError::from_domain(E::TYPE_NAME, error))
    })
}

/// Delivers one stored event to an async projector: reads the projection's state,
/// applies the event to its serving copy (nothing while a rebuild runs: the rebuild
/// covers it), and commits the row changes with the handled record, again on a conflict.
pub(crate) async fn deliver_to_projector(
    engine: &Arc<Engine>,
    envelope: &Envelope,
    handler: &'static str,
    route: &ProjectorRoute,
) -> Result<Vec<Committed>, ProcessError> {
    let retries = engine.conflict_retries();
    let mut attempt = 0;
    loop {
        let state = engine.projection_state(route).await?;
        let mut set = RowSet::serving(Arc::clone(engine.store()), route.projection, state.generation);
        if state.build.is_none() {
            (route.apply)(&mut set, envelope).await?;
        }
        let delivered = if engine.handler_count(&envelope.type_name) == 1 { vec![envelope.id] } else { Vec::new() };
        let batch = Batch {
            handled: Some(Handled::event(handler, envelope.id)),
            delivered,
            rows: set.changes(),
            rows_from: Some(envelope.id),
            ..Batch::default()
        };
        match engine.store().commit(batch).await {
            Ok(committed) => return Ok(committed),
            Err(StoreError::AlreadyHandled { .. }) => return Ok(Vec::new()),
            Err(StoreError::Conflict(conflict)) if attempt < retries => {
                attempt += 1;
                engine.forget_projection_state(route.projection);
                conflicted(route.projection, &conflict, attempt);
            }
            Err(error) => return Err(ProcessError::from(error)),
        }
    }
}

fn conflicted(projection: &str, conflict: &VersionConflict, attempt: u32) {
    tracing::info!(
        projection,
        row = %conflict.stream,
        expected = conflict.expected,
        actual = conflict.actual,
        retry = attempt,
        "projection row changed meanwhile; applying the event again"
    );
}

/// The rows inline projectors change in one unit of work, per projection.
#[derive(Debug, Default)]
pub(crate) struct InlineRows {
    sets: Vec<RowSet>,
}

impl InlineRows {
    /// Applies `envelope` (an event raised in this unit) with every inline projector
    /// taking it. A projector's refusal refuses `message`, the unit's command (or the
    /// event its handler handles): [`ProcessError::RejectedByProjector`].
    pub(crate) async fn apply(
        &mut self,
        engine: &Arc<Engine>,
        envelope: &Envelope,
        message: &'static str,
    ) -> Result<(), ProcessError> {
        for (projector, route) in engine.inline_projectors(&envelope.type_name) {
            let index = match self.sets.iter().position(|s| s.name == route.projection) {
                Some(index) => index,
                None => {
                    let state = engine.projection_state(route).await?;
                    // While a rebuild runs the serving copy is left as it is; the rebuild
                    // covers this event once it commits. The store skips the changes too.
                    let set = RowSet::serving(Arc::clone(engine.store()), route.projection, state.generation);
                    self.sets.push(set);
                    self.sets.len() - 1
                }
            };
            (route.apply)(&mut self.sets[index], envelope).await.map_err(|error| match error {
                ProcessError::Rejected { error, .. } => {
                    ProcessError::RejectedByProjector { type_name: message, projector, error }
                }
                other => other,
            })?;
        }
        Ok(())
    }

    /// Every change, for the unit's batch.
    pub(crate) fn changes(self) -> Vec<RowChange> {
        self.sets.into_iter().flat_map(RowSet::changes).collect()
    }
}

/// Reads one projection row by key from the serving copy.
pub(crate) async fn read_row<V: DeserializeOwned>(
    engine: &Engine,
    name: &str,
    key: &str,
) -> Result<Option<V>, StoreError> {
    let Some(row) = engine.store().projection_row(name, None, key).await? else { return Ok(None) };
    read_as(engine, name, &row).await.map(Some)
}

/// A row of projection `name`, read as `V`; one that does not read is
/// [`StoreError::UnreadableRow`], explained when the serving copy is of another version
/// than this domain's projection declares.
pub(crate) async fn read_as<V: DeserializeOwned>(engine: &Engine, name: &str, row: &Row) -> Result<V, StoreError> {
    match serde_json::from_str(&row.json) {
        Ok(value) => Ok(value),
        Err(error) => {
            let declared = engine.projection(name).map(|entry| entry.spec.version);
            Err(explained(engine.store().as_ref(), declared, unreadable(name, &row.key, row.version, &error)).await)
        }
    }
}

/// Row `key` of projection `name`, at `version`, that serde could not read.
fn unreadable(name: &str, key: &str, version: u64, error: &serde_json::Error) -> StoreError {
    StoreError::UnreadableRow {
        projection: name.to_owned(),
        key: key.to_owned(),
        version,
        reason: error.to_string(),
        outdated: None,
    }
}
