//! The integration tests that need no process of their own, one module each, built as one
//! binary: the domain-model DSL (`model`), the registry and the checks made when a
//! `Domain` is built (`registry`), the coded model checks (`checks`), the projection and process-manager macros
//! (`projections_macros`), the test kit's scenarios (`scenarios`), guarded changes
//! (`guarded`), protean-core's layers (`layers`) and what the docs state (`docs_true`).
//!
//! The examples' models are declared once, here, for the modules that use them; each model
//! a module declares itself is registered under that module's path, and every domain here
//! is built with `DomainBuilder::module`, so the modules do not see each other's elements. Tests that need a process to themselves stay binaries of their own: those
//! that install a tracing subscriber, count threads, start or kill processes, run a
//! harness of their own or need a store feature (see `Cargo.toml`).

#[path = "../../examples/ecommerce/model.rs"]
#[allow(dead_code)]
mod ecommerce;
#[path = "../../examples/project_management/model.rs"]
#[allow(dead_code)]
mod project_management;

mod checks;
mod contract;
mod docs_true;
mod guarded;
mod layers;
mod model;
mod projections_macros;
mod registry;
mod scenarios;

/// The module path of one of the examples' models declared here, for `DomainBuilder::module`.
fn example(name: &str) -> String {
    format!("{}::{name}", module_path!())
}
