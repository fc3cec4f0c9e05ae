//! The rows of one projection that a unit of work or a rebuild reads and changes
//! ([`RowSet`]), cached by key and written back with the unit's commit or a rebuild's
//! flush.

use std::collections::hash_map::Entry;
use std::sync::Arc;

use foldhash::HashMap;

use crate::model::error::{OutdatedCopy, StoreError};
use crate::store::{Row, RowChange, Store};

/// Where a row set reads rows from and what its changes are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Mode {
    /// Live updates of the serving copy, whose generation is given.
    #[default]
    Serving,
    /// A rebuild filling this copy.
    Build(u64),
}

#[derive(Debug, Clone)]
struct Slot {
    /// The copy it was read from.
    generation: u64,
    /// Its version when read (0: absent).
    version: u64,
    /// Its content now (`None`: absent or deleted).
    json: Option<Arc<str>>,
    /// Changed since read (or since the last flush, in a rebuild).
    dirty: bool,
}

/// The rows of one projection a unit of work (or a rebuild) has read and changed:
/// untyped, behind [`Rows<V>`](crate::runtime::Rows). Not a public API.
#[doc(hidden)]
#[derive(Default)]
pub struct RowSet {
    store: Option<Arc<dyn Store>>,
    pub(crate) name: &'static str,
    mode: Mode,
    /// The serving copy's generation (live mode).
    serving: u64,
    slots: HashMap<String, Slot>,
}

impl std::fmt::Debug for RowSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowSet")
            .field("projection", &self.name)
            .field("mode", &self.mode)
            .field("rows", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl RowSet {
    /// Rows of the serving copy (generation `serving`) of projection `name`.
    pub(crate) fn serving(store: Arc<dyn Store>, name: &'static str, serving: u64) -> Self {
        RowSet { store: Some(store), name, mode: Mode::Serving, serving, slots: HashMap::default() }
    }

    /// Rows of the copy `generation` a rebuild fills.
    pub(crate) fn building(store: Arc<dyn Store>, name: &'static str, generation: u64) -> Self {
        RowSet {
            store: Some(store),
            name,
            mode: Mode::Build(generation),
            serving: generation,
            slots: HashMap::default(),
        }
    }

    async fn slot(&mut self, key: String) -> Result<&mut Slot, StoreError> {
        match self.slots.entry(key) {
            Entry::Occupied(found) => Ok(found.into_mut()),
            Entry::Vacant(vacant) => {
                let store =
                    self.store.as_ref().ok_or_else(|| StoreError::Unsupported("a row set without a store".into()))?;
                let generation = match self.mode {
                    Mode::Serving => None,
                    Mode::Build(generation) => Some(generation),
                };
                let row: Option<Row> = store.projection_row(self.name, generation, vacant.key()).await?;
                let slot = match row {
                    Some(row) => {
                        Slot { generation: row.generation, version: row.version, json: Some(row.json), dirty: false }
                    }
                    None => {
                        Slot { generation: generation.unwrap_or(self.serving), version: 0, json: None, dirty: false }
                    }
                };
                Ok(vacant.insert(slot))
            }
        }
    }

    /// The row under `key`, as JSON.
    pub(crate) async fn get(&mut self, key: String) -> Result<Option<Arc<str>>, StoreError> {
        Ok(self.slot(key).await?.json.clone())
    }

    /// The row under `key`, as JSON, with its version as read.
    pub(crate) async fn versioned(&mut self, key: String) -> Result<Option<(Arc<str>, u64)>, StoreError> {
        let slot = self.slot(key).await?;
        Ok(slot.json.clone().map(|json| (json, slot.version)))
    }

    /// `error` of a row read from the serving copy, explained for a projector of
    /// version `declared` (see [`explained`]); a rebuild's copy is of that version.
    pub(crate) async fn explained(&self, declared: u32, error: StoreError) -> StoreError {
        match (&self.store, self.mode) {
            (Some(store), Mode::Serving) => explained(store.as_ref(), Some(declared), error).await,
            _ => error,
        }
    }

    /// Sets (or with `None`, deletes) the row under `key`.
    pub(crate) async fn set(&mut self, key: String, json: Option<Arc<str>>) -> Result<(), StoreError> {
        let slot = self.slot(key).await?;
        slot.json = json;
        slot.dirty = true;
        Ok(())
    }

    /// The changes of a live unit of work, each against the row's version as read.
    pub(crate) fn changes(self) -> Vec<RowChange> {
        let name = self.name;
        self.slots
            .into_iter()
            .filter(|(_, slot)| slot.dirty && !(slot.version == 0 && slot.json.is_none()))
            .map(|(key, slot)| RowChange {
                projection: name.into(),
                generation: slot.generation,
                key,
                expected_version: slot.version,
                json: slot.json,
            })
            .collect()
    }

    /// The rows a rebuild changed since its last flush (now clean), and forgets clean
    /// rows when more than `keep` are cached.
    pub(crate) fn flush(&mut self, keep: usize) -> Vec<(String, Option<Arc<str>>)> {
        let mut out = Vec::new();
        for (key, slot) in &mut self.slots {
            if slot.dirty {
                slot.dirty = false;
                // A row the build both created and deleted was never stored.
                if slot.version == 0 && slot.json.is_none() {
                    continue;
                }
                slot.version += 1;
                out.push((key.clone(), slot.json.clone()));
            }
        }
        if self.slots.len() > keep {
            self.slots.clear();
        }
        out
    }
}

/// `error`, when it is a row that does not read, with what the projection's state says
/// of it: whether the copy serving reads was built by a version other than `declared`
/// (the code's), so that a rebuild is pending or under way. Other errors as they are.
pub(crate) async fn explained(store: &dyn Store, declared: Option<u32>, error: StoreError) -> StoreError {
    match (error, declared) {
        (StoreError::UnreadableRow { projection, key, version, reason, outdated: None }, Some(declared)) => {
            // Only to explain an error: a store that cannot say leaves it unexplained.
            let state = store.projection_state(&projection).await.ok().flatten();
            let outdated = state.filter(|state| state.version != declared).map(|state| OutdatedCopy {
                serving: state.version,
                declared,
                rebuilding: state.build.is_some_and(|build| build.version == declared),
            });
            StoreError::UnreadableRow { projection, key, version, reason, outdated }
        }
        (error, _) => error,
    }
}
