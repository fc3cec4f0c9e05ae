//! A unit of work's batch, written in the write transaction (or savepoint) the writer
//! has open: each port's part of it, by that port's file. See docs/storage.md.

use rusqlite::Connection;

use super::{deliveries, outbox, projections, records, schedule};
use crate::store::{Batch, Committed, StoreError};

/// Writes a unit of work's batch inside the transaction (or savepoint) open on
/// `connection`, which must be a write transaction: first checks what the unit read
/// (see [`projections::check_reads`]), then writes the handled record, the aggregates
/// and their events, the delivered marks, the projection rows (see
/// [`projections::apply_rows`]), then the cancelled deadlines and the scheduled
/// commands (in that order, so a deadline cancelled and scheduled again in one step
/// stays). On an error the caller rolls back what it wrote (the transaction, or the
/// unit's savepoint in a group).
pub(super) fn apply(connection: &Connection, batch: Batch) -> Result<Vec<Committed>, StoreError> {
    let Batch { commits, handled, delivered, rows, rows_from, schedule: scheduled, cancel, reads } = batch;
    let tx = connection;
    // What the unit decided on must still be as it read it: checked in this transaction,
    // which no other writer shares (one writer thread, `BEGIN IMMEDIATE`).
    projections::check_reads(tx, &reads)?;
    if let Some(handled) = &handled {
        deliveries::record_handled(tx, handled)?;
    }
    let wrote_events = commits.iter().any(|commit| !commit.events.is_empty());
    let mut committed = Vec::with_capacity(commits.len());
    for commit in commits {
        committed.push(records::write(tx, commit)?);
    }
    outbox::mark(tx, &delivered)?;
    projections::apply_rows(tx, rows, rows_from, wrote_events)?;
    schedule::cancel(tx, &cancel)?;
    schedule::insert(tx, &scheduled)?;
    Ok(committed)
}
