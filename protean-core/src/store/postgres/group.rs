//! Group commit: the batches of several units of work in one statement, so one round
//! trip and one transaction (`schema/commit_group.sql`), each batch in a subtransaction
//! of its own so that it fails alone.
//!
//! [`PostgresStore::commit`](crate::store::Records::commit) queues its batch and waits for
//! its answer. The first batch to find fewer than the store's limit of groups in flight
//! starts a writer: a task of its own on the caller's runtime, which takes every batch
//! waiting (up to [`MAX_GROUP`]) as one group, commits it, answers each batch once the
//! statement (and so the transaction) has committed, and goes on with the batches that
//! queued meanwhile, until none wait. A caller that stops waiting (its future dropped)
//! changes nothing for the others: the writer is not its future. A batch whose caller
//! stopped waiting before its group formed is not committed.

use std::sync::{Arc, Mutex, PoisonError};

use sqlx::postgres::PgArguments;
use sqlx::Arguments;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::projections::{ReadArrays, RowArrays, ScheduleArrays};
use super::{backend, to_i32, wakes_workers, PostgresStore};
use crate::store::sql::{stored_count, to_i64};
use crate::store::{Batch, Commit, Committed, StoreError};

/// The most batches one group takes. Each is a subtransaction, and a transaction with more
/// than 64 of them that wrote makes every snapshot taken meanwhile look further
/// (PostgreSQL's subtransaction cache overflows), so a group stays well below that.
pub(super) const MAX_GROUP: usize = 32;

/// The groups in flight at once by default: while one commits, the next one forms, and
/// may commit too.
pub(super) const DEFAULT_GROUPS_IN_FLIGHT: usize = 2;

/// The SQLSTATEs of a unit that lost a deadlock or a serialization check to another
/// transaction: it wrote nothing, and is committed again on its own, after its group.
const RETRIED: [&str; 2] = ["40P01", "40001"];

/// How many times a batch committed alone is committed again after losing a deadlock or
/// a serialization check, before its caller gets the error.
pub(super) const LOST_RETRIES: u32 = 8;

/// Whether `error` says its transaction lost a deadlock or a serialization check (it
/// wrote nothing, and may simply be run again).
pub(super) fn lost(error: &dyn sqlx::error::DatabaseError) -> bool {
    error.code().is_some_and(|code| RETRIED.contains(&&*code))
}

/// The answer to one batch.
type Answer = Result<Vec<Committed>, StoreError>;

/// A batch waiting for its group, and where its answer goes.
#[derive(Debug)]
struct Waiting {
    batch: Batch,
    answer: oneshot::Sender<Answer>,
}

/// The batches waiting for a group, and how many groups are in flight.
#[derive(Debug, Default)]
struct QueueState {
    waiting: Vec<Waiting>,
    in_flight: usize,
}

/// A store's queue of batches for group commit, shared by its clones.
#[derive(Debug)]
pub(super) struct GroupQueue {
    state: Mutex<QueueState>,
    groups_in_flight: usize,
}

