//! Reading rows back: events (the columns of an [`Envelope`]) and stored times, whatever
//! the database holds, as typed errors rather than panics. See docs/storage.md,
//! "Guarantees".

use std::borrow::Cow;

use sqlx::postgres::{PgRow, PgTypeInfo, PgValueFormat, PgValueRef};
use sqlx::{Postgres, Row};
use time::OffsetDateTime;

use super::backend;
use crate::store::envelope::{Envelope, StreamId};
use crate::store::sql::stored_count;
use crate::store::StoreError;

/// The columns an [`Envelope`] is read from.
pub(super) const EVENT_COLUMNS: &str =
    "id, aggregate, stream_id, sequence, type_name, version, payload, recorded_at, correlation_id, causation_id";

/// A `timestamptz` as read back: the time, or (`Err`) the microseconds since the Unix
/// epoch of one outside the years `time` represents (-9999..=9999), `'infinity'`
/// among them. sqlx's own decoding of [`OffsetDateTime`] panics on those.
pub(super) struct StoredTime(pub(super) Result<OffsetDateTime, i128>);

/// PostgreSQL's epoch, 2000-01-01T00:00:00Z, in microseconds since the Unix epoch.
const POSTGRES_EPOCH_MICROS: i128 = 946_684_800_000_000;

impl sqlx::Type<Postgres> for StoredTime {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as sqlx::Type<Postgres>>::type_info()
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for StoredTime {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        match value.format() {
            // Text is parsed, not added up: no panic there.
            PgValueFormat::Text => Ok(StoredTime(Ok(<OffsetDateTime as sqlx::Decode<Postgres>>::decode(value)?))),
            PgValueFormat::Binary => {
                let micros = i128::from(<i64 as sqlx::Decode<Postgres>>::decode(value)?) + POSTGRES_EPOCH_MICROS;
                Ok(StoredTime(OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).map_err(|_| micros)))
            }
        }
    }
}

/// The time in `column` of `row`; one `time` cannot represent is corrupt data of the
/// event at `position` of `stream`.
pub(super) fn stored_time(
    row: &PgRow,
    column: &str,
    stream: &StreamId,
    position: u64,
) -> Result<OffsetDateTime, StoreError> {
    let StoredTime(time) = row.try_get(column).map_err(backend)?;
    time.map_err(|micros| {
        StoreError::corrupt(
            stream,
            position,
            format!("the stored time {micros} µs after the Unix epoch is out of range"),
        )
    })
}

/// An envelope from a row selected with [`EVENT_COLUMNS`]; bad stored values are typed errors.
pub(super) fn envelope(row: &PgRow) -> Result<Envelope, StoreError> {
    let aggregate: String = row.try_get("aggregate").map_err(backend)?;
    let stream_id: String = row.try_get("stream_id").map_err(backend)?;
    let stream = StreamId::new(aggregate, stream_id);
    let sequence: i64 = row.try_get("sequence").map_err(backend)?;
    let position = stored_count(sequence, &stream, "event sequence")?;
    let version: i32 = row.try_get("version").map_err(backend)?;
    let version = u32::try_from(version)
        .map_err(|_| StoreError::corrupt(&stream, position, format!("event version {version} is out of range")))?;
    let recorded_at = stored_time(row, "recorded_at", &stream, position)?;
    let payload: String = row.try_get("payload").map_err(backend)?;
    let type_name: String = row.try_get("type_name").map_err(backend)?;
    Ok(Envelope::stored_event(
        row.try_get("id").map_err(backend)?,
        Cow::Owned(type_name),
        version,
        stream,
        position,
        recorded_at,
        row.try_get("correlation_id").map_err(backend)?,
        row.try_get("causation_id").map_err(backend)?,
        payload.into(),
    ))
}
