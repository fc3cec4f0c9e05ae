//! The engine behind [`Domain`](crate::runtime::Domain): the store, the routes from a
//! message's type name to its handlers, and the retry and snapshot policies. Running
//! commands is in [`domain`](super::domain), delivering events in [`delivery`](super::delivery).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use foldhash::{HashMap, HashMapExt};

use crate::registry::MessageKind;
use crate::runtime::handler::HandlerDescriptor;
use crate::runtime::outcome::DeliveryFailure;
use crate::runtime::policy::{DeliveryMode, RetryPolicy};
use crate::store::Store;

/// How reactions are delivered and retried: what the builder chose.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryPolicy {
    pub(crate) mode: DeliveryMode,
    pub(crate) retry: RetryPolicy,
    pub(crate) per_handler: HashMap<&'static str, RetryPolicy>,
}

/// The runtime half of a [`Domain`](crate::runtime::Domain): store, routes and retry policy.
pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) commands: HashMap<&'static str, &'static HandlerDescriptor>,
    pub(crate) events: HashMap<&'static str, Vec<&'static HandlerDescriptor>>,
    pub(crate) conflict_retries: u32,
    pub(crate) lease: std::time::Duration,
    pub(crate) snapshot_every: u64,
    pub(crate) failures: Mutex<Vec<DeliveryFailure>>,
    pub(crate) delivery: DeliveryPolicy,
    /// Fired by every commit that wrote events: wakes this process's delivery workers.
    pub(crate) signal: tokio::sync::Notify,
    /// Deliveries that succeeded in this process, per handler.
    pub(crate) delivered: HashMap<&'static str, AtomicU64>,
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
        delivery: DeliveryPolicy,
    ) -> Self {
        let mut commands = HashMap::new();
        let mut delivered = HashMap::new();
        let mut events: HashMap<&'static str, Vec<&'static HandlerDescriptor>> = HashMap::new();
        for &handler in handlers {
            match handler.info.kind {
                MessageKind::Command => {
                    commands.insert(handler.info.type_name, handler);
                }
                MessageKind::Event => {
                    events.entry(handler.info.type_name).or_default().push(handler);
                    delivered.insert(handler.info.id, AtomicU64::new(0));
                }
            }
        }
        Engine {
            store,
            commands,
            events,
            conflict_retries,
            lease,
            snapshot_every,
            failures: Mutex::new(Vec::new()),
            delivery,
            signal: tokio::sync::Notify::new(),
            delivered,
        }
    }

    /// Wakes the delivery workers: events were committed. One waiting worker loop wakes
    /// now, and one that is claiming at this moment finds a permit when it next waits.
    pub(crate) fn wake(&self) {
        self.signal.notify_waiters();
        self.signal.notify_one();
    }

    /// Counts a successful delivery to `handler`.
    pub(crate) fn count_delivered(&self, handler: &str) {
        if let Some(count) = self.delivered.get(handler) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The retry policy of `handler`.
    pub(crate) fn retry_policy(&self, handler: &str) -> RetryPolicy {
        self.delivery.per_handler.get(handler).copied().unwrap_or(self.delivery.retry)
    }

    /// Whether reactions run inline, in `process`.
    pub(crate) fn inline(&self) -> bool {
        self.delivery.mode == DeliveryMode::Inline
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
