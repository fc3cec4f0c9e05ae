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
use crate::store::envelope::Envelope;
use crate::store::StoreError;

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
    /// Applies a stored event, parsing (and upcasting) its payload.
    pub apply_stored: fn(&mut dyn Any, &Envelope) -> Result<(), StoreError>,
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
    envelope: &Envelope,
) -> Result<(), StoreError> {
    let event = envelope.event::<E>()?;
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

/// Replays stored events onto `aggregate`, in order. An event the aggregate has no apply
/// method for is a typed error naming the stream and position.
pub fn replay<A: Aggregate>(aggregate: &mut A, events: &[Envelope]) -> Result<(), StoreError> {
    for envelope in events {
        let Some(applier) = applier(A::KEY, &envelope.type_name) else {
            return Err(StoreError::corrupt(
                &envelope.stream,
                envelope.sequence,
                format!("`{}` has no apply method for `{}`", A::NAME, envelope.type_name),
            ));
        };
        (applier.apply_stored)(aggregate, envelope)?;
        aggregate.__meta_mut().sequence = envelope.sequence;
    }
    Ok(())
}

/// Compile-time check that an apply method's event belongs to its aggregate.
pub const fn assert_event_of<E: EventOf<A>, A: Aggregate>() {}
