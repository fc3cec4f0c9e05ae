//! JSON text for stores, written through one reusable buffer per thread so that saving
//! an aggregate or an event allocates only the shared text it keeps.

use std::cell::RefCell;
use std::sync::Arc;

use serde::Serialize;

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Serializes `value` and hands the text to `keep`, which decides what to keep of it.
pub(crate) fn with_json<T: Serialize + ?Sized, R>(
    value: &T,
    keep: impl FnOnce(&str) -> R,
) -> Result<R, serde_json::Error> {
    BUFFER.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut buffer) => {
            buffer.clear();
            serde_json::to_writer(&mut *buffer, value)?;
            Ok(keep(as_text(&buffer)?))
        }
        // Only when a `Serialize` impl itself saves through protean: use a buffer of its own.
        Err(_) => {
            let text = serde_json::to_string(value)?;
            Ok(keep(&text))
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
