//! Serde attributes that cannot work on an element, each refused with why; the ones
//! that can (`deny_unknown_fields`, `rename_all`, ..) pass through (tests/serde_attributes.rs).
use protean::prelude::*;

#[aggregate]
pub struct Loan {
    pub title: String,
}

// An event is routed to its flow by a field of its stored JSON.
#[event(part_of = Loan)]
#[serde(transparent)]
pub struct LoanOpened {
    pub loan_id: Identifier<Loan>,
}

// Reads back what it wrote: one name for both directions.
#[command(part_of = Loan)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct OpenLoan {
    pub loan_id: Identifier<Loan>,
    #[serde(rename(serialize = "Title", deserialize = "title"))]
    pub title: String,
}

// A choice is stored as its name.
#[value_object]
#[serde(tag = "kind")]
pub enum Format {
    Paperback,
    AudioBook,
}

// protean stores the value object itself.
#[value_object]
#[serde(remote = "Self")]
pub struct ShelfMark {
    pub room: String,
}

// A projection's indexed fields are read in its stored JSON, by keys stores can index.
#[projection]
#[serde(into = "String", rename_all = "kebab-case")]
pub struct LoanView {
    #[key]
    pub loan_id: Identifier<Loan>,
    #[index]
    pub due_day: u32,
}

fn main() {}
