//! The arguments of the commit functions (`schema/commit_batch.sql`,
//! `schema/commit_group.sql`): a batch, or a group's batches one after another, as
//! arrays, with how many elements of each kind belong to each batch. See docs/storage.md,
//! "How commits work on PostgreSQL".

use sqlx::postgres::PgArguments;
use sqlx::Arguments;
use time::OffsetDateTime;
use uuid::Uuid;

use super::query::{query_check_expected, query_check_sql};
use crate::store::envelope::StreamId;
use crate::store::sql::to_i64;
use crate::store::{Batch, Cancel, RowChange, RowRead, Scheduled, StoreError};

/// The arrays of the commit functions: one batch's, or a group's batches one after
/// another, with how many elements of each kind belong to each batch.
#[derive(Default)]
pub(super) struct Arrays<'a> {
    unit_commits: Vec<i32>,
    unit_events: Vec<i32>,
    unit_delivered: Vec<i32>,
    unit_rows: Vec<i32>,
    unit_scheduled: Vec<i32>,
    unit_cancels: Vec<i32>,
    unit_reads: Vec<i32>,
    unit_queries: Vec<i32>,
    aggregates: Vec<&'a str>,
    ids: Vec<&'a str>,
    expected: Vec<i64>,
    advances: Vec<i64>,
    states: Vec<Option<&'a str>>,
    counts: Vec<i32>,
    snapshots: Vec<Option<&'a str>>,
    event_ids: Vec<Uuid>,
    type_names: Vec<&'a str>,
    versions: Vec<i32>,
    payloads: Vec<&'a str>,
    recorded: Vec<OffsetDateTime>,
    correlations: Vec<Uuid>,
    causations: Vec<Uuid>,
    handlers: Vec<Option<&'a str>>,
    message_ids: Vec<Option<Uuid>>,
    outcomes: Vec<Option<&'a str>>,
    delivered: Vec<Uuid>,
    rows: RowArrays<'a>,
    rows_from: Vec<Option<Uuid>>,
    scheduled: ScheduleArrays<'a>,
    reads: ReadArrays<'a>,
}

/// A number of a batch's elements, as the group function's count arrays take it.
fn unit_count(n: usize, what: &str) -> Result<i32, StoreError> {
    i32::try_from(n).map_err(|_| StoreError::Unsupported(format!("postgres: a batch of {n} {what} is too large")))
}

impl<'a> Arrays<'a> {
    /// The arguments of the commit functions, in their parameters' order: of
    /// `protean_commit_group` when `group` (the per-batch counts first, then every array,
    /// the handled records and row sources one per batch), else of `protean_commit_batch`
    /// for the one batch pushed (its handled record and row source as scalars).
    pub(super) fn arguments(&self, group: bool) -> Result<PgArguments, sqlx::Error> {
        let mut arguments = PgArguments::default();
        let add = |added: Result<(), sqlx::error::BoxDynError>| added.map_err(sqlx::Error::Encode);
        if group {
            add(arguments.add(&self.unit_commits))?;
            add(arguments.add(&self.unit_events))?;
            add(arguments.add(&self.unit_delivered))?;
            add(arguments.add(&self.unit_rows))?;
            add(arguments.add(&self.unit_scheduled))?;
            add(arguments.add(&self.unit_cancels))?;
            add(arguments.add(&self.unit_reads))?;
            add(arguments.add(&self.unit_queries))?;
        }
        add(arguments.add(&self.aggregates))?;
        add(arguments.add(&self.ids))?;
        add(arguments.add(&self.expected))?;
        add(arguments.add(&self.advances))?;
        add(arguments.add(&self.states))?;
        add(arguments.add(&self.counts))?;
        add(arguments.add(&self.event_ids))?;
        add(arguments.add(&self.type_names))?;
        add(arguments.add(&self.versions))?;
        add(arguments.add(&self.payloads))?;
        add(arguments.add(&self.recorded))?;
        add(arguments.add(&self.correlations))?;
        add(arguments.add(&self.causations))?;
        if group {
            add(arguments.add(&self.handlers))?;
            add(arguments.add(&self.message_ids))?;
            add(arguments.add(&self.outcomes))?;
        } else {
            add(arguments.add(self.handlers.first().copied().flatten()))?;
            add(arguments.add(self.message_ids.first().copied().flatten()))?;
            add(arguments.add(self.outcomes.first().copied().flatten()))?;
        }
        add(arguments.add(&self.delivered))?;
        add(arguments.add(&self.snapshots))?;
        let (changes, scheduled) = (&self.rows, &self.scheduled);
        add(arguments.add(&changes.projections))?;
        add(arguments.add(&changes.generations))?;
        add(arguments.add(&changes.keys))?;
        add(arguments.add(&changes.expected))?;
        add(arguments.add(&changes.json))?;
        if group {
            add(arguments.add(&self.rows_from))?;
        } else {
            add(arguments.add(self.rows_from.first().copied().flatten()))?;
        }
        add(arguments.add(&scheduled.ids))?;
        add(arguments.add(&scheduled.owners))?;
        add(arguments.add(&scheduled.keys))?;
        add(arguments.add(&scheduled.names))?;
        add(arguments.add(&scheduled.due))?;
        add(arguments.add(&scheduled.types))?;
        add(arguments.add(&scheduled.payloads))?;
        add(arguments.add(&scheduled.correlations))?;
        add(arguments.add(&scheduled.causations))?;
        add(arguments.add(&scheduled.cancel_owners))?;
        add(arguments.add(&scheduled.cancel_keys))?;
        add(arguments.add(&scheduled.cancel_names))?;
        let reads = &self.reads;
        add(arguments.add(&reads.projections))?;
        add(arguments.add(&reads.keys))?;
        add(arguments.add(&reads.generations))?;
        add(arguments.add(&reads.versions))?;
        add(arguments.add(&reads.query_projections))?;
        add(arguments.add(&reads.query_sql))?;
        add(arguments.add(&reads.query_expected))?;
        Ok(arguments)
    }

