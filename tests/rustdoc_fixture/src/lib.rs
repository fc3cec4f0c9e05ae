//! A library lending books: the model the documentation test reads.
#![warn(missing_docs)]

pub mod loans;
pub mod members;
pub mod reports;
pub mod shelves;
