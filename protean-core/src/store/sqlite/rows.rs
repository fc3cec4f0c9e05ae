//! How rows read back, shared by the port files: events by column name, text that must
//! be text, and leases as stored. Bad stored values are typed errors, never panics.

use std::borrow::Cow;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::Row;
use uuid::Uuid;

use super::backend;
use crate::store::envelope::{Envelope, StreamId};
use crate::store::sql::{from_micros, stored_count};
use crate::store::{StoreError, MAX_LEASE};

/// The columns an [`Envelope`] is read from (by [`envelope`], by name).
pub(super) const EVENT_COLUMNS: &str =
    "id, aggregate, stream_id, sequence, type_name, version, payload, recorded_at, correlation_id, causation_id";

/// A stored value that does not read as the type asked for (text that is not valid
/// UTF-8, a blob or a number where text belongs) is corrupt data of `stream` at
/// `position`; any other error is the backend's.
pub(super) fn unreadable(e: rusqlite::Error, stream: &StreamId, position: u64, what: &str) -> StoreError {
    match e {
        rusqlite::Error::FromSqlConversionFailure(_, _, cause) => {
            StoreError::corrupt(stream, position, format!("the {what} does not read as text: {cause}"))
        }
        rusqlite::Error::InvalidColumnType(_, _, found) => {
            StoreError::corrupt(stream, position, format!("the {what} is stored as {found}, not as text"))
        }
        e => backend(e),
    }
}

/// The text `column` of a row of `stream` at `position`; unreadable text is
/// [`StoreError::Corrupt`].
pub(super) fn text(
    row: &Row<'_>,
    column: &str,
    stream: &StreamId,
    position: u64,
    what: &str,
) -> Result<String, StoreError> {
    row.get(column).map_err(|e| unreadable(e, stream, position, what))
}

/// The stream of an event row selected with [`EVENT_COLUMNS`]. When its aggregate or id
/// is not valid UTF-8 the error names the stream as well as it can (lossily).
pub(super) fn event_stream(row: &Row<'_>) -> Result<StreamId, StoreError> {
    let (aggregate, id) = (row.get_ref("aggregate").map_err(backend)?, row.get_ref("stream_id").map_err(backend)?);
    if let (Ok(aggregate), Ok(id)) = (aggregate.as_str(), id.as_str()) {
        return Ok(StreamId::new(aggregate.to_owned(), id));
    }
    let lossy = |value: ValueRef<'_>| match value {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => format!("{other:?}"),
    };
    let stream = StreamId::new(lossy(aggregate), lossy(id));
    // The position only locates the damage; when it is unreadable too, 0 says so.
    let sequence = match row.get::<_, i64>("sequence") {
        Ok(sequence) => u64::try_from(sequence).unwrap_or(0),
        Err(error) => {
            tracing::warn!(%stream, %error, "the sequence of an event with an unreadable stream is unreadable too");
            0
        }
    };
    Err(StoreError::corrupt(&stream, sequence, "the event's aggregate or stream id is not valid UTF-8 text"))
}

/// An envelope from a row selected with [`EVENT_COLUMNS`]; bad stored values are typed errors.
pub(super) fn envelope(row: &Row<'_>) -> Result<Envelope, StoreError> {
    let stream = event_stream(row)?;
    let sequence: i64 = row.get("sequence").map_err(backend)?;
    let position = stored_count(sequence, &stream, "event sequence")?;
    let uuid = |column: &str, what: &str| -> Result<Uuid, StoreError> {
        let text = text(row, column, &stream, position, what)?;
        Uuid::parse_str(&text).map_err(|e| StoreError::corrupt(&stream, position, format!("{what} `{text}`: {e}")))
    };
    let id = uuid("id", "event id")?;
    let correlation_id = uuid("correlation_id", "correlation id")?;
    let causation_id = uuid("causation_id", "causation id")?;
    let type_name = text(row, "type_name", &stream, position, "event type name")?;
    let version: i64 = row.get("version").map_err(backend)?;
    let version = u32::try_from(version)
        .map_err(|_| StoreError::corrupt(&stream, position, format!("event version {version} is out of range")))?;
    let payload = text(row, "payload", &stream, position, "event payload")?;
    let recorded: i64 = row.get("recorded_at").map_err(backend)?;
    let recorded_at = from_micros(recorded, &stream, position)?;
    Ok(Envelope::stored_event(
        id,
        Cow::Owned(type_name),
        version,
        stream,
        position,
        recorded_at,
        correlation_id,
        causation_id,
        payload.into(),
    ))
}

/// A lease in microseconds (at most [`MAX_LEASE`]).
pub(super) fn lease_micros(lease: Duration) -> i64 {
    i64::try_from(lease.min(MAX_LEASE).as_micros()).unwrap_or(i64::MAX)
}
