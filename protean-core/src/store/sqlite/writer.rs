//! The writer thread: it runs the write jobs in the order they were sent, and commits
//! the units of work waiting in its queue together (group commit), each in its own
//! savepoint of one `BEGIN IMMEDIATE` transaction, answering each once the group has
//! committed; on close it checkpoints the WAL and closes the last connection. Also how
//! any job, read or write, is run and answered. See docs/storage.md, "Durability
//! (SQLite)".

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{Receiver, RecvError};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::{backend, batch};
use crate::store::{Batch, Committed, StoreError};

/// The most units the writer takes into one group from its queue (a `commit_group` of
/// more is still written as one group).
pub(super) const GROUP_LIMIT: usize = 256;

pub(super) type Job = Box<dyn FnOnce(&mut Connection) + Send>;

pub(super) type Outcome = Result<Vec<Committed>, StoreError>;

/// A unit of work's batch to commit, and who waits for its outcome.
pub(super) struct Unit {
    pub(super) batch: Batch,
    pub(super) answer: oneshot::Sender<Outcome>,
}

/// What the writer thread is sent.
pub(super) enum WriteJob {
    /// A closure, run alone.
    Run(Job),
    /// Units to commit: one from `commit`, the batches of a `commit_group`.
    Commit(Vec<Unit>),
    /// Wait for the readers to close their connections (until every sender of
    /// `readers_gone` is dropped), checkpoint the WAL, close the connection and end;
    /// answer with how it went, if anyone waits.
    Close { readers_gone: Receiver<()>, answer: Option<oneshot::Sender<Result<(), StoreError>>> },
}

