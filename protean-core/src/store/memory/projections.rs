//! [`Projections`] for [`MemoryStore`]: projection rows and their queries, rebuilds into
//! new copies, read models by key.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use foldhash::HashMap;
use time::OffsetDateTime;

use super::rows::{query_in, row_in};
use super::{of_types, position_of_last, Inner, MemoryStore, Projected, StoredRow};
use crate::store::envelope::StreamId;
use crate::store::ports::Projections;
use crate::store::MAX_LEASE;
use crate::store::{
    BoxFuture, BuildState, ProjectionSpec, ProjectionState, Row, RowQuery, StoreError, VersionConflict,
};

impl Projections for MemoryStore {
    fn register_projection(&self, spec: ProjectionSpec) -> BoxFuture<'_, Result<ProjectionState, StoreError>> {
        let mut inner = self.lock();
        let state = match inner.projections.get(&*spec.name) {
            Some(projected) => projected.state(&spec.name, false),
            None => {
                let projected = Projected::new(spec.version);
                let state = projected.state(&spec.name, true);
                inner.projections.insert(spec.name.into_owned(), projected);
                state
            }
        };
        Box::pin(std::future::ready(Ok(state)))
    }

    fn projection_state<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<ProjectionState>, StoreError>> {
        let state = self.lock().projections.get(name).map(|projected| projected.state(name, false));
        Box::pin(std::future::ready(Ok(state)))
    }

    fn projection_row<'a>(
        &'a self,
        name: &'a str,
        generation: Option<u64>,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Row>, StoreError>> {
        Box::pin(std::future::ready(Ok(row_in(&self.lock(), name, generation, key))))
    }

    fn query_projection(&self, query: RowQuery) -> BoxFuture<'_, Result<Vec<Row>, StoreError>> {
        Box::pin(std::future::ready(query_in(&self.lock(), &query)))
    }

    fn begin_build<'a>(
        &'a self,
        name: &'a str,
        version: u32,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<BuildState>, StoreError>> {
        Box::pin(std::future::ready(begin_build(&mut self.lock(), name, version, lease)))
    }

    fn write_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        rows: Vec<(String, Option<Arc<str>>)>,
        position: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(std::future::ready(write_build(&mut self.lock(), name, generation, rows, position)))
    }

    fn finish_build<'a>(
        &'a self,
        name: &'a str,
        generation: u64,
        position: u64,
        types: &'a [String],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(std::future::ready(finish_build(&mut self.lock(), name, generation, position, types)))
    }

    fn read_model<'a>(&'a self, name: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        let json = self.lock().read_models.get(name).and_then(|by_key| by_key.get(key)).cloned();
        Box::pin(std::future::ready(Ok(json)))
    }

    fn put_read_model<'a>(
        &'a self,
        name: &'a str,
        key: &'a str,
        json: String,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.lock().read_models.entry(name.to_owned()).or_default().insert(key.to_owned(), json);
        Box::pin(std::future::ready(Ok(())))
    }
}

impl Projected {
    /// A projection at `version`, serving its first copy, empty.
    fn new(version: u32) -> Self {
        let mut copies = HashMap::default();
        copies.insert(1, BTreeMap::new());
        Projected { version, generation: 1, built_through: 0, checkpoint: 0, last_generation: 1, build: None, copies }
    }

    /// Where it stands, as `name`; `created`: by the call asking.
    fn state(&self, name: &str, created: bool) -> ProjectionState {
        ProjectionState {
            name: name.to_owned(),
            version: self.version,
            generation: self.generation,
            built_through: self.built_through,
            checkpoint: self.checkpoint,
            build: self.build.clone(),
            created,
        }
    }

    /// A new, empty copy: its generation.
    fn new_copy(&mut self) -> u64 {
        self.last_generation += 1;
        self.copies.insert(self.last_generation, BTreeMap::new());
        self.last_generation
    }
}

