//! Group commit: the batches of several units of work in one statement
//! (`schema/commit_group.sql`), so one round trip and one transaction, each batch in a
//! subtransaction of its own so that it fails alone. A writer, a task of its own, takes
//! the batches waiting as a group and answers each once the transaction has committed.
//! See docs/storage.md, "How commits work on PostgreSQL".

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use super::arrays::Arrays;
use super::commit::{committed, wakes_workers, Refusal, RETRIED};
use super::{backend, PostgresStore};
use crate::store::{Batch, Committed, StoreError};

/// The most batches one group takes. Each is a subtransaction, and a transaction with more
/// than 64 of them that wrote makes every snapshot taken meanwhile look further
/// (PostgreSQL's subtransaction cache overflows), so a group stays well below that.
const MAX_GROUP: usize = 32;

/// The groups in flight at once by default: while one commits, the next one forms, and
/// may commit too.
pub(super) const DEFAULT_GROUPS_IN_FLIGHT: usize = 2;

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
struct UnitError {
    code: String,
    message: String,
    detail: Option<String>,
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

/// One row of the group function: the unit's number, what the commit function returned,
/// or the SQLSTATE, message and detail of what it raised.
type GroupRow = (i32, Option<Vec<i64>>, Option<String>, Option<String>, Option<String>);

impl PostgresStore {
    /// Queues `batch` for the next group and waits for its answer, starting a writer when
    /// fewer than the limit are at work. Outside a tokio runtime (nothing to run a writer
    /// on), commits it alone.
    pub(super) async fn commit_queued(&self, queue: &Arc<GroupQueue>, batch: Batch) -> Answer {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.commit_alone(batch).await;
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
    pub(super) async fn commit_groups(&self, batches: Vec<Batch>) -> Vec<Answer> {
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
            Unit::Retry(batch) => self.commit_alone(batch).await,
        }
    }

    /// Commits `batches` as one group: one statement, one transaction (a single batch
    /// goes through the commit function directly, as an ungrouped commit does).
    async fn commit_units(&self, batches: Vec<Batch>) -> Vec<Unit> {
        if batches.len() <= 1 {
            let mut units = Vec::with_capacity(1);
            for batch in batches {
                units.push(Unit::Done(self.commit_alone(batch).await));
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
