//! The stored contract of a domain, checked in beside the code: `protean.lock`.
//!
//! An event, once stored, is read back for as long as its stream lives: by `apply`, by
//! upcasters, by projectors rebuilt years later, by other services. The lock records
//! what the domain stores and accepts — every event and command version with its fields
//! as stored (names after serde's renames, types in a stable schema language, required,
//! defaulted or skipped), each event's upcasters, and each projection's key, indexed
//! fields and version — and [`check_lock`] compares the model with it, classifying each
//! change by a rule with a [`Verdict`]. A change stored data survives passes (the lock is
//! then stale: rewrite it); one it does not fails, with the fix.
//!
//! ```
//! use protean::contract::{check_lock, LockMode};
//! use protean::runtime::Domain;
//!
//! mod v1 {
//!     use protean::prelude::*;
//!     #[aggregate]
//!     pub struct Order { pub total: i64 }
//!     #[command(part_of = Order)]
//!     pub struct Place { pub total: i64 }
//!     #[event(part_of = Order, name = "Order.Placed")]
//!     pub struct Placed { pub total: i64 }
//!     pub struct Orders;
//!     #[handler(part_of = Order)]
//!     impl Orders {
//!         async fn place(ctx: &mut Context<Order>, cmd: Place) -> Result<(), DomainError> {
//!             let mut order = Order::builder().total(cmd.total).build()?;
//!             order.raise(Placed { total: cmd.total });
//!             ctx.add(order)?;
//!             Ok(())
//!         }
//!     }
//! }
//!
//! mod v2 {
//!     use protean::prelude::*;
//!     #[aggregate]
//!     pub struct Order { pub total: String }
//!     #[command(part_of = Order)]
//!     pub struct Place { pub total: String }
//!     // The same stored event, its total now text: events stored as v1 hold integers.
//!     #[event(part_of = Order, name = "Order.Placed")]
//!     pub struct Placed { pub total: String }
//!     pub struct Orders;
//!     #[handler(part_of = Order)]
//!     impl Orders {
//!         async fn place(ctx: &mut Context<Order>, cmd: Place) -> Result<(), DomainError> {
//!             let mut order = Order::builder().total(cmd.total.clone()).build()?;
//!             order.raise(Placed { total: cmd.total });
//!             ctx.add(order)?;
//!             Ok(())
//!         }
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("protean-lock-doc-{}", std::process::id()));
//! let lock = dir.join("protean.lock");
//! let before = Domain::builder().module(module_path!().to_owned() + "::v1").build()?;
//! check_lock(before.model(), &lock, LockMode::Check)?; // no lock yet: written
//!
//! let after = Domain::builder().module(module_path!().to_owned() + "::v2").build()?;
//! let failure = check_lock(after.model(), &lock, LockMode::Check).unwrap_err();
//! assert!(failure.to_string().contains(
//!     "`Placed.total` changed from integer to text: bump `#[event(version = 2)]` and add an upcaster from 1, \
//!      or keep the old field"
//! ));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! In a test, [`assert_lock!`](crate::assert_lock) is the one line:
//! `protean::contract::assert_lock!(domain.model());`, and `PROTEAN_UPDATE_LOCK=1 cargo
//! test` rewrites the lock after an accepted change. The guide's chapter on the contract
//! lists the rules.

mod check;
mod lock;
mod rules;
mod schema;

pub use crate::assert_lock;
pub use check::{check_lock, compare, merge, retire, LockError, LockMode, LockReport};
pub use lock::{Block, BlockKey, BlockKind, FieldLine, Lock, LockParseError, LockUpcasts, Ty};
pub use rules::{diff, Change, Outcome, Verdict};
pub use schema::{json_schema, json_schemas};
