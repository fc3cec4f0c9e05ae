//! JSON text for stores, written through one reusable buffer per thread so that saving
//! an aggregate or an event allocates only the shared text it keeps.

use std::cell::RefCell;
use std::sync::Arc;

use serde::Serialize;

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Serializes `value` and hands the text to `keep`, which decides what to keep of it.
///
/// Only the serializing depends on `T`: the buffer is handled by `with_buffer`, compiled
/// once here rather than once per type in the crates of the user's aggregates.
pub(crate) fn with_json<T: Serialize + ?Sized, R>(
    value: &T,
    keep: impl FnOnce(&str) -> R,
) -> Result<R, serde_json::Error> {
    let mut keep = Some(keep);
    let mut kept = None;
    with_buffer(&mut |buffer| serde_json::to_writer(buffer, value), &mut |json| kept = keep.take().map(|k| k(json)))?;
    // `with_buffer` hands the text to `keep` once it is written without an error.
    kept.ok_or_else(|| serde::ser::Error::custom("the JSON text was not handed out"))
}

/// Writes JSON with `write` into this thread's buffer and hands the text to `keep`.
fn with_buffer(
    write: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), serde_json::Error>,
    keep: &mut dyn FnMut(&str),
) -> Result<(), serde_json::Error> {
    BUFFER.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut buffer) => {
            buffer.clear();
            write(&mut buffer)?;
            keep(as_text(&buffer)?);
            Ok(())
        }
        // Only when a `Serialize` impl itself saves through protean: use a buffer of its own.
        Err(_) => {
            let mut own = Vec::with_capacity(128);
            write(&mut own)?;
            keep(as_text(&own)?);
            Ok(())
        }
    })
}

/// The JSON text of `value`, shared.
pub(crate) fn to_shared<T: Serialize + ?Sized>(value: &T) -> Result<Arc<str>, serde_json::Error> {
    with_json(value, |json| Arc::from(json))
}

fn as_text(bytes: &[u8]) -> Result<&str, serde_json::Error> {
    // serde_json writes UTF-8 only; the error path is never taken but costs no panic.
    std::str::from_utf8(bytes).map_err(|e| serde::ser::Error::custom(e.to_string()))
}