/// The projection `name`, or an error saying the store does not keep it.
fn projected<'i>(inner: &'i mut Inner, name: &str) -> Result<&'i mut Projected, StoreError> {
    inner
        .projections
        .get_mut(name)
        .ok_or_else(|| StoreError::Unsupported(format!("the store keeps no projection `{name}`: register it first")))
}

/// The rebuild of `name` filling `generation`, or a conflict when that copy is no
/// longer being built (taken over, or finished).
fn building<'i>(inner: &'i mut Inner, name: &str, generation: u64) -> Result<&'i mut Projected, StoreError> {
    let projected = projected(inner, name)?;
    let actual = projected.build.as_ref().map_or(0, |build| build.generation);
    if actual != generation {
        let stream = StreamId::new(name.to_owned(), format!("generation {generation}"));
        return Err(VersionConflict { stream, expected: generation, actual }.into());
    }
    Ok(projected)
}

/// Starts or takes over the rebuild of `name` at `version`, unless its builder wrote
/// within `lease`.
fn begin_build(inner: &mut Inner, name: &str, version: u32, lease: Duration) -> Result<Option<BuildState>, StoreError> {
    let projected = projected(inner, name)?;
    let now = OffsetDateTime::now_utc();
    let build = match projected.build.take() {
        Some(build) if !lease_ran_out(build.heartbeat, lease, now) => {
            projected.build = Some(build);
            return Ok(None);
        }
        // Taken over at the same version: the rows so far move to a new copy (so the
        // silent builder's writes are refused) and the build resumes where it was.
        Some(stale) if stale.version == version => {
            let rows = projected.copies.remove(&stale.generation).unwrap_or_default();
            let generation = projected.new_copy();
            projected.copies.insert(generation, rows);
            BuildState { generation, version, position: stale.position, heartbeat: now }
        }
        // Taken over at another version, or no build: start from an empty copy.
        stale => {
            if let Some(stale) = stale {
                projected.copies.remove(&stale.generation);
            }
            let generation = projected.new_copy();
            BuildState { generation, version, position: 0, heartbeat: now }
        }
    };
    projected.build = Some(build.clone());
    Ok(Some(build))
}

/// Writes `rows` into the copy `generation` being built, which has read the log through
/// `position`.
fn write_build(
    inner: &mut Inner,
    name: &str,
    generation: u64,
    rows: Vec<(String, Option<Arc<str>>)>,
    position: u64,
) -> Result<(), StoreError> {
    let projected = building(inner, name, generation)?;
    let copy = projected.copies.entry(generation).or_default();
    for (key, json) in rows {
        match json {
            Some(json) => {
                let version = copy.get(&key).map_or(0, |row| row.version) + 1;
                copy.insert(key, StoredRow { version, json });
            }
            None => {
                copy.remove(&key);
            }
        }
    }
    if let Some(build) = &mut projected.build {
        build.position = position;
        build.heartbeat = OffsetDateTime::now_utc();
    }
    Ok(())
}

/// Makes the copy `generation` the serving one, unless events of `types` were logged
/// after `position`.
fn finish_build(
    inner: &mut Inner,
    name: &str,
    generation: u64,
    position: u64,
    types: &[String],
) -> Result<bool, StoreError> {
    let last = inner.log.len();
    let start = usize::try_from(position).unwrap_or(usize::MAX).min(last);
    let behind = inner.log[start..].iter().any(|event| of_types(event, types));
    let projected = building(inner, name, generation)?;
    if behind {
        return Ok(false);
    }
    let Some(build) = projected.build.take() else { return Ok(false) };
    projected.copies.remove(&projected.generation);
    projected.generation = build.generation;
    projected.version = build.version;
    projected.built_through = position_of_last(last);
    projected.checkpoint = projected.built_through;
    Ok(true)
}

/// Whether a builder that last wrote at `heartbeat` has been silent for longer than `lease`.
fn lease_ran_out(heartbeat: OffsetDateTime, lease: Duration, now: OffsetDateTime) -> bool {
    let lease = time::Duration::try_from(lease.min(MAX_LEASE)).unwrap_or(time::Duration::MAX);
    heartbeat.checked_add(lease).is_some_and(|end| end < now)
}
