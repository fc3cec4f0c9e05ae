//! What the SQL stores share: how times and counts are kept in integer columns.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::StoreError;
use crate::store::envelope::StreamId;

/// A time as microseconds since the Unix epoch (what the `recorded_at` and
/// `claimed_until` columns hold).
pub(crate) fn micros(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The time a column of microseconds since the Unix epoch holds.
pub(crate) fn from_micros(micros: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

/// A count (version, sequence, offset) as a signed SQL integer.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored count (version, sequence) that must not be negative.
pub(crate) fn stored_count(value: i64, stream: &StreamId, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::corrupt(stream, 0, format!("the stored {what} is {value}")))
}
