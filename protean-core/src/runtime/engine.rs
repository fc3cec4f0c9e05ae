//! The engine behind [`Domain`](crate::runtime::Domain): the store, the routes from a
//! message's type name to its handlers, and the retry and snapshot policies. Running
//! commands is in [`domain`](super::domain), delivering events in [`delivery`](super::delivery).

use std::sync::{Arc, Mutex};

use foldhash::{HashMap, HashMapExt};

use crate::registry::MessageKind;
use crate::runtime::handler::HandlerDescriptor;
use crate::runtime::outcome::DeliveryFailure;
use crate::store::Store;

/// The runtime half of a [`Domain`](crate::runtime::Domain): store, routes and retry policy.
pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) commands: HashMap<&'static str, &'static HandlerDescriptor>,
    pub(crate) events: HashMap<&'static str, Vec<&'static HandlerDescriptor>>,
    pub(crate) conflict_retries: u32,
    pub(crate) lease: std::time::Duration,
    pub(crate) snapshot_every: u64,
    pub(crate) failures: Mutex<Vec<DeliveryFailure>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("commands", &self.commands.keys().collect::<Vec<_>>())
            .field("events", &self.events.keys().collect::<Vec<_>>())
            .field("conflict_retries", &self.conflict_retries)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        handlers: &[&'static HandlerDescriptor],
        conflict_retries: u32,
        lease: std::time::Duration,
        snapshot_every: u64,
    ) -> Self {
        let mut commands = HashMap::new();
        let mut events: HashMap<&'static str, Vec<&'static HandlerDescriptor>> = HashMap::new();
        for &handler in handlers {
            match handler.info.kind {
                MessageKind::Command => {
                    commands.insert(handler.info.type_name, handler);
                }
                MessageKind::Event => events.entry(handler.info.type_name).or_default().push(handler),
            }
        }
        Engine { store, commands, events, conflict_retries, lease, snapshot_every, failures: Mutex::new(Vec::new()) }
    }

    /// The store this engine writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// An event-sourced aggregate is snapshotted every this many events (0: never).
    pub fn snapshot_every(&self) -> u64 {
        self.snapshot_every
    }

    /// How many handlers take events of this type.
    pub fn handler_count(&self, type_name: &str) -> usize {
        self.events.get(type_name).map_or(0, Vec::len)
    }

    /// How many times a unit of work is run again after a version conflict.
    pub fn conflict_retries(&self) -> u32 {
        self.conflict_retries
    }
}
