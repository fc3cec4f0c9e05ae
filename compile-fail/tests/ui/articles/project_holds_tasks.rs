//! "Design Small Aggregates", the naive design: a Project holding its tasks and time
//! entries. Task and TimeEntry are aggregates of their own, referenced by identity.
use protean::prelude::*;

#[aggregate]
pub struct Task {
    pub title: String,
}

#[aggregate]
pub struct TimeEntry {
    pub hours: f64,
}

#[aggregate]
pub struct Project {
    pub name: String,
    pub tasks: HasMany<Task>,
    pub time_entries: HasMany<TimeEntry>,
}

fn main() {}
