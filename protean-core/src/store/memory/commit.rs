//! Committing a [`Batch`] in memory: it touches every port's state (records, events,
//! delivered marks, handled records, projection rows, scheduled commands) under the one
//! lock, checking everything before writing anything.

use foldhash::HashMap;
use uuid::Uuid;

use super::rows::{query_in, row_in};
use super::{position, position_of_last, Delivery, Inner, Pending, StoredRow};
use crate::store::envelope::StreamId;
use crate::store::ports::check_reads;
use crate::store::{Batch, Cancel, Commit, Committed, Record, RowChange, Scheduled, StoreError, VersionConflict};

/// Commits `batch`: every check first, then every write, so it is all or nothing.
pub(super) fn commit(inner: &mut Inner, batch: Batch) -> Result<Vec<Committed>, StoreError> {
    let Batch { commits, handled, delivered, rows, rows_from, schedule, cancel, reads } = batch;
    if let Some(handled) = &handled {
        if inner.handled.contains_key(&(handled.handler.clone(), handled.message_id)) {
            return Err(StoreError::AlreadyHandled {
                handler: handled.handler.to_string(),
                message_id: handled.message_id,
            });
        }
    }
    // Check every version before writing anything: all or nothing.
    for commit in &commits {
        let actual = inner
            .streams
            .get(&*commit.stream.aggregate)
            .and_then(|by_id| by_id.get(&*commit.stream.id))
            .and_then(|slot| slot.record.as_ref().map(|_| slot.version))
            .unwrap_or(0);
        // After a removal the stream counts as absent: a writer that loaded the
        // removed aggregate (expected > 0) is refused, and the id may be added again.
        if actual != commit.expected_version {
            let stream = commit.stream.clone();
            return Err(VersionConflict { stream, expected: commit.expected_version, actual }.into());
        }
    }
    // What the unit decided on must still be as it read it.
    check_reads(&reads, |name, key| Ok(row_in(inner, name, None, key)), |query| query_in(inner, query))?;
    // And every row change: which apply, which are skipped.
    let (plan, from) = check_rows(inner, &rows, rows_from)?;
    if let Some(handled) = handled {
        inner.handled.insert((handled.handler, handled.message_id), handled.outcome);
    }
    let raises_events = commits.iter().any(|commit| !commit.events.is_empty());
    let committed = commits.into_iter().map(|commit| write(inner, commit)).collect();
    inner.mark_delivered(&delivered);
    // The changes come from the stored event `rows_from`, or from this batch's own
    // events, the last of which is now the log's last.
    let applied_through = from.or_else(|| raises_events.then(|| position_of_last(inner.log.len())));
    for (change, apply) in rows.into_iter().zip(plan) {
        if apply {
            apply_row(inner, change, applied_through);
        }
    }
    for cancel in &cancel {
        inner.scheduled.retain(|pending| !cancels(cancel, &pending.scheduled));
    }
    for scheduled in schedule {
        if !inner.scheduled.iter().any(|pending| pending.scheduled.id == scheduled.id) {
            inner.scheduled.push(Pending { scheduled, claimed_until: None });
        }
    }
    Ok(committed)
}

/// Checks a batch's row changes against the rule every store follows (docs/storage.md,
/// "Projection rows"): whether each one applies (`false`: skipped), and the
/// log position of `rows_from`; or the conflict that refuses the batch.
fn check_rows(
    inner: &Inner,
    rows: &[RowChange],
    rows_from: Option<Uuid>,
) -> Result<(Vec<bool>, Option<u64>), StoreError> {
    if rows.is_empty() {
        return Ok((Vec::new(), None));
    }
    let from = rows_from.and_then(|id| inner.log.iter().rposition(|e| e.id == id)).map(position);
    // (projection, key) → its version after the earlier changes of this batch.
    let mut changed: HashMap<(&str, &str), u64> = HashMap::default();
    let mut plan = Vec::with_capacity(rows.len());
    for change in rows {
        let conflict = |actual| {
            let stream = StreamId::new(change.projection.clone(), change.key.as_str());
            StoreError::from(VersionConflict { stream, expected: change.expected_version, actual })
        };
        // A projection the store does not keep has no serving copy to name.
        let Some(projected) = inner.projections.get(&*change.projection) else { return Err(conflict(0)) };
        if projected.build.is_some() || from.is_some_and(|at| at <= projected.built_through) {
            plan.push(false);
            continue;
        }
        let key = (&*change.projection, change.key.as_str());
        let actual = changed.get(&key).copied().unwrap_or_else(|| projected.serving_version(&change.key));
        if change.generation != projected.generation || change.expected_version != actual {
            return Err(conflict(actual));
        }
        changed.insert(key, if change.json.is_some() { actual + 1 } else { 0 });
        plan.push(true);
    }
    Ok((plan, from))
}

/// Writes (or deletes) one checked row of a serving copy, and moves the projection's
/// checkpoint to `applied_through`.
fn apply_row(inner: &mut Inner, change: RowChange, applied_through: Option<u64>) {
    let Some(projected) = inner.projections.get_mut(&*change.projection) else { return };
    let copy = projected.copies.entry(projected.generation).or_default();
    match change.json {
        Some(json) => {
            let version = copy.get(&change.key).map_or(0, |row| row.version) + 1;
            copy.insert(change.key, StoredRow { version, json });
        }
        None => {
            copy.remove(&change.key);
        }
    }
    if let Some(at) = applied_through {
        projected.checkpoint = projected.checkpoint.max(at);
    }
}

/// Writes one checked commit: its record, events and snapshot.
fn write(inner: &mut Inner, commit: Commit) -> Committed {
    let Inner { streams, log, delivery, .. } = inner;
    let by_id = match streams.get_mut(&*commit.stream.aggregate) {
        Some(by_id) => by_id,
        None => streams.entry(commit.stream.aggregate.clone()).or_default(),
    };
    let slot = match by_id.get_mut(&*commit.stream.id) {
        Some(slot) => slot,
        None => by_id.entry(commit.stream.id.clone()).or_default(),
    };
    // Versions keep rising across a removal, so a writer that loaded the removed
    // aggregate is refused even after the identity is added again.
    let base = if slot.record.is_some() { commit.expected_version } else { slot.version };
    let version = base.saturating_add(commit.advance);
    slot.version = version;
    slot.record = commit.state.map(|state| Record { version, state });
    let mut events = commit.events;
    for event in &mut events {
        slot.last_sequence += 1;
        event.sequence = slot.last_sequence;
        slot.events.push(log.len());
        log.push(event.stored());
        delivery.push(Delivery::default());
    }
    if let Some(snapshot) = commit.snapshot {
        slot.snapshots.insert(slot.last_sequence, snapshot);
    }
    Committed { stream: commit.stream, version, events }
}

/// Whether `cancel` drops `scheduled`: a deadline of the same instance, with its name.
fn cancels(cancel: &Cancel, scheduled: &Scheduled) -> bool {
    scheduled.owner == cancel.owner
        && scheduled.owner_key == cancel.owner_key
        && scheduled.name.as_deref() == Some(cancel.name.as_str())
}