    /// Appends one batch; on an error (a count that does not fit the function's integer
    /// parameters), appends nothing.
    pub(super) fn push(&mut self, batch: &'a Batch) -> Result<(), StoreError> {
        let events: usize = batch.commits.iter().map(|c| c.events.len()).sum();
        let mut counts = Vec::with_capacity(batch.commits.len());
        let mut versions = Vec::with_capacity(events);
        for commit in &batch.commits {
            counts.push(to_i32(commit.events.len(), &commit.stream, "the number of events")?);
            for event in &commit.events {
                versions.push(to_i32(event.version, &commit.stream, "the event version")?);
            }
        }
        // The reads into arrays of their own, first: writing a query may fail, and nothing
        // of this batch is appended until nothing can.
        let mut reads = ReadArrays::default();
        let (keys, queries) = reads.push(&batch.reads)?;
        let units = [
            unit_count(keys, "rows read")?,
            unit_count(queries, "queries read")?,
            unit_count(batch.commits.len(), "commits")?,
            unit_count(events, "events")?,
            unit_count(batch.delivered.len(), "delivered events")?,
            unit_count(batch.rows.len(), "row changes")?,
            unit_count(batch.schedule.len(), "scheduled commands")?,
            unit_count(batch.cancel.len(), "cancellations")?,
        ];
        self.unit_reads.push(units[0]);
        self.unit_queries.push(units[1]);
        self.unit_commits.push(units[2]);
        self.unit_events.push(units[3]);
        self.unit_delivered.push(units[4]);
        self.unit_rows.push(units[5]);
        self.unit_scheduled.push(units[6]);
        self.unit_cancels.push(units[7]);
        self.reads.append(reads);
        self.counts.extend(counts);
        self.versions.extend(versions);
        for commit in &batch.commits {
            self.aggregates.push(&commit.stream.aggregate);
            self.ids.push(&commit.stream.id);
            self.expected.push(to_i64(commit.expected_version));
            self.advances.push(to_i64(commit.advance));
            self.states.push(commit.state.as_deref());
            self.snapshots.push(commit.snapshot.as_deref());
            for event in &commit.events {
                self.event_ids.push(event.id);
                self.type_names.push(&event.type_name);
                self.payloads.push(&event.payload);
                self.recorded.push(event.recorded_at);
                self.correlations.push(event.correlation_id);
                self.causations.push(event.causation_id);
            }
        }
        let handled = batch.handled.as_ref();
        self.handlers.push(handled.map(|h| &*h.handler));
        self.message_ids.push(handled.map(|h| h.message_id));
        self.outcomes.push(handled.and_then(|h| h.outcome.as_deref()));
        self.delivered.extend(&batch.delivered);
        self.rows.push(&batch.rows);
        self.rows_from.push(batch.rows_from);
        self.scheduled.push(&batch.schedule, &batch.cancel);
        Ok(())
    }
}

/// The row changes of a batch (or of a group's batches, one after another), as the
/// commit functions' arrays.
#[derive(Default)]
struct RowArrays<'a> {
    projections: Vec<&'a str>,
    generations: Vec<i64>,
    keys: Vec<&'a str>,
    expected: Vec<i64>,
    json: Vec<Option<&'a str>>,
}

