//! What the SQL stores share: how counts (and, in SQLite, times) are kept in integer columns.

#[cfg(feature = "sqlite")]
use time::OffsetDateTime;

use super::StoreError;
use crate::store::envelope::StreamId;

/// A time as microseconds since the Unix epoch (what integer time columns hold). Every
/// time `time` can represent fits (its range is ±9999 years, far inside `i64` micros).
#[cfg(feature = "sqlite")]
pub(crate) fn micros(time: OffsetDateTime) -> i64 {
    i64::try_from(time.unix_timestamp_nanos() / 1_000).unwrap_or(if time.year() < 0 { i64::MIN } else { i64::MAX })
}

/// The time a column of microseconds since the Unix epoch holds; a value outside the
/// years -9999..=9999 is corrupt data, not clamped.
#[cfg(feature = "sqlite")]
pub(crate) fn from_micros(micros: i64, stream: &StreamId, position: u64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|e| StoreError::corrupt(stream, position, format!("the stored time {micros} µs: {e}")))
}

/// A count (version, sequence, offset) as a signed SQL integer.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored count (version, sequence) that must not be negative.
pub(crate) fn stored_count(value: i64, stream: &StreamId, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::corrupt(stream, 0, format!("the stored {what} is {value}")))
}
