//! The engine: routing, units of work, versions and conflicts, delivery and its
//! failures, read models, and what the domain refuses to build; one module per concern.
//! The models they run on: the e-commerce example's, and those in `tests/support/engine/`,
//! each included as a module of this crate (so the domain can be built from it alone).

#[path = "../../examples/ecommerce/model.rs"]
#[allow(dead_code)]
mod ecommerce;

#[path = "../support/contended.rs"]
#[allow(dead_code)] // its tally is for the HTTP tests
mod contended;
#[path = "../support/engine/dups.rs"]
mod dups;
#[path = "../support/engine/lab.rs"]
mod lab;
#[path = "../support/engine/twice.rs"]
mod twice;
#[path = "../support/engine/twofail.rs"]
mod twofail;
#[path = "../support/engine/unapplied.rs"]
mod unapplied;
#[path = "../support/engine/unhandled.rs"]
mod unhandled;

mod building;
mod commands;
mod context;
mod delivery;
mod retries;
mod storage;
mod units;

use ecommerce::*;
use protean::prelude::*;

/// The module path of one of this crate's models, for `DomainBuilder::module`.
fn model(name: &str) -> String {
    format!("{}::{name}", module_path!())
}

fn shop() -> Domain {
    Domain::builder().module(model("ecommerce")).build().expect("the e-commerce model is valid")
}

fn sku(text: &str) -> Identifier<Inventory> {
    Identifier::parse(text).unwrap()
}

fn order_of(customer: &Identifier<Customer>, sku: &str, quantity: u32, cents: i64) -> PlaceOrder {
    PlaceOrder {
        order_id: Identifier::generate(),
        customer_id: customer.clone(),
        customer_name: "Ada".into(),
        customer_email: "ada@example.com".into(),
        lines: vec![OrderLine::new(sku, quantity, Money::new(cents, "EUR").unwrap()).unwrap()],
        shipping_address: None,
    }
}