impl<'a> RowArrays<'a> {
    /// Appends `rows`.
    fn push(&mut self, rows: &'a [RowChange]) {
        self.projections.extend(rows.iter().map(|r| &*r.projection));
        self.generations.extend(rows.iter().map(|r| to_i64(r.generation)));
        self.keys.extend(rows.iter().map(|r| r.key.as_str()));
        self.expected.extend(rows.iter().map(|r| to_i64(r.expected_version)));
        self.json.extend(rows.iter().map(|r| r.json.as_deref()));
    }
}

/// What a batch read (or a group's batches, one after another), as the commit functions'
/// arrays: the rows read by key, and the queries, each as the statement that checks it
/// and the rows it returned.
#[derive(Default)]
struct ReadArrays<'a> {
    projections: Vec<&'a str>,
    keys: Vec<&'a str>,
    generations: Vec<Option<i64>>,
    versions: Vec<i64>,
    query_projections: Vec<&'a str>,
    query_sql: Vec<String>,
    query_expected: Vec<String>,
}

impl<'a> ReadArrays<'a> {
    /// Appends `reads`; returns how many rows by key and how many queries it appended.
    /// On an error (a query the store cannot write) it stops part way: build into a new
    /// one and [`append`](Self::append) it once done.
    fn push(&mut self, reads: &'a [RowRead]) -> Result<(usize, usize), StoreError> {
        let (mut keys, mut queries) = (0, 0);
        for read in reads {
            match read {
                RowRead::Key { projection, key, found } => {
                    self.projections.push(projection);
                    self.keys.push(key);
                    self.generations.push(found.as_ref().map(|f| to_i64(f.generation)));
                    self.versions.push(found.as_ref().map_or(0, |f| to_i64(f.version)));
                    keys += 1;
                }
                RowRead::Query { query, found } => {
                    self.query_sql.push(query_check_sql(query)?);
                    self.query_projections.push(&query.projection);
                    self.query_expected.push(query_check_expected(found));
                    queries += 1;
                }
            }
        }
        Ok((keys, queries))
    }

    /// Appends `other`'s arrays.
    fn append(&mut self, other: ReadArrays<'a>) {
        self.projections.extend(other.projections);
        self.keys.extend(other.keys);
        self.generations.extend(other.generations);
        self.versions.extend(other.versions);
        self.query_projections.extend(other.query_projections);
        self.query_sql.extend(other.query_sql);
        self.query_expected.extend(other.query_expected);
    }
}

/// The scheduled commands and cancellations of a batch (or of a group's batches, one
/// after another), as the commit functions' arrays.
#[derive(Default)]
struct ScheduleArrays<'a> {
    ids: Vec<Uuid>,
    owners: Vec<&'a str>,
    keys: Vec<&'a str>,
    names: Vec<Option<&'a str>>,
    due: Vec<OffsetDateTime>,
    types: Vec<&'a str>,
    payloads: Vec<&'a str>,
    correlations: Vec<Uuid>,
    causations: Vec<Uuid>,
    cancel_owners: Vec<&'a str>,
    cancel_keys: Vec<&'a str>,
    cancel_names: Vec<&'a str>,
}

impl<'a> ScheduleArrays<'a> {
    /// Appends `schedule` and `cancel`.
    fn push(&mut self, schedule: &'a [Scheduled], cancel: &'a [Cancel]) {
        self.ids.extend(schedule.iter().map(|s| s.id));
        self.owners.extend(schedule.iter().map(|s| &*s.owner));
        self.keys.extend(schedule.iter().map(|s| s.owner_key.as_str()));
        self.names.extend(schedule.iter().map(|s| s.name.as_deref()));
        self.due.extend(schedule.iter().map(|s| s.due_at));
        self.types.extend(schedule.iter().map(|s| &*s.type_name));
        self.payloads.extend(schedule.iter().map(|s| &*s.payload));
        self.correlations.extend(schedule.iter().map(|s| s.correlation_id));
        self.causations.extend(schedule.iter().map(|s| s.causation_id));
        self.cancel_owners.extend(cancel.iter().map(|c| &*c.owner));
        self.cancel_keys.extend(cancel.iter().map(|c| c.owner_key.as_str()));
        self.cancel_names.extend(cancel.iter().map(|c| c.name.as_str()));
    }
}

/// A count the function's `integer` parameters take (an event version, a commit's number
/// of events); a larger one is refused rather than cut.
fn to_i32(n: impl TryInto<i32> + Copy + std::fmt::Display, stream: &StreamId, what: &str) -> Result<i32, StoreError> {
    n.try_into().map_err(|_| {
        StoreError::Unsupported(format!("postgres: {what} {n} of {stream} does not fit an integer column"))
    })
}
