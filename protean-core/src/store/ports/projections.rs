//! The [`Projections`] port: projection rows, queries on them, blue/green rebuilds, and
//! read models kept by key.

use std::time::Duration;

use crate::store::{BoxFuture, BuildState, ProjectionSpec, ProjectionState, Row, RowQuery, StoreError};

/// Projection rows (versioned, queried by the store), their blue/green rebuilds, and
/// read models kept as JSON by name and key.
pub trait Projections: Send + Sync + 'static {
    /// Makes sure the store keeps `spec`'s projection: creates its state (serving copy
    /// 1, at `spec.version`, never built) when missing, and the indexes its declared
    /// fields need. Returns where it stands; a stored version other than `spec.version`
    /// is left for a rebuild to change.
    fn register_projection(&self, spec: ProjectionSpec) -> BoxFuture<'_, Result<ProjectionState, StoreError>>;

    /// Where a projection stands, if the store keeps it.
    fn projection_state<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<ProjectionState>, StoreError>>;

    /// One row of a projection: of the serving copy when `generation` is `None`.
    fn projection_row<'a>(
        &'a self,
        name: &'a str,
        generation: Option<u64>,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Row>, StoreError>>;

    /// The rows of a projection's serving copy that match `query`, executed by the
    /// store (SQL stores use the indexes of the declared fields).
    fn query_projection(&self, query: RowQuery) -> BoxFuture<'_, Result<Vec<Row>, StoreError>>;

    /// Starts rebuilding a projection at `version` into a new, empty copy; or, when a
    /// rebuild is under way whose builder has not written for longer than `lease`, takes
    /// it over: at the same version, its rows move to a new generation (so the silent
    /// builder's writes are refused from then on) and it resumes from its
    /// [`BuildState::position`]; at another version, it starts over. `None` when another
    /// builder is at work.
    fn begin_build<'a>(
        &'a self,
        name: &'a str,
        version: u32,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<BuildState>, StoreError>>;

    /// Writes rows into the copy a rebuild fills (`Some` JSON: the row's new content,
    /// its version one more than before, 1 when new; `None`: delete), records that the
    /// log is applied through `position`, and refreshes the build's heartbeat, in one
    /// transaction. [`StoreError::Conflict`] when that copy is no longer being built
    /// (taken over, or finished).
    fn write_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        rows: Vec<(String, Option<std::sync::Arc<str>>)>,
        position: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Finishes a rebuild: if no event of `types` (any, when empty) is stored past
    /// `position` — checked so that no commit can slip in meanwhile (PostgreSQL locks
    /// the events table against writers for the check) — makes `generation` the
    /// serving copy at the build's version, built through the log's last position, and
    /// drops the old copy's rows; returns `true`. Returns `false`, changing nothing, when
    /// there are events to apply first. [`StoreError::Conflict`] when that copy is no
    /// longer being built.
    fn finish_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        position: u64,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// A read model's JSON, by its name and key.
    fn read_model<'a>(&'a self, name: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>>;

    /// Writes a read model's JSON (projections and application code do this, never a
    /// handler's unit of work).
    fn put_read_model<'a>(&'a self, name: &'a str, key: &'a str, json: String)
        -> BoxFuture<'a, Result<(), StoreError>>;
}
