//! The stored contract of a domain, checked in beside the code: `protean.lock`.
//!
//! An event, once stored, is read back for as long as its stream lives: by `apply`, by
//! upcasters, by projectors rebuilt years later, by other services. The lock records
//! what the domain stores and accepts — every event and command version with its fields
//! as stored (names after serde's renames, types in a stable schema language, required,
//! defaulted or skipped), each event's upcasters, each state-stored aggregate's record,
//! each process manager's state, and each projection's key, indexed fields and version — and [`check_lock`] compares the model with it, classifying each
//! change by a rule with a [`Verdict`]. A change stored data survives passes (the lock is
//! then stale: rewrite it); one it does not fails, with the fix.
//!
//! ```
//! # extern crate protean_core as protean;
//! use std::collections::BTreeMap;
//! use protean::contract::{diff, Lock, Outcome, Verdict};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // What streams hold: `total` stored as an integer (a lock as `Lock::of(model)` writes it).
//! let stored = Lock::parse(
//!     "protean-lock 1\n\n[event Order.OrderPlaced v1]\naggregate Order\nupcast none\nfield total int64 required\n",
//! )?;
//! // The model now: the same version, `total` as text.
//! let now = Lock::parse(
//!     "protean-lock 1\n\n[event Order.OrderPlaced v1]\naggregate Order\nupcast none\nfield total text required\n",
//! )?;
//! let names = BTreeMap::from([("Order.OrderPlaced".to_string(), "OrderPlaced".to_string())]);
//! let changes = diff(&stored, &now, &names);
//! assert_eq!((changes[0].rule, changes[0].verdict, changes[0].outcome), ("type-changed", Verdict::None, Outcome::Breaking));
//! assert_eq!(
//!     changes[0].message,
//!     "`OrderPlaced.total` changed from integer to text: bump `#[event(version = 2)]` and add an upcaster from 1, \
//!      or keep the old field"
//! );
//! # Ok(())
//! # }
//! ```
//!
//! In a test, [`assert_lock!`](crate::assert_lock) is the one line:
//! `protean::contract::assert_lock!(domain.model());`, and `PROTEAN_UPDATE_LOCK=1 cargo
//! test` rewrites the lock after an accepted change; [`check_lock`] is the same check with
//! the mode given. The guide's chapter on the contract (`docs/guide.md`, *The stored
//! contract*) lists the rules and shows a model checked against its lock.

mod change;
mod check;
mod findings;
mod lock;
mod rules;
mod schema;
mod ty;

pub use crate::assert_lock;
pub(crate) use check::read_lock;
pub use check::{check_lock, compare, merge, retire, LockError, LockMode, LockReport};
pub use findings::findings;
pub use lock::{Block, BlockKey, BlockKind, FieldLine, Lock, LockParseError, LockUpcasts};
pub use rules::{diff, Change, Outcome, Verdict};
pub use schema::{json_schema, json_schemas};
pub use ty::Ty;
