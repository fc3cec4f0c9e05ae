//! [`Deliveries`] for [`MemoryStore`]: handled records, failed deliveries, dead letters.

use std::borrow::Cow;

use time::OffsetDateTime;
use uuid::Uuid;

use super::MemoryStore;
use crate::store::envelope::Envelope;
use crate::store::ports::Deliveries;
use crate::store::{BoxFuture, FailedDelivery, FailureQuery, FailureStatus, FailureUpdate, HandlerState, StoreError};

impl Deliveries for MemoryStore {
    fn is_handled<'a>(&'a self, handler: &'a str, message_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        let handled = self.lock().handled.contains_key(&(Cow::Owned(handler.to_owned()), message_id));
        Box::pin(std::future::ready(Ok(handled)))
    }

    fn handled_outcome<'a>(
        &'a self,
        handler: &'a str,
        message_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<Option<String>>, StoreError>> {
        let outcome = self
            .lock()
            .handled
            .get(&(Cow::Owned(handler.to_owned()), message_id))
            .map(|outcome| outcome.as_deref().map(str::to_owned));
        Box::pin(std::future::ready(Ok(outcome)))
    }

    fn handler_state<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<HandlerState, StoreError>> {
        let inner = self.lock();
        let handled = inner.handled.contains_key(&(Cow::Owned(handler.to_owned()), event.id));
        let mut state = HandlerState { handled, ..HandlerState::default() };
        for ((h, id), (_, failure)) in &inner.failures {
            if h != handler {
                continue;
            }
            if *id == event.id {
                state.attempts = failure.attempts;
            }
            if failure.event.stream == event.stream && failure.status != FailureStatus::Retrying {
                state.held = true;
            }
        }
        Box::pin(std::future::ready(Ok(state)))
    }

    fn record_failure(&self, update: FailureUpdate) -> BoxFuture<'_, Result<u32, StoreError>> {
        let mut inner = self.lock();
        let position = inner.log.iter().rposition(|e| e.id == update.event.id).unwrap_or(usize::MAX);
        let counted = u32::from(update.status != FailureStatus::Held);
        let key = (update.handler.to_string(), update.event.id);
        let attempts = match inner.failures.get_mut(&key) {
            Some((_, failure)) => {
                failure.status = update.status;
                failure.attempts += counted;
                failure.last_error = update.error;
                failure.last_failed_at = update.at;
                failure.attempts
            }
            None => {
                let failure = FailedDelivery {
                    handler: key.0.clone(),
                    event: update.event.stored(),
                    status: update.status,
                    attempts: counted,
                    first_error: update.error.clone(),
                    last_error: update.error,
                    first_failed_at: update.at,
                    last_failed_at: update.at,
                };
                inner.failures.insert(key, (position, failure));
                counted
            }
        };
        Box::pin(std::future::ready(Ok(attempts)))
    }

    /// Decided and written under the store's one lock, like every other step.
    fn hold_behind_dead_letter<'a>(
        &'a self,
        handler: &'a str,
        event: &'a Envelope,
        reason: &'a str,
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut inner = self.lock();
        let of_handler = (handler.to_owned(), Uuid::nil())..=(handler.to_owned(), Uuid::max());
        let ahead = inner.failures.range(of_handler).any(|(_, (_, failure))| {
            failure.event.stream == event.stream
                && failure.event.sequence < event.sequence
                && failure.status != FailureStatus::Retrying
        });
        let key = (handler.to_owned(), event.id);
        match inner.failures.get_mut(&key) {
            Some((_, own)) if own.status == FailureStatus::Held => {
                if ahead {
                    own.last_error = reason.to_owned();
                    own.last_failed_at = at;
                } else {
                    inner.failures.remove(&key);
                }
            }
            Some(_) => {} // its own dead letter or retried failure stays as it is
            None if ahead => {
                let position = inner.log.iter().rposition(|e| e.id == event.id).unwrap_or(usize::MAX);
                let held = FailedDelivery {
                    handler: key.0.clone(),
                    event: event.stored(),
                    status: FailureStatus::Held,
                    attempts: 0,
                    first_error: reason.to_owned(),
                    last_error: reason.to_owned(),
                    first_failed_at: at,
                    last_failed_at: at,
                };
                inner.failures.insert(key, (position, held));
            }
            None => {}
        }
        Box::pin(std::future::ready(Ok(ahead)))
    }

    fn failed_delivery<'a>(
        &'a self,
        handler: &'a str,
        event_id: Uuid,
    ) -> BoxFuture<'a, Result<Option<FailedDelivery>, StoreError>> {
        let found = self.lock().failures.get(&(handler.to_owned(), event_id)).map(|(_, failure)| failure.clone());
        Box::pin(std::future::ready(Ok(found)))
    }

    fn failed_deliveries(&self, query: FailureQuery) -> BoxFuture<'_, Result<Vec<FailedDelivery>, StoreError>> {
        let inner = self.lock();
        let mut found: Vec<&(usize, FailedDelivery)> =
            inner.failures.values().filter(|(_, failure)| query.matches(failure)).collect();
        found.sort_by(|a, b| (a.0, &a.1.handler).cmp(&(b.0, &b.1.handler)));
        let found = found.into_iter().take(query.limit).map(|(_, failure)| failure.clone()).collect();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn remove_failure<'a>(&'a self, handler: &'a str, event_id: Uuid) -> BoxFuture<'a, Result<bool, StoreError>> {
        let removed = self.lock().failures.remove(&(handler.to_owned(), event_id)).is_some();
        Box::pin(std::future::ready(Ok(removed)))
    }
}
