//! The [`Projections`] port: projection rows, queries on them, blue/green rebuilds, and
//! read models kept by key. The rule every store follows for a batch's row changes
//! (copies, skipped changes, versions) is in `docs/storage.md`, "Projection rows".

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use crate::store::{BoxFuture, Envelope, OffsetDateTime, StoreError};

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

/// What a store needs to know of a projection to keep its rows: its name, its declared
/// version, and the fields queries may filter and order on (indexed by SQL stores).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionSpec {
    /// The projection's name (`"CustomerCreditView"`).
    pub name: Cow<'static, str>,
    /// Its declared version: when it differs from the serving copy's, the projection
    /// is rebuilt.
    pub version: u32,
    /// Top-level fields of the row's JSON that queries filter and order on.
    pub indexed: Vec<Cow<'static, str>>,
}

/// Where a projection stands in a store.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionState {
    /// The projection's name.
    pub name: String,
    /// The version of the projector that built the serving copy.
    pub version: u32,
    /// The serving copy.
    pub generation: u64,
    /// The log position the serving copy was built through by its rebuild (0 when it
    /// was never rebuilt): live changes from events at or before it are skipped.
    pub built_through: u64,
    /// The highest log position whose changes the serving copy holds.
    pub checkpoint: u64,
    /// A rebuild under way, if any.
    pub build: Option<BuildState>,
    /// Whether this call to [`Projections::register_projection`](crate::store::Projections::register_projection)
    /// created it (false on every later call).
    pub created: bool,
}

/// A rebuild under way: the copy it fills and how far it got.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BuildState {
    /// The copy being filled.
    pub generation: u64,
    /// The projection version it builds.
    pub version: u32,
    /// The log position applied so far.
    pub position: u64,
    /// When its builder last wrote: a build whose builder is silent for longer than the
    /// lease may be taken over (and resumed from `position`).
    #[serde(with = "time::serde::rfc3339")]
    pub heartbeat: OffsetDateTime,
}

/// One stored row of a projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The row's key.
    pub key: String,
    /// The copy it belongs to.
    pub generation: u64,
    /// 1 when first written, one more at each change.
    pub version: u64,
    /// The row as JSON.
    pub json: Arc<str>,
}

/// A change to one row, written in a unit of work's [`Batch`](crate::store::Batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowChange {
    /// The projection.
    pub projection: Cow<'static, str>,
    /// The copy the row was read from (the serving one).
    pub generation: u64,
    /// The row's key.
    pub key: String,
    /// The row's version when read (0: there was none).
    pub expected_version: u64,
    /// The new row, or `None` to delete it.
    pub json: Option<Arc<str>>,
}

/// A row as a unit of work saw it: which copy, and at which version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowVersion {
    /// The row's key.
    pub key: String,
    /// The copy it was read from (the serving one).
    pub generation: u64,
    /// Its version then.
    pub version: u64,
}

impl RowVersion {
    /// The key, copy and version of `row`.
    pub fn of(row: &Row) -> Self {
        RowVersion { key: row.key.clone(), generation: row.generation, version: row.version }
    }
}

/// Something a unit of work read from a projection and decided on, written in its
/// [`Batch::reads`](crate::store::Batch::reads) so that the store checks, inside the
/// commit's transaction, that it still holds (see [`Records::commit`](crate::store::Records::commit)).
///
/// A store refuses the batch with [`StoreError::Conflict`](crate::store::StoreError::Conflict)
/// when the read is stale: for [`RowRead::Key`], when the serving copy's row under the
/// key is not the one read (another version, another copy, or a row where there was
/// none, or none where there was one); for [`RowRead::Query`], when running the query
/// again on the serving copy gives other rows or other versions. The conflict names
/// the stream `(projection, key)` of the first stale row (`(projection, "?query")` when
/// the store cannot tell which row of a query moved), with the version read and the
/// version found (0: none).
#[derive(Debug, Clone, PartialEq)]
pub enum RowRead {
    /// One row, read by key.
    Key {
        /// The projection.
        projection: Cow<'static, str>,
        /// The key read.
        key: String,
        /// The row found, or `None` when there was none.
        found: Option<RowVersion>,
    },
    /// The rows a query returned.
    Query {
        /// The query, as run.
        query: RowQuery,
        /// The rows it returned.
        found: Vec<RowVersion>,
    },
}

impl RowRead {
    /// The projection read.
    pub fn projection(&self) -> &str {
        match self {
            RowRead::Key { projection, .. } => projection,
            RowRead::Query { query, .. } => &query.projection,
        }
    }

