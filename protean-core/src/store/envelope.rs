//! Events in transit: the [`Envelope`] around every stored or delivered event, and the
//! [`Cause`] that links a command to the events it leads to.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use time::OffsetDateTime;
pub use uuid::Uuid;

use crate::model::element::{Event, RaisedEvent};
use crate::model::error::StoreError;
pub use crate::model::identity::StreamId;
use crate::store::ports::StoredEvent;

/// Why a unit of work runs: the message that caused it and the conversation it is part of.
///
/// A command's id becomes the causation id of the events its handler raises; those
/// events' ids become the causation ids of what their handlers raise, and so on, while
/// the correlation id stays the one of the first command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cause {
    /// The message (command or event) being handled.
    pub causation_id: Uuid,
    /// The first command of the conversation.
    pub correlation_id: Uuid,
}

impl Cause {
    /// The cause of a new command with the given id: it starts its own conversation.
    pub fn command(command_id: Uuid) -> Self {
        Cause { causation_id: command_id, correlation_id: command_id }
    }

    /// The cause of handling `event`: same conversation, caused by the event.
    pub fn event(event: &Envelope) -> Self {
        Cause { causation_id: event.id, correlation_id: event.correlation_id }
    }
}

/// A domain event with everything needed to store, order and trace it.
///
/// The payload is kept as JSON, as a database holds it; in-process delivery also keeps
/// the typed event so handlers need not parse it again.
#[derive(Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// This event's unique id (UUID v7, so ids sort by creation time).
    pub id: Uuid,
    /// The event's stable type name (`"Order.OrderPlaced"`).
    pub type_name: Cow<'static, str>,
    /// The event's schema version.
    pub version: u32,
    /// The aggregate that raised it.
    pub stream: StreamId,
    /// Its position in the stream, from 1.
    pub sequence: u64,
    /// When it was committed (UTC, to the microsecond: what every store keeps): taken as
    /// its unit of work's commit is prepared, before the store puts it in the log, so
    /// events of units committing at the same moment may be logged in another order than
    /// their times.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// The first command of the conversation.
    pub correlation_id: Uuid,
    /// The command or event whose handling raised it.
    pub causation_id: Uuid,
    /// The event, as JSON text (shared by the clones of this envelope). An envelope
    /// serializes it as JSON, not as a string holding JSON.
    #[serde(serialize_with = "raw_json", deserialize_with = "from_raw_json")]
    pub payload: Arc<str>,
    #[serde(skip)]
    typed: Option<RaisedEvent>,
}

/// The time now, to the microsecond: what every store keeps, so an envelope reads back equal.
fn now_to_the_microsecond() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_microsecond(now.microsecond()).unwrap_or(now)
}

fn raw_json<S: Serializer>(payload: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
    let raw: &RawValue = serde_json::from_str(payload).map_err(serde::ser::Error::custom)?;
    raw.serialize(serializer)
}

fn from_raw_json<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<str>, D::Error> {
    let raw = Box::<RawValue>::deserialize(deserializer)?;
    Ok(Arc::from(raw.get()))
}

impl Envelope {
    /// Wraps an event raised in a unit of work; the store assigns the sequence on commit.
    pub fn new(event: RaisedEvent, stream: StreamId, cause: Cause) -> Result<Self, serde_json::Error> {
        Ok(Envelope {
            id: Uuid::now_v7(),
            type_name: Cow::Borrowed(event.type_name()),
            version: event.version(),
            payload: event.to_json_shared()?,
            stream,
            sequence: 0,
            recorded_at: now_to_the_microsecond(),
            correlation_id: cause.correlation_id,
            causation_id: cause.causation_id,
            typed: Some(event),
        })
    }

    /// An envelope read back from a store (no typed event at hand).
    #[allow(clippy::too_many_arguments)]
    pub fn stored_event(
        id: Uuid,
        type_name: Cow<'static, str>,
        version: u32,
        stream: StreamId,
        sequence: u64,
        recorded_at: OffsetDateTime,
        correlation_id: Uuid,
        causation_id: Uuid,
        payload: Arc<str>,
    ) -> Self {
        Envelope {
            id,
            type_name,
            version,
            stream,
            sequence,
            recorded_at,
            correlation_id,
            causation_id,
            payload,
            typed: None,
        }
    }

    /// The same envelope without the typed event: what a store keeps.
    pub fn stored(&self) -> Self {
        Envelope { typed: None, ..self.clone() }
    }

    /// The typed event, when this envelope was raised in this process.
    pub fn raised(&self) -> Option<&RaisedEvent> {
        self.typed.as_ref()
    }

    /// The event as an `E`: the typed one when it is at hand, otherwise parsed from the
    /// payload. A payload of another type, or one that no longer parses, is a typed error.
    pub fn event<E: Event>(&self) -> Result<Cow<'_, E>, StoreError> {
        if let Some(e) = self.typed.as_ref().and_then(RaisedEvent::downcast_ref::<E>) {
            return Ok(Cow::Borrowed(e));
        }
        self.replayed().event::<E>(&self.stream).map(Cow::Owned)
    }

    /// What a replay reads of this event: its sequence, type name, version and payload.
    pub fn replayed(&self) -> StoredEvent<'_> {
        StoredEvent {
            sequence: self.sequence,
            type_name: &self.type_name,
            version: self.version,
            payload: &self.payload,
        }
    }

    /// The event as a [`RaisedEvent`], parsing the payload when needed.
    pub fn to_raised<E: Event>(&self) -> Result<RaisedEvent, StoreError> {
        match &self.typed {
            Some(raised) => Ok(raised.clone()),
            None => self.event::<E>().map(|e| RaisedEvent::new(e.into_owned())),
        }
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("id", &self.id)
            .field("type_name", &self.type_name)
            .field("version", &self.version)
            .field("stream", &format_args!("{}", self.stream))
            .field("sequence", &self.sequence)
            .field("correlation_id", &self.correlation_id)
            .field("causation_id", &self.causation_id)
            .field("payload", &self.payload)
            .finish()
    }
}

impl PartialEq for Envelope {
    /// Two envelopes are equal when everything stored is equal; whether the typed event
    /// is at hand does not matter.
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.type_name == other.type_name
            && self.version == other.version
            && self.stream == other.stream
            && self.sequence == other.sequence
            && self.recorded_at == other.recorded_at
            && self.correlation_id == other.correlation_id
            && self.causation_id == other.causation_id
            && self.payload == other.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_serializes_its_payload_as_json_and_its_time_as_rfc3339() {
        let cause = Cause::command(Uuid::now_v7());
        let recorded_at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_000).unwrap();
        let envelope = Envelope::stored_event(
            Uuid::now_v7(),
            Cow::Borrowed("Order.OrderPlaced"),
            1,
            StreamId::new("Order", "o-1"),
            3,
            recorded_at,
            cause.correlation_id,
            cause.causation_id,
            Arc::from(r#"{"order_id":"o-1","total":12.5}"#),
        );
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(json["payload"], serde_json::json!({"order_id": "o-1", "total": 12.5}));
        assert_eq!(json["recorded_at"], "2023-11-14T22:13:20.123456Z");
        let back: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, envelope);
    }
}