/// Why a job got no answer: what the [`StoreError::Backend`] of a stopped thread holds.
#[derive(Debug, thiserror::Error)]
pub(super) enum Stopped {
    /// The thread is gone: its queue no longer takes jobs.
    #[error("the SQLite {0} thread has stopped")]
    Gone(&'static str),
    /// The thread dropped the job without answering it.
    #[error("the SQLite {0} thread dropped the operation without answering")]
    Dropped(&'static str),
    /// The job panicked (the thread caught it and goes on with the next job).
    #[error("a SQLite operation panicked: {0}")]
    Panicked(String),
}

pub(super) fn stopped(why: Stopped) -> StoreError {
    StoreError::backend("sqlite", why)
}

/// Why a unit that wrote without an error of its own was not committed: its group's
/// transaction failed. The [`StoreError::Backend`] of such a unit holds it.
#[derive(Debug, thiserror::Error)]
#[error("the group commit this unit of work was part of failed, so nothing of it was written: {}", cause(.0))]
struct GroupFailed(#[source] StoreError);

/// What a group's error says, without repeating the store's name: the driver's error of
/// a backend failure.
fn cause(error: &StoreError) -> String {
    match error {
        StoreError::Backend { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// The writer: runs the jobs in queue order, taking the commits waiting behind a commit
/// into its group, up to `limit` units (1: no grouping).
pub(super) fn write_loop(mut connection: Connection, jobs: &Receiver<WriteJob>, limit: usize) {
    let mut kept = None;
    loop {
        let job = match kept.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(RecvError) => break,
            },
        };
        match job {
            WriteJob::Close { readers_gone, answer } => {
                // Blocks until every reader has closed its connection: the last one to
                // close removes the WAL, and it must be this one (readers cannot).
                while readers_gone.recv().is_ok() {}
                let outcome = close(connection);
                match answer {
                    Some(answer) => reply(answer, outcome),
                    None => {
                        if let Err(error) = outcome {
                            tracing::warn!(%error, "closing the SQLite store as its last handle went failed");
                        }
                    }
                }
                return;
            }
            WriteJob::Run(job) => job(&mut connection),
            WriteJob::Commit(units) if limit <= 1 => {
                for unit in units {
                    commit_units(&mut connection, vec![unit]);
                }
            }
            WriteJob::Commit(mut units) => {
                while units.len() < limit {
                    match jobs.try_recv() {
                        Ok(WriteJob::Commit(more)) => units.extend(more),
                        Ok(run) => {
                            kept = Some(run); // runs right after this group
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit_units(&mut connection, units);
            }
        }
        // A job that panicked in a transaction had it rolled back as it unwound
        // (rusqlite's transactions roll back when dropped); make sure, for the next job.
        if !connection.is_autocommit() {
            tracing::warn!("a SQLite write left its transaction open: rolling it back");
            if let Err(error) = connection.execute_batch("ROLLBACK") {
                tracing::warn!(%error, "rolling back the SQLite writer's open transaction failed");
            }
        }
    }
}

/// Commits `units` as one group and answers each.
fn commit_units(connection: &mut Connection, units: Vec<Unit>) {
    let (batches, answers): (Vec<Batch>, Vec<_>) = units.into_iter().map(|u| (u.batch, u.answer)).unzip();
    let outcomes = commit_group(connection, batches, batch::apply);
    for (answer, outcome) in answers.into_iter().zip(outcomes) {
        reply(answer, outcome);
    }
}

/// Writes `units` with `apply` in one `BEGIN IMMEDIATE` transaction, each in its own
/// savepoint (none when there is one), and commits it: the outcome of each, in order.
/// A unit whose `apply` fails or panics is rolled back to its savepoint and has its
/// error; if the transaction fails, so does every unit.
fn commit_group<U, T>(
    connection: &mut Connection,
    units: Vec<U>,
    mut apply: impl FnMut(&Connection, U) -> Result<T, StoreError>,
) -> Vec<Result<T, StoreError>> {
    let count = units.len();
    if count == 0 {
        return Vec::new();
    }
    tracing::debug!(units = count, "SQLite group commit");
    let tx = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => return failed(Vec::new(), count, &backend(error)),
    };
    let mut outcomes = Vec::with_capacity(count);
    if count == 1 {
        // No savepoint: the transaction is the unit's, rolled back (dropped) on an error.
        for unit in units {
            outcomes.push(guarded(|| apply(&tx, unit)));
        }
        if outcomes.iter().any(Result::is_err) {
            return outcomes;
        }
    } else {
        for unit in units {
            if let Err(error) = savepoint(&tx, "SAVEPOINT protean_unit") {
                return failed(outcomes, count, &error);
            }
            let outcome = guarded(|| apply(&tx, unit));
            let closed = match &outcome {
                Ok(_) => savepoint(&tx, "RELEASE protean_unit"),
                // SQLite rolls the whole transaction back on some errors (I/O, a full
                // disk): then the units before this one are gone too.
                Err(error) if tx.is_autocommit() => Err(error.clone()),
                Err(_) => {
                    savepoint(&tx, "ROLLBACK TO protean_unit").and_then(|()| savepoint(&tx, "RELEASE protean_unit"))
                }
            };
            outcomes.push(outcome);
            if let Err(error) = closed {
                return failed(outcomes, count, &error);
            }
        }
    }
    match tx.commit() {
        Ok(()) => outcomes,
        Err(error) => failed(outcomes, count, &backend(error)),
    }
}

/// Runs one of the savepoint statements.
fn savepoint(connection: &Connection, sql: &str) -> Result<(), StoreError> {
    connection.prepare_cached(sql).and_then(|mut s| s.execute([])).map(drop).map_err(backend)
}

/// The outcomes of a group whose transaction failed with `error`: nothing was written,
/// so the units that had succeeded fail with it (as do those not reached), while the
/// units that failed keep their own error. A group of one gets `error` itself.
fn failed<T>(outcomes: Vec<Result<T, StoreError>>, count: usize, error: &StoreError) -> Vec<Result<T, StoreError>> {
    let group_error = || {
        if count == 1 {
            Err(error.clone())
        } else {
            Err(StoreError::backend("sqlite", GroupFailed(error.clone())))
        }
    };
    let mut outcomes: Vec<_> =
        outcomes.into_iter().map(|outcome| if outcome.is_ok() { group_error() } else { outcome }).collect();
    outcomes.resize_with(count, group_error);
    outcomes
}

/// Checkpoints the whole WAL into the database file and empties it (`TRUNCATE`), then
/// closes the writer's connection: as the last connection to the file, SQLite removes
/// the `-wal` and `-shm` files. With another process's connection open, the checkpoint
/// may find readers in the way (the WAL is then kept, and checkpointed later) and the
/// files stay for that process.
fn close(connection: Connection) -> Result<(), StoreError> {
    let checkpoint = connection
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0))
        .map_err(backend)
        .map(|busy| {
            if busy != 0 {
                tracing::info!("another connection to the SQLite file kept the WAL from being checkpointed fully");
            }
        });
    let closed = connection.close().map_err(|(_, error)| backend(error));
    checkpoint.and(closed)
}

/// Runs `job`; a panic is an error.
pub(super) fn guarded<T>(job: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(job)).unwrap_or_else(|panic| Err(stopped(Stopped::Panicked(message(&*panic)))))
}

/// Sends `result` to whoever waits for it.
pub(super) fn reply<T>(answer: oneshot::Sender<Result<T, StoreError>>, result: Result<T, StoreError>) {
    // The caller may have stopped waiting (its future dropped): a success needs no one,
    // a failure is logged rather than lost.
    if let Err(Err(error)) = answer.send(result) {
        tracing::warn!(%error, "a SQLite operation failed after its caller stopped waiting");
    }
}

fn message(panic: &(dyn Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => (*text).to_owned(),
        (_, Some(text)) => text.clone(),
        _ => "a panic without a message".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers() -> Connection {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)").unwrap();
        connection
    }

    fn stored(connection: &Connection) -> Vec<i64> {
        let mut select = connection.prepare("SELECT n FROM t ORDER BY n").unwrap();
        let rows = select.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// Writes `n` (and `n + 100`, so that a failing unit has written something to undo),
    /// and panics on 13.
    fn insert(c: &Connection, n: i64) -> Result<i64, StoreError> {
        c.execute("INSERT INTO t VALUES (?1 + 100)", [n]).map_err(super::super::backend)?;
        assert_ne!(n, 13, "unlucky");
        c.execute("INSERT INTO t VALUES (?1)", [n]).map_err(super::super::backend)?;
        Ok(n)
    }

    #[test]
    fn a_group_keeps_every_unit_but_those_that_fail_or_panic() {
        let mut connection = numbers();
        connection.execute("INSERT INTO t VALUES (2)", []).unwrap();
        // 2 is there already (its unit fails on its second insert), 13 panics, and the
        // second 4 finds the first one's row: units see the writes before them.
        let outcomes = commit_group(&mut connection, vec![1, 2, 13, 4, 4, 5], insert);
        assert!(matches!(outcomes[0], Ok(1)));
        assert!(matches!(&outcomes[1], Err(StoreError::Backend { .. })));
        assert!(
            matches!(&outcomes[2], Err(StoreError::Backend { source, .. }) if source.to_string().contains("unlucky"))
        );
        assert!(matches!(outcomes[3], Ok(4)));
        assert!(matches!(&outcomes[4], Err(StoreError::Backend { .. })));
        assert!(matches!(outcomes[5], Ok(5)));
        assert!(connection.is_autocommit(), "committed");
        // The failed units' first inserts (102, 113, the second 104) were rolled back.
        assert_eq!(stored(&connection), [1, 2, 4, 5, 101, 104, 105]);
    }

    #[test]
    fn a_group_of_one_rolls_back_alone() {
        let mut connection = numbers();
        let outcomes = commit_group(&mut connection, vec![13], insert);
        assert!(matches!(&outcomes[..], [Err(StoreError::Backend { .. })]));
        assert!(connection.is_autocommit());
        assert_eq!(stored(&connection), Vec::<i64>::new());
        assert!(matches!(&commit_group(&mut connection, vec![7], insert)[..], [Ok(7)]));
        assert_eq!(stored(&connection), [7, 107]);
    }

    #[test]
    fn a_group_whose_transaction_fails_writes_nothing_and_fails_every_unit() {
        let mut connection = numbers();
        // BEGIN fails: a transaction is already open.
        connection.execute_batch("BEGIN").unwrap();
        let outcomes = commit_group(&mut connection, vec![1, 2], insert);
        assert!(outcomes.iter().all(|outcome| matches!(outcome, Err(StoreError::Backend { .. }))));
        connection.execute_batch("ROLLBACK").unwrap();
        assert_eq!(stored(&connection), Vec::<i64>::new());
        // A unit's error that makes SQLite roll the whole transaction back: every unit
        // fails, the earlier ones with the group's error (nothing of them is kept).
        let outcomes = commit_group(&mut connection, vec![1, 2, 3], |c: &Connection, n: i64| {
            if n == 2 {
                c.execute_batch("ROLLBACK").map_err(super::super::backend)?;
                return Err(StoreError::Unsupported("gone".to_owned()));
            }
            insert(c, n)
        });
        assert!(matches!(&outcomes[1], Err(StoreError::Unsupported(_))));
        for outcome in [&outcomes[0], &outcomes[2]] {
            assert!(
                matches!(outcome, Err(StoreError::Backend { source, .. }) if source.to_string().contains("group commit"))
            );
        }
        assert_eq!(stored(&connection), Vec::<i64>::new());
    }
}