    /// Whether the read still holds, given the row under its key now (for a key) or the
    /// rows the query returns now (for a query): `None` when it does, or the conflict
    /// that refuses the batch. What every store's check of a batch's reads comes to.
    pub fn stale(&self, now: &[RowVersion]) -> Option<crate::store::VersionConflict> {
        let version = |row: Option<&RowVersion>| row.map_or(0, |r| r.version);
        match self {
            RowRead::Key { projection, key, found } => {
                let current = now.first();
                (found.as_ref() != current).then(|| crate::store::VersionConflict {
                    stream: crate::store::StreamId::new(projection.to_string(), key.clone()),
                    expected: version(found.as_ref()),
                    actual: version(current),
                })
            }
            RowRead::Query { query, found } => {
                let mut read: Vec<&RowVersion> = found.iter().collect();
                let mut current: Vec<&RowVersion> = now.iter().collect();
                read.sort();
                current.sort();
                if read == current {
                    return None;
                }
                // The first key whose row differs, in key order.
                fn by_key<'r>(rows: &[&'r RowVersion], key: &str) -> Option<&'r RowVersion> {
                    rows.iter().find(|r| r.key == key).copied()
                }
                let mut keys: Vec<&str> = read.iter().chain(current.iter()).map(|r| r.key.as_str()).collect();
                keys.sort_unstable();
                keys.dedup();
                let key = keys.into_iter().find(|key| by_key(&read, key) != by_key(&current, key)).unwrap_or("?query");
                Some(crate::store::VersionConflict {
                    stream: crate::store::StreamId::new(query.projection.to_string(), key.to_owned()),
                    expected: version(by_key(&read, key)),
                    actual: version(by_key(&current, key)),
                })
            }
        }
    }
}

/// Refuses a batch whose `reads` no longer hold, the first stale one naming the
/// conflict: each row read by key is read again from the serving copy with `row`
/// (projection, key), each query run again with `query`. What the stores that check
/// reads in Rust (memory, SQLite) run inside their commit.
pub(crate) fn check_reads(
    reads: &[RowRead],
    mut row: impl FnMut(&str, &str) -> Result<Option<Row>, crate::store::StoreError>,
    mut query: impl FnMut(&RowQuery) -> Result<Vec<Row>, crate::store::StoreError>,
) -> Result<(), crate::store::StoreError> {
    for read in reads {
        let now: Vec<RowVersion> = match read {
            RowRead::Key { projection, key, .. } => row(projection, key)?.iter().map(RowVersion::of).collect(),
            RowRead::Query { query: q, .. } => query(q)?.iter().map(RowVersion::of).collect(),
        };
        if let Some(conflict) = read.stale(&now) {
            return Err(conflict.into());
        }
    }
    Ok(())
}

/// A comparison in a [`RowFilter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterOp {
    /// Equal (`null`: the field is null or missing).
    Eq,
    /// Not equal (`null`: the field is present and not null).
    Ne,
    /// Less than.
    Lt,
    /// At most.
    Le,
    /// Greater than.
    Gt,
    /// At least.
    Ge,
}

impl FilterOp {
    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            FilterOp::Eq => "=",
            FilterOp::Ne => "<>",
            FilterOp::Lt => "<",
            FilterOp::Le => "<=",
            FilterOp::Gt => ">",
            FilterOp::Ge => ">=",
        }
    }
}

/// One condition of a [`RowQuery`]: a top-level field of the row compared with a JSON
/// scalar. Numbers compare as numbers, strings as strings (in the database's collation;
/// byte order in memory), booleans as booleans; values of different kinds never match.
#[derive(Debug, Clone, PartialEq)]
pub struct RowFilter {
    /// A declared (indexed) field.
    pub field: String,
    /// The comparison.
    pub op: FilterOp,
    /// A JSON scalar (string, number, boolean or null).
    pub value: serde_json::Value,
}

/// One ordering of a [`RowQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowOrder {
    /// A declared (indexed) field.
    pub field: String,
    /// Largest first.
    pub descending: bool,
}

/// A query over the serving copy of a projection, executed by the store: every filter
/// must hold; rows come in the given order, then by key; `offset` rows are skipped and
/// at most `limit` returned.
#[derive(Debug, Clone, PartialEq)]
pub struct RowQuery {
    /// The projection.
    pub projection: Cow<'static, str>,
    /// Conditions, all of which must hold.
    pub filters: Vec<RowFilter>,
    /// Ordering, before the key.
    pub order: Vec<RowOrder>,
    /// At most this many rows.
    pub limit: usize,
    /// Skip this many first.
    pub offset: usize,
}

/// An event of the log with its position: what a rebuild reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    /// Its position in the whole log (from 1, increasing in commit order).
    pub position: u64,
    /// The event.
    pub event: Envelope,
}
