//! An `Arc` of a store is a store: each port of `Arc<S>` is `S`'s, so an `Arc<dyn Store>`
//! can be handed (or wrapped) wherever a store is expected.

use std::sync::Arc;

use crate::store::ports::{Deliveries, Outbox, Projections, Records, Schedule};

impl<S: Records + ?Sized> Records for Arc<S> {
    crate::forward_ports!(@methods [deref]: Records);
}

impl<S: Outbox + ?Sized> Outbox for Arc<S> {
    crate::forward_ports!(@methods [deref]: Outbox);
}

impl<S: Deliveries + ?Sized> Deliveries for Arc<S> {
    crate::forward_ports!(@methods [deref]: Deliveries);
}

impl<S: Projections + ?Sized> Projections for Arc<S> {
    crate::forward_ports!(@methods [deref]: Projections);
}

impl<S: Schedule + ?Sized> Schedule for Arc<S> {
    crate::forward_ports!(@methods [deref]: Schedule);
}