impl GroupQueue {
    /// An empty queue, with at most `groups_in_flight` groups committing at once (at
    /// least one).
    pub(super) fn new(groups_in_flight: usize) -> Self {
        GroupQueue { state: Mutex::default(), groups_in_flight: groups_in_flight.max(1) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts a writer out of the groups in flight if it ends without doing so itself (its
/// task dropped with its runtime, or a panic), so later commits start writers again.
struct InFlight<'q> {
    queue: &'q GroupQueue,
    armed: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.queue.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
        }
    }
}

/// An error the commit function raised for one batch of a group, caught there (the group
/// went on without that batch): its SQLSTATE, message and detail.
#[derive(Debug, thiserror::Error)]
#[error("{message} (SQLSTATE {code}{})", detail.as_deref().map(|d| format!(", DETAIL: {d}")).unwrap_or_default())]
pub(super) struct UnitError {
    code: String,
    message: String,
    detail: Option<String>,
}

/// What the commit function raised for one batch: its SQLSTATE and detail, and the error
/// as it came (what the batch is answered when the SQLSTATE is not one of protean's).
pub(super) struct Refusal {
    pub(super) code: Option<String>,
    pub(super) detail: Option<String>,
    pub(super) error: StoreError,
}

/// How one batch of a group came out of the statement.
enum Unit {
    /// Committed, or refused before the statement (a count too large).
    Done(Answer),
    /// Refused by the commit function: the refusal is yet to be made a [`StoreError`]
    /// (which may read the store).
    Refused(Batch, Refusal),
    /// Lost a deadlock or a serialization check: to commit again on its own.
    Retry(Batch),
}

/// The arrays of the commit functions: one batch's, or a group's batches one after
/// another, with how many elements of each kind belong to each batch.
#[derive(Default)]
pub(super) struct Arrays<'a> {
    pub(super) unit_commits: Vec<i32>,
    pub(super) unit_events: Vec<i32>,
    pub(super) unit_delivered: Vec<i32>,
    pub(super) unit_rows: Vec<i32>,
    pub(super) unit_scheduled: Vec<i32>,
    pub(super) unit_cancels: Vec<i32>,
    pub(super) unit_reads: Vec<i32>,
    pub(super) unit_queries: Vec<i32>,
    pub(super) aggregates: Vec<&'a str>,
    pub(super) ids: Vec<&'a str>,
    pub(super) expected: Vec<i64>,
    pub(super) advances: Vec<i64>,
    pub(super) states: Vec<Option<&'a str>>,
    pub(super) counts: Vec<i32>,
    pub(super) snapshots: Vec<Option<&'a str>>,
    pub(super) event_ids: Vec<Uuid>,
    pub(super) type_names: Vec<&'a str>,
    pub(super) versions: Vec<i32>,
    pub(super) payloads: Vec<&'a str>,
    pub(super) recorded: Vec<OffsetDateTime>,
    pub(super) correlations: Vec<Uuid>,
    pub(super) causations: Vec<Uuid>,
    pub(super) handlers: Vec<Option<&'a str>>,
    pub(super) message_ids: Vec<Option<Uuid>>,
    pub(super) outcomes: Vec<Option<&'a str>>,
    pub(super) delivered: Vec<Uuid>,
    pub(super) rows: RowArrays<'a>,
    pub(super) rows_from: Vec<Option<Uuid>>,
    pub(super) scheduled: ScheduleArrays<'a>,
    pub(super) reads: ReadArrays<'a>,
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

/// What a committed batch wrote, from what the commit function returned: each commit's
/// sequence before its events, then its new version.
pub(super) fn committed(commits: Vec<Commit>, returned: &[i64]) -> Answer {
    let (firsts, versions) = returned.split_at(returned.len() / 2);
    let mut committed = Vec::with_capacity(commits.len());
    for ((commit, &first), &version) in commits.into_iter().zip(firsts).zip(versions) {
        let Commit { stream, mut events, .. } = commit;
        let first = stored_count(first, &stream, "sequence")?;
        for (offset, event) in (1u64..).zip(events.iter_mut()) {
            event.sequence = first + offset;
        }
        let version = stored_count(version, &stream, "version")?;
        committed.push(Committed { stream, version, events });
    }
    Ok(committed)
}

/// One row of the group function: the unit's number, what the commit function returned,
/// or the SQLSTATE, message and detail of what it raised.
type GroupRow = (i32, Option<Vec<i64>>, Option<String>, Option<String>, Option<String>);

impl PostgresStore {
    /// Queues `batch` for the next group and waits for its answer, starting a writer when
    /// fewer than the limit are at work. Outside a tokio runtime (nothing to run a writer
    /// on), commits it alone.
    pub(super) async fn commit_queued(&self, queue: &Arc<GroupQueue>, batch: Batch) -> Answer {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.commit_now(batch).await;
        };
        let (answer, answered) = oneshot::channel();
        let lead = {
            let mut state = queue.lock();
            state.waiting.push(Waiting { batch, answer });
            let lead = state.in_flight < queue.groups_in_flight;
            if lead {
                state.in_flight += 1;
            }
            lead
        };
        if lead {
            runtime.spawn(self.clone().write_groups(Arc::clone(queue)));
        }
        answered.await.unwrap_or_else(|_| {
            Err(StoreError::backend(
                "postgres",
                UnitError {
                    code: "XX000".into(),
                    message: "the group commit writer stopped before answering (its runtime shut down?); the batch \
                              may or may not have been committed"
                        .into(),
                    detail: None,
                },
            ))
        })
    }

    /// A writer: commits the waiting batches, a group at a time, until none wait.
    async fn write_groups(self, queue: Arc<GroupQueue>) {
        let mut in_flight = InFlight { queue: &queue, armed: true };
        loop {
            let group: Vec<Waiting> = {
                let mut state = queue.lock();
                if state.waiting.is_empty() {
                    // Counted out under the lock that queues: a batch queued after this
                    // starts a writer of its own.
                    state.in_flight = state.in_flight.saturating_sub(1);
                    in_flight.armed = false;
                    return;
                }
                let n = state.waiting.len().min(MAX_GROUP);
                state.waiting.drain(..n).collect()
            };
            let (batches, answers): (Vec<Batch>, Vec<oneshot::Sender<Answer>>) =
                group.into_iter().filter(|w| !w.answer.is_closed()).map(|w| (w.batch, w.answer)).unzip();
            let units = self.commit_units(batches).await;
            // The committed first; then the refused, whose errors may read the store.
            let mut later = Vec::new();
            for (unit, answer) in units.into_iter().zip(answers) {
                match unit {
                    Unit::Done(outcome) => {
                        let _ = answer.send(outcome);
                    }
                    unit => later.push((unit, answer)),
                }
            }
            for (unit, answer) in later {
                let _ = answer.send(self.settle(unit).await);
            }
        }
    }

