//! Events as raised: [`RaisedEvent`], typed for in-process delivery and serializable for
//! stores, in the order they were raised; and the [`EntityEvents`] an entity keeps until
//! its aggregate's unit of work takes them.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use super::Event;
use crate::model::validation::{Validate, ValidationError};

/// An event as raised, kept typed for in-process delivery and serializable for stores.
#[derive(Clone)]
pub struct RaisedEvent {
    type_name: &'static str,
    version: u32,
    /// When it was raised, relative to every other event of this process: the root and
    /// its entities keep their events apart, and this puts them back in raise order.
    order: u64,
    event: Arc<dyn ErasedEvent>,
}

/// Hands out [`RaisedEvent`]'s raise order.
static RAISE_ORDER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

trait ErasedEvent: Any + Send + Sync + Debug {
    fn to_json(&self) -> Result<serde_json::Value, serde_json::Error>;
    fn to_json_string(&self) -> Result<String, serde_json::Error>;
    fn to_json_shared(&self) -> Result<Arc<str>, serde_json::Error>;
    fn as_any(&self) -> &dyn Any;
    fn validate(&self) -> Result<(), ValidationError>;
}

impl<E: Event> ErasedEvent for E {
    fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
    fn to_json_string(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
    fn to_json_shared(&self) -> Result<Arc<str>, serde_json::Error> {
        crate::json::to_shared(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn validate(&self) -> Result<(), ValidationError> {
        Validate::validate(self)
    }
}

impl RaisedEvent {
    /// Wraps an event.
    pub fn new<E: Event>(event: E) -> Self {
        let order = RAISE_ORDER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self { type_name: E::TYPE_NAME, version: E::VERSION, order, event: Arc::new(event) }
    }

    /// The event's stable type name.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The event's schema version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The event, if it is an `E`.
    pub fn downcast_ref<E: Event>(&self) -> Option<&E> {
        self.event.as_any().downcast_ref::<E>()
    }

    /// The event's payload as JSON.
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        self.event.to_json()
    }

    /// The event's payload as JSON text, as stores keep it.
    pub fn to_json_string(&self) -> Result<String, serde_json::Error> {
        self.event.to_json_string()
    }

    /// The event's payload as shared JSON text.
    pub fn to_json_shared(&self) -> Result<Arc<str>, serde_json::Error> {
        self.event.to_json_shared()
    }

    /// Field options and invariants of the event: what its builder checks. The unit of
    /// work checks them before it stores the event, so nothing stored is unreadable.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.event.validate()
    }
}

/// The events an entity raised, kept on the entity until its aggregate's unit of work
/// takes them (with the root's, in raise order). Not part of equality or serialization.
#[derive(Clone, Default)]
pub struct EntityEvents(Vec<RaisedEvent>);

impl EntityEvents {
    /// Records a raised event.
    pub fn push(&mut self, event: RaisedEvent) {
        self.0.push(event);
    }

    /// The events raised and not yet taken.
    pub fn as_slice(&self) -> &[RaisedEvent] {
        &self.0
    }

    /// Hands out the raised events, leaving none behind.
    pub fn take(&mut self) -> Vec<RaisedEvent> {
        std::mem::take(&mut self.0)
    }
}

impl PartialEq for EntityEvents {
    /// Raised events never make two entities unequal.
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Debug for EntityEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} pending event(s)", self.0.len())
    }
}

impl<E: Event> From<E> for RaisedEvent {
    fn from(event: E) -> Self {
        RaisedEvent::new(event)
    }
}

impl Debug for RaisedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@v{} ", self.type_name, self.version)?;
        Debug::fmt(&*self.event, f)
    }
}

impl PartialEq for RaisedEvent {
    fn eq(&self, other: &Self) -> bool {
        self.type_name == other.type_name
            && self.version == other.version
            && self.to_json().ok() == other.to_json().ok()
    }
}

/// Sorts events in raise order. Not generic: the sort is compiled here once, not once
/// per aggregate type (and per method) in the user's crate, as a sort with a closure in
/// the trait's provided methods would be.
pub(super) fn in_raise_order(events: &mut [RaisedEvent]) {
    events.sort_by_key(|e| e.order);
}

/// [`in_raise_order`] of borrowed events.
pub(super) fn refs_in_raise_order(events: &mut [&RaisedEvent]) {
    events.sort_by_key(|e| e.order);
}
