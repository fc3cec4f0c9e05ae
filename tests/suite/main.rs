//! The integration tests that need no process of their own, one module each, built as one
//! binary: the domain-model DSL (`model`), the registry and the checks made when a
//! `Domain` is built (`registry`), the projection and process-manager macros
//! (`projections_macros`), the test kit's scenarios (`scenarios`), guarded changes
//! (`guarded`), protean-core's layers (`layers`) and what the docs state (`docs_true`).
//!
//! Each model a module declares is registered under that module's path, and every domain
//! here is built with `DomainBuilder::module`, so the modules do not see each other's
//! elements. Tests that need a process to themselves stay binaries of their own: those
//! that install a tracing subscriber, count threads, start or kill processes, run a
//! harness of their own or need a store feature (see `Cargo.toml`).

mod docs_true;
mod guarded;
mod layers;
mod model;
mod projections_macros;
mod registry;
mod scenarios;