    /// `batches` as groups of at most [`MAX_GROUP`], one statement each, answered in order.
    pub(super) async fn commit_group_now(&self, batches: Vec<Batch>) -> Vec<Answer> {
        let mut answers = Vec::with_capacity(batches.len());
        let mut batches = batches.into_iter().peekable();
        while batches.peek().is_some() {
            let group: Vec<Batch> = batches.by_ref().take(MAX_GROUP).collect();
            for unit in self.commit_units(group).await {
                answers.push(self.settle(unit).await);
            }
        }
        answers
    }

    /// The answer to a unit.
    async fn settle(&self, unit: Unit) -> Answer {
        match unit {
            Unit::Done(outcome) => outcome,
            Unit::Refused(batch, refusal) => Err(self.refused(&batch, refusal).await),
            Unit::Retry(batch) => self.commit_now(batch).await,
        }
    }

    /// Commits `batches` as one group: one statement, one transaction (a single batch
    /// goes through the commit function directly, as an ungrouped commit does).
    async fn commit_units(&self, batches: Vec<Batch>) -> Vec<Unit> {
        if batches.len() <= 1 {
            let mut units = Vec::with_capacity(1);
            for batch in batches {
                units.push(Unit::Done(self.commit_now(batch).await));
            }
            return units;
        }
        let mut units: Vec<Option<Unit>> = batches.iter().map(|_| None).collect();
        let mut members = Vec::with_capacity(batches.len());
        let returned = {
            let mut arrays = Arrays::default();
            for (i, batch) in batches.iter().enumerate() {
                match arrays.push(batch) {
                    Ok(()) => members.push(i),
                    Err(e) => units[i] = Some(Unit::Done(Err(e))),
                }
            }
            self.run_group(&arrays).await
        };
        let mut batches: Vec<Option<Batch>> = batches.into_iter().map(Some).collect();
        match returned {
            Err(e) => {
                let error = backend(e);
                for &i in &members {
                    units[i] = Some(Unit::Done(Err(error.clone())));
                }
            }
            Ok(rows) if rows.len() != members.len() || rows.iter().zip(1..).any(|(row, n)| row.0 != n) => {
                let error = StoreError::backend(
                    "postgres",
                    UnitError {
                        code: "XX000".into(),
                        message: format!(
                            "the group commit function answered {} rows for {} batches, not one per batch in order",
                            rows.len(),
                            members.len()
                        ),
                        detail: None,
                    },
                );
                for &i in &members {
                    units[i] = Some(Unit::Done(Err(error.clone())));
                }
            }
            Ok(rows) => {
                let mut wakes = false;
                for ((_, result, code, message, detail), &i) in rows.into_iter().zip(&members) {
                    let Some(batch) = batches[i].take() else { continue };
                    units[i] = Some(match (result, code) {
                        (Some(returned), _) => {
                            wakes |= wakes_workers(&batch);
                            Unit::Done(committed(batch.commits, &returned))
                        }
                        (None, Some(code)) if RETRIED.contains(&code.as_str()) => Unit::Retry(batch),
                        (None, code) => {
                            let code_text = code.clone().unwrap_or_default();
                            let error = StoreError::backend(
                                "postgres",
                                UnitError {
                                    code: code_text,
                                    message: message.unwrap_or_default(),
                                    detail: detail.clone(),
                                },
                            );
                            Unit::Refused(batch, Refusal { code, detail, error })
                        }
                    });
                }
                // One wake-up for the group, after its transaction committed.
                if wakes {
                    self.notifier.request();
                }
            }
        }
        units
            .into_iter()
            .map(|unit| {
                unit.unwrap_or_else(|| {
                    Unit::Done(Err(StoreError::Unsupported("postgres: a batch of a group was not answered".into())))
                })
            })
            .collect()
    }

    /// The group function on `arrays`: one row per batch.
    async fn run_group(&self, arrays: &Arrays<'_>) -> Result<Vec<GroupRow>, sqlx::Error> {
        sqlx::query_as_with(
            "SELECT o_unit, o_result, o_code, o_message, o_detail FROM protean_commit_group($1, $2, $3, $4, $5, $6,
             $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28,
             $29, $30, $31, $32, $33, $34, $35, $36, $37, $38, $39, $40, $41, $42, $43, $44, $45, $46, $47, $48, $49, $50, $51)",
            arrays.arguments(true)?,
        )
        .fetch_all(&self.pool)
        .await
    }
}
