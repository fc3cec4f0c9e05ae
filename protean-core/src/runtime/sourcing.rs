//! Event sourcing: an aggregate declared `#[aggregate(event_sourced)]` changes only by
//! applying its events, with one `apply` method per event (in an `#[apply] impl` block).
//! Raising an event applies it at once; loading replays the stored events, after the
//! latest snapshot.
//!
//! ```text
//! #[aggregate(event_sourced)]
//! pub struct Account { pub owner: String, pub balance: i64 }
//!
//! #[apply]
//! impl Account {
//!     fn opened(&mut self, event: &AccountOpened) { self.owner = event.owner.clone(); }
//!     fn deposited(&mut self, event: &Deposited) { self.balance += event.amount; }
//! }
//! ```

use std::any::Any;
use std::collections::HashMap;
use std::sync::OnceLock;

use crate::model::element::Apply;
use crate::model::element::{Aggregate, EventOf, RaisedEvent};
use crate::store::envelope::StreamId;
use crate::store::{ReplayEvents, StoreError, StoredEvent};

/// One apply method, as `#[apply]` registers it.
#[derive(Debug)]
pub struct ApplierDescriptor {
    /// [`KEY`](crate::model::element::DomainElement::KEY) of the aggregate.
    pub aggregate: &'static str,
    /// [`KEY`](crate::model::element::DomainElement::KEY) of the event.
    pub event: &'static str,
    /// The event's stable type name.
    pub type_name: &'static str,
    /// The method (`"deposited"`).
    pub method: &'static str,
    /// Applies a raised (typed) event.
    pub apply_raised: fn(&mut dyn Any, &RaisedEvent),
    /// Applies a stored event of the given stream, parsing (and upcasting) its payload.
    pub apply_stored: fn(&mut dyn Any, &StreamId, StoredEvent<'_>) -> Result<(), StoreError>,
}

inventory::collect!(ApplierDescriptor);

/// Every apply method registered in this program.
pub fn registered_appliers() -> impl Iterator<Item = &'static ApplierDescriptor> {
    inventory::iter::<ApplierDescriptor>.into_iter()
}

fn appliers() -> &'static HashMap<(&'static str, &'static str), &'static ApplierDescriptor> {
    static APPLIERS: OnceLock<HashMap<(&'static str, &'static str), &'static ApplierDescriptor>> = OnceLock::new();
    APPLIERS.get_or_init(|| registered_appliers().map(|a| ((a.aggregate, a.type_name), a)).collect())
}

/// The apply method of aggregate `aggregate_key` for events of `type_name`.
pub fn applier(aggregate_key: &str, type_name: &str) -> Option<&'static ApplierDescriptor> {
    appliers().get(&(aggregate_key, type_name)).copied()
}

/// The typed route of an apply method (what `#[apply]` registers).
pub fn apply_raised<A: Apply<E>, E: EventOf<A>>(aggregate: &mut dyn Any, event: &RaisedEvent) {
    if let (Some(aggregate), Some(event)) = (aggregate.downcast_mut::<A>(), event.downcast_ref::<E>()) {
        aggregate.apply(event);
    }
}

/// The stored route of an apply method (what `#[apply]` registers).
pub fn apply_stored<A: Apply<E>, E: EventOf<A>>(
    aggregate: &mut dyn Any,
    stream: &StreamId,
    event: StoredEvent<'_>,
) -> Result<(), StoreError> {
    let event = event.event::<E>(stream)?;
    if let Some(aggregate) = aggregate.downcast_mut::<A>() {
        aggregate.apply(&event);
    }
    Ok(())
}

/// Applies a raised event through the registry (what `raise` does for event-sourced aggregates).
pub fn apply_raised_event<A: Aggregate>(aggregate: &mut A, event: &RaisedEvent) {
    if let Some(applier) = applier(A::KEY, event.type_name()) {
        (applier.apply_raised)(aggregate, event);
    }
}

/// Replays the stored events of `stream` onto `aggregate`, in order. An event the
/// aggregate has no apply method for is a typed error naming the stream and position.
pub fn replay<A: Aggregate>(aggregate: &mut A, stream: &StreamId, events: &ReplayEvents) -> Result<(), StoreError> {
    // A stream holds runs of few event types: the last type's apply method is kept at hand
    // rather than looked up again for every event.
    let mut last: Option<(&str, &'static ApplierDescriptor)> = None;
    for event in events {
        let applier = match last {
            Some((type_name, applier)) if type_name == event.type_name => applier,
            _ => {
                let Some(applier) = applier(A::KEY, event.type_name) else {
                    return Err(StoreError::corrupt(
                        stream,
                        event.sequence,
                        format!("`{}` has no apply method for `{}`", A::NAME, event.type_name),
                    ));
                };
                last = Some((applier.type_name, applier));
                applier
            }
        };
        (applier.apply_stored)(aggregate, stream, event)?;
        aggregate.__meta_mut().sequence = event.sequence;
    }
    Ok(())
}

/// Compile-time check that an apply method's event belongs to its aggregate.
pub const fn assert_event_of<E: EventOf<A>, A: Aggregate>() {}
