//! What replaying an event-sourced aggregate reads: each event's sequence, type name,
//! schema version and payload, and nothing else (no ids, no times), packed into one
//! [`ReplayEvents`] so that a long stream costs no allocation per event.

use std::borrow::Cow;

use crate::model::element::Event;
use crate::model::error::StoreError;
use crate::model::identity::StreamId;

/// One stored event as a replay reads it, borrowed from where it is kept (a
/// [`ReplayEvents`], an [`Envelope`](crate::store::Envelope), a database row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredEvent<'a> {
    /// Its position in the stream, from 1.
    pub sequence: u64,
    /// The event's stable type name (`"Order.OrderPlaced"`).
    pub type_name: &'a str,
    /// The event's schema version when it was stored.
    pub version: u32,
    /// The event, as JSON text.
    pub payload: &'a str,
}

impl StoredEvent<'_> {
    /// The event as an `E`, parsed from the payload (upcast first when it was stored by
    /// an older version of `E`). A payload of another type, of a newer version, or one
    /// that no longer parses is [`StoreError::Corrupt`], naming `stream` and the sequence.
    pub fn event<E: Event>(&self, stream: &StreamId) -> Result<E, StoreError> {
        let corrupt = |reason: String| StoreError::corrupt(stream, self.sequence, reason);
        if self.type_name != E::TYPE_NAME {
            return Err(corrupt(format!("the event is a `{}`, not a `{}`", self.type_name, E::TYPE_NAME)));
        }
        if self.version > E::VERSION {
            return Err(corrupt(format!(
                "`{}` version {} was stored by newer code than this (version {})",
                self.type_name,
                self.version,
                E::VERSION
            )));
        }
        if self.version < E::VERSION {
            let old: serde_json::Value = serde_json::from_str(self.payload)
                .map_err(|e| corrupt(format!("`{}` version {}: {e}", self.type_name, self.version)))?;
            let current = E::upcast(self.version, old)
                .map_err(|e| corrupt(format!("`{}` version {} cannot be upcast: {e}", self.type_name, self.version)))?;
            return serde_json::from_value(current)
                .map_err(|e| corrupt(format!("`{}` upcast from version {}: {e}", self.type_name, self.version)));
        }
        serde_json::from_str(self.payload).map_err(|e| corrupt(format!("`{}`: {e}", self.type_name)))
    }
}

/// Where one event of a [`ReplayEvents`] is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    sequence: u64,
    version: u32,
    /// Index into [`ReplayEvents::type_names`].
    type_name: u32,
    /// Where its payload ends in [`ReplayEvents::payloads`] (it starts where the one
    /// before it ends).
    end: usize,
}

/// The events of one stream that a replay applies, in order: what
/// [`Records::replay_events`](crate::store::Records::replay_events) reads.
///
/// The payloads are kept end to end in one string and each distinct type name once, so
/// reading a stream allocates a few growing buffers rather than several strings per event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayEvents {
    payloads: String,
    type_names: Vec<Cow<'static, str>>,
    entries: Vec<Entry>,
}

impl ReplayEvents {
    /// No events.
    pub fn new() -> Self {
        ReplayEvents::default()
    }

    /// Room for `events` events before growing.
    pub fn with_capacity(events: usize) -> Self {
        ReplayEvents { payloads: String::new(), type_names: Vec::new(), entries: Vec::with_capacity(events) }
    }

    /// Appends one event (copying its payload, and its type name when it is new here).
    /// Events are replayed in the order they are pushed.
    pub fn push(&mut self, event: StoredEvent<'_>) {
        let type_name = self.type_index(event.type_name, || Cow::Owned(event.type_name.to_owned()));
        self.push_at(event, type_name);
    }

    /// [`push`](Self::push) for a type name that is already `'static` (kept without a copy).
    pub fn push_static(&mut self, event: StoredEvent<'_>, type_name: &'static str) {
        let index = self.type_index(type_name, || Cow::Borrowed(type_name));
        self.push_at(StoredEvent { type_name, ..event }, index);
    }

    fn push_at(&mut self, event: StoredEvent<'_>, type_name: u32) {
        self.payloads.push_str(event.payload);
        self.entries.push(Entry {
            sequence: event.sequence,
            version: event.version,
            type_name,
            end: self.payloads.len(),
        });
    }

    /// The index of `name` in the type names, added (by `owned`) when missing. A stream
    /// holds few types and runs of one type: the last event's is tried first.
    fn type_index(&mut self, name: &str, owned: impl FnOnce() -> Cow<'static, str>) -> u32 {
        if let Some(last) = self.entries.last() {
            if self.type_names.get(last.type_name as usize).is_some_and(|known| known == name) {
                return last.type_name;
            }
        }
        if let Some(found) = self.type_names.iter().position(|known| known == name) {
            // At most as many type names as events, and an index is checked on the way in.
            return u32::try_from(found).unwrap_or(u32::MAX);
        }
        self.type_names.push(owned());
        u32::try_from(self.type_names.len() - 1).unwrap_or(u32::MAX)
    }

    /// How many events there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The sequence of the last event, if any.
    pub fn last_sequence(&self) -> Option<u64> {
        self.entries.last().map(|e| e.sequence)
    }

    /// The events, in order.
    pub fn iter(&self) -> ReplayIter<'_> {
        ReplayIter { events: self, next: 0, start: 0 }
    }
}

impl<'a> IntoIterator for &'a ReplayEvents {
    type Item = StoredEvent<'a>;
    type IntoIter = ReplayIter<'a>;

    fn into_iter(self) -> ReplayIter<'a> {
        self.iter()
    }
}

/// The events of a [`ReplayEvents`], in order.
#[derive(Debug, Clone)]
pub struct ReplayIter<'a> {
    events: &'a ReplayEvents,
    next: usize,
    start: usize,
}

impl<'a> Iterator for ReplayIter<'a> {
    type Item = StoredEvent<'a>;

    fn next(&mut self) -> Option<StoredEvent<'a>> {
        let entry = self.events.entries.get(self.next)?;
        self.next += 1;
        let payload = self.events.payloads.get(self.start..entry.end).unwrap_or_default();
        self.start = entry.end;
        let type_name = self.events.type_names.get(entry.type_name as usize).map_or("", |name| &**name);
        Some(StoredEvent { sequence: entry.sequence, type_name, version: entry.version, payload })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.events.entries.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for ReplayIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_back_in_order_with_their_own_payloads_and_types() {
        let mut events = ReplayEvents::new();
        assert!(events.is_empty() && events.last_sequence().is_none());
        let pushed = [
            StoredEvent { sequence: 3, type_name: "A.Opened", version: 1, payload: r#"{"n":1}"# },
            StoredEvent { sequence: 4, type_name: "A.Moved", version: 2, payload: "" },
            StoredEvent { sequence: 5, type_name: "A.Moved", version: 2, payload: r#"{"to":"é"}"# },
            StoredEvent { sequence: 6, type_name: "A.Opened", version: 1, payload: "{}" },
        ];
        for (n, event) in pushed.iter().enumerate() {
            if n % 2 == 0 {
                events.push(*event);
            } else {
                events.push_static(*event, if event.type_name == "A.Moved" { "A.Moved" } else { "A.Opened" });
            }
        }
        assert_eq!(events.len(), 4);
        assert_eq!(events.last_sequence(), Some(6));
        assert_eq!(events.iter().len(), 4);
        assert_eq!(events.iter().collect::<Vec<_>>(), pushed);
        assert_eq!(events.type_names.len(), 2, "each type name is kept once");
    }
}
