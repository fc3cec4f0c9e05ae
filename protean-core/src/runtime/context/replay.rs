//! Rebuilding an event-sourced aggregate for a unit of work: from its latest snapshot
//! and the events after it.

use crate::model::element::Aggregate;
use crate::model::identity::Identifier;
use crate::store::envelope::StreamId;
use crate::store::{BoxFuture, StoreError};

/// An event-sourced aggregate rebuilt from its latest snapshot (at most `up_to`) and the
/// events after it, up to `up_to`.
pub(crate) async fn replayed<A: Aggregate>(
    store: &dyn crate::store::Store,
    stream: &StreamId,
    id: &Identifier<A>,
    up_to: Option<u64>,
) -> Result<A, StoreError> {
    // A snapshot that no longer parses (the aggregate changed shape) is only a cache: the
    // events are the state, so replay them all.
    let snapshot = store.load_snapshot(stream, up_to).await?.and_then(|s| match serde_json::from_str::<A>(&s.state) {
        Ok(state) => Some((state, s.sequence)),
        Err(error) => {
            tracing::warn!(
                stream = %stream,
                sequence = s.sequence,
                error = &error as &dyn std::error::Error,
                "a snapshot no longer reads as the aggregate; replaying every event instead"
            );
            None
        }
    });
    let (mut state, after) = match snapshot {
        Some(found) => found,
        None => {
            let blank = A::__blank(id)
                .ok_or_else(|| StoreError::corrupt(stream, 0, format!("`{}` is not event-sourced", A::NAME)))?;
            (blank, 0)
        }
    };
    state.__meta_mut().sequence = after;
    let events = store.replay_events(stream, after, up_to).await?;
    crate::runtime::sourcing::replay(&mut state, stream, &events)?;
    // An event-sourced aggregate's version counts its events.
    let meta = state.__meta_mut();
    meta.version = meta.sequence;
    Ok(state)
}

/// How a unit of work rebuilds an event-sourced aggregate, from its latest snapshot and
/// the events after it: what `Aggregate::__replay` hands out.
#[doc(hidden)]
pub struct Replay<A>(pub(super) ReplayFn<A>);

/// Rebuilds aggregate `A` with its identity, stored on its stream, from a store.
type ReplayFn<A> =
    for<'a> fn(&'a dyn crate::store::Store, &'a StreamId, &'a Identifier<A>) -> BoxFuture<'a, Result<A, StoreError>>;

impl<A: Aggregate> crate::model::element::Replayer<A> for Replay<A> {
    fn of_aggregate() -> Self {
        Replay(|store, stream, id| Box::pin(replayed::<A>(store, stream, id, None)))
    }
}
