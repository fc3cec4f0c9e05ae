//! SQLite's own threads, so that no executor thread ever waits on SQLite (a lock another
//! connection holds for up to the busy timeout, an fsync).
//!
//! One writer thread owns the connection that writes and runs the write jobs in the
//! order they were sent. A few reader threads each own a read-only connection and
//! share one queue of reads: under WAL a read sees the last commit and waits for no
//! writer, so loads do not queue behind writes. A database no second connection can see
//! (in memory) has no readers: its reads go to the writer.
//!
//! A write job is either a closure, run alone (a claim, a mark, a migration, …), or the
//! batches of units of work to commit. Commits are grouped (group commit): when the
//! writer takes a commit, it also takes every commit already waiting behind it (up to
//! [`GROUP_LIMIT`] units; a closure met on the way is kept and run right after the
//! group, so the queue's order holds) and writes them all in one `BEGIN IMMEDIATE`
//! transaction, each unit inside its own `SAVEPOINT`. A unit whose writes fail (a
//! version conflict, a message already handled, a projection row conflict, any error,
//! a panic) is rolled back to its savepoint and gets its error; the others are kept.
//! The group commits once, and only then is each unit answered with its outcome: an
//! answer is as durable as a commit of its own would have been, and a group costs one
//! commit (one fsync under `synchronous = FULL`, one WAL append) instead of one per
//! unit. Units are written in queue order, so a unit sees the writes of the units
//! before it in its group, and its version checks are exact. Should the transaction
//! itself fail (its `BEGIN`, its `COMMIT`, or SQLite rolling it back after an I/O
//! error), nothing of the group is written and every unit gets an error. A group of one
//! unit takes no savepoint: its transaction is the unit's. Grouping off (see
//! `SqliteOptions::group_commit`) commits each unit in its own transaction.
//!
//! An async caller sends its job and awaits the answer on a oneshot channel. The
//! channels are std's (sending never blocks); the oneshot is tokio's, with only its
//! `sync` feature: its receiver is a plain future that any executor can await (it needs
//! no tokio runtime), and tokio is already in the tree of every protean build that runs
//! the engine on tokio.
//!
//! Closing ([`Threads::close`], or dropping the last handle) stops the threads after the
//! work already sent: each reader is sent a stop behind the reads queued, closes its
//! connection and ends; the writer is sent a close behind the writes queued, waits for
//! the readers to be gone, checkpoints the WAL into the database file (`TRUNCATE`) and
//! closes its connection, the last one: SQLite then removes the `-wal` and `-shm` files
//! (unless another process still has the file open). Work sent after the close is
//! refused with [`StoreError::Closed`].

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvError, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::super::{Batch, BoxFuture, Committed, StoreError};
use super::{backend, queries};

/// The most units the writer takes into one group from its queue (a `commit_group` of
/// more is still written as one group).
pub(super) const GROUP_LIMIT: usize = 256;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;
type Outcome = Result<Vec<Committed>, StoreError>;

/// What a reader thread is sent.
enum ReadMessage {
    /// A read to run.
    Run(ReadJob),
    /// Close the connection and end; the sender is dropped once the connection is closed.
    Stop(Sender<()>),
}

/// A unit of work's batch to commit, and who waits for its outcome.
struct Unit {
    batch: Batch,
    answer: oneshot::Sender<Outcome>,
}

/// What the writer thread is sent.
enum WriteJob {
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
enum Stopped {
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

fn stopped(why: Stopped) -> StoreError {
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

/// The handles of a store's threads: [closing](Self::close) or dropping them ends them.
#[derive(Debug)]
pub(super) struct Threads {
    writer: Sender<WriteJob>,
    /// The reads' queue and how many readers take from it; `None`: the reads go to the
    /// writer.
    readers: Option<(Sender<ReadMessage>, usize)>,
    /// Set once the threads are told to stop: from then on, work is refused (and work
    /// that finds a thread gone is told the store is closed).
    closed: Arc<AtomicBool>,
    /// The outcome of [`close`](Self::close), shared by every caller.
    closing: tokio::sync::OnceCell<Result<(), StoreError>>,
}

impl Threads {
    /// Starts the writer thread on `writer`, and a reader thread on each of `readers`
    /// (none: reads run on the writer). `group`: whether the writer groups the commits
    /// waiting in its queue into one transaction.
    pub(super) fn start(writer: Connection, readers: Vec<Connection>, group: bool) -> Result<Self, StoreError> {
        let (write_jobs, queue) = mpsc::channel::<WriteJob>();
        let limit = if group { GROUP_LIMIT } else { 1 };
        spawn("protean-sqlite-writer".to_owned(), move || write_loop(writer, &queue, limit))?;
        let threads = |readers| Threads {
            writer: write_jobs,
            readers,
            closed: Arc::default(),
            closing: tokio::sync::OnceCell::new(),
        };
        if readers.is_empty() {
            return Ok(threads(None));
        }
        let (read_jobs, queue) = mpsc::channel::<ReadMessage>();
        let queue = Arc::new(Mutex::new(queue));
        let mut started = threads(Some((read_jobs, 0)));
        for (n, connection) in readers.into_iter().enumerate() {
            let queue = Arc::clone(&queue);
            // Should this fail, dropping `started` stops the threads already started.
            spawn(format!("protean-sqlite-reader-{n}"), move || read_loop(connection, &queue))?;
            if let Some((_, count)) = &mut started.readers {
                *count += 1;
            }
        }
        Ok(started)
    }

    /// Stops the threads after the work already sent to them, checkpoints the WAL and
    /// closes the connections (see the module's documentation); the future answers once
    /// the writer's connection is closed. Every call answers with the first one's outcome.
    pub(super) fn close(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let outcome = self.closing.get_or_init(|| async {
                let (answer, answered) = oneshot::channel();
                if !self.stop(Some(answer)) {
                    return Err(stopped(Stopped::Gone("writer")));
                }
                answered.await.unwrap_or_else(|_| Err(stopped(Stopped::Dropped("writer"))))
            });
            outcome.await.clone()
        })
    }

    /// Marks the threads closed and sends each reader a stop, and the writer the close
    /// (`answer` waits for it, if given). Whether the writer was there to be sent it.
    fn stop(&self, answer: Option<oneshot::Sender<Result<(), StoreError>>>) -> bool {
        self.closed.store(true, Ordering::SeqCst);
        let (gone, readers_gone) = mpsc::channel();
        if let Some((readers, count)) = &self.readers {
            for _ in 0..*count {
                // A reader already gone dropped the queue: nothing to wait for.
                let _ = readers.send(ReadMessage::Stop(gone.clone()));
            }
        }
        drop(gone);
        self.writer.send(WriteJob::Close { readers_gone, answer }).is_ok()
    }

    /// Whether the threads were told to stop.
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Runs `job` on the writer thread, alone; the future answers with its result.
    pub(super) fn write<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        if self.is_closed() {
            return refused();
        }
        let (answer, answered) = oneshot::channel();
        let job = WriteJob::Run(Box::new(move |c: &mut Connection| reply(answer, guarded(|| job(c)))));
        self.answer_of(self.writer.send(job).is_ok(), "writer", answered)
    }

    /// Commits `batch` on the writer thread, grouped with the other commits waiting
    /// there; the future answers once its group has committed.
    pub(super) fn commit(&self, batch: Batch) -> BoxFuture<'static, Outcome> {
        if self.is_closed() {
            return refused();
        }
        let (answer, answered) = oneshot::channel();
        let sent = self.writer.send(WriteJob::Commit(vec![Unit { batch, answer }])).is_ok();
        self.answer_of(sent, "writer", answered)
    }

    /// Commits `batches` on the writer thread as one group (with the other commits
    /// waiting there, if any); the future answers with each batch's outcome, in order.
    pub(super) fn commit_group(&self, batches: Vec<Batch>) -> BoxFuture<'static, Vec<Outcome>> {
        let (units, answered): (Vec<Unit>, Vec<_>) = batches
            .into_iter()
            .map(|batch| {
                let (answer, answered) = oneshot::channel();
                (Unit { batch, answer }, answered)
            })
            .unzip();
        let sent = !self.is_closed() && (units.is_empty() || self.writer.send(WriteJob::Commit(units)).is_ok());
        let answers: Vec<_> = answered.into_iter().map(|answered| self.answer_of(sent, "writer", answered)).collect();
        Box::pin(async move {
            let mut outcomes = Vec::with_capacity(answers.len());
            for answer in answers {
                outcomes.push(answer.await);
            }
            outcomes
        })
    }

    /// Runs `job` on a reader thread (the writer when there are none); the future
    /// answers with its result.
    pub(super) fn read<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        if self.is_closed() {
            return refused();
        }
        let (answer, answered) = oneshot::channel();
        let (sent, thread) = match &self.readers {
            Some((readers, _)) => {
                let job = ReadMessage::Run(Box::new(move |c: &Connection| reply(answer, guarded(|| job(c)))));
                (readers.send(job).is_ok(), "reader")
            }
            None => {
                let job = WriteJob::Run(Box::new(move |c: &mut Connection| reply(answer, guarded(|| job(c)))));
                (self.writer.send(job).is_ok(), "writer")
            }
        };
        self.answer_of(sent, thread, answered)
    }

    /// The answer to work sent (`sent`: whether its queue took it) to `thread`: what the
    /// thread answers, or why it did not (the store is closed, or the thread is gone).
    fn answer_of<T: Send + 'static>(
        &self,
        sent: bool,
        thread: &'static str,
        answered: oneshot::Receiver<Result<T, StoreError>>,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let closed = Arc::clone(&self.closed);
        let unanswered = move |why| {
            if closed.load(Ordering::Acquire) {
                StoreError::Closed { backend: "sqlite" }
            } else {
                stopped(why)
            }
        };
        if !sent {
            return Box::pin(std::future::ready(Err(unanswered(Stopped::Gone(thread)))));
        }
        Box::pin(async move { answered.await.unwrap_or_else(|_| Err(unanswered(Stopped::Dropped(thread)))) })
    }
}

impl Drop for Threads {
    /// The last handle gone without [`close`](Threads::close): the threads still finish
    /// the work sent, checkpoint the WAL and close their connections, unawaited (a
    /// process that exits first leaves the WAL as it is, to be checkpointed when the
    /// file is opened next).
    fn drop(&mut self) {
        if !self.is_closed() {
            self.stop(None);
        }
    }
}

/// What work sent after the store was closed is answered.
fn refused<T: Send + 'static>() -> BoxFuture<'static, Result<T, StoreError>> {
    Box::pin(std::future::ready(Err(StoreError::Closed { backend: "sqlite" })))
}

fn spawn(name: String, body: impl FnOnce() + Send + 'static) -> Result<(), StoreError> {
    std::thread::Builder::new().name(name).spawn(body).map(drop).map_err(|e| StoreError::backend("sqlite", e))
}

/// The writer: runs the jobs in queue order, taking the commits waiting behind a commit
/// into its group, up to `limit` units (1: no grouping).
fn write_loop(mut connection: Connection, jobs: &Receiver<WriteJob>, limit: usize) {
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
    let outcomes = commit_group(connection, batches, queries::apply_batch);
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

fn read_loop(connection: Connection, jobs: &Mutex<Receiver<ReadMessage>>) {
    while let Ok(message) = next(jobs) {
        match message {
            ReadMessage::Run(job) => job(&connection),
            ReadMessage::Stop(gone) => {
                drop(connection);
                drop(gone); // the writer waits for this: the connection is closed
                return;
            }
        }
    }
}

/// The next read, for whichever reader asks first. The lock is held while waiting, so
/// one idle reader waits on the queue and the others on the lock; a poisoned lock
/// (impossible: nothing panics while holding it) is taken as it is.
fn next(jobs: &Mutex<Receiver<ReadMessage>>) -> Result<ReadMessage, RecvError> {
    jobs.lock().unwrap_or_else(PoisonError::into_inner).recv()
}

/// Runs `job`; a panic is an error.
fn guarded<T>(job: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(job)).unwrap_or_else(|panic| Err(stopped(Stopped::Panicked(message(&*panic)))))
}

/// Sends `result` to whoever waits for it.
fn reply<T>(answer: oneshot::Sender<Result<T, StoreError>>, result: Result<T, StoreError>) {
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

    /// Polls `future` to completion on this thread.
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut future = std::pin::pin!(future);
        loop {
            if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut std::task::Context::from_waker(&waker)) {
                return output;
            }
            std::thread::park();
        }
    }

    /// Threads whose writer's queue is `writer`, and with no readers.
    fn on_queue(writer: Sender<WriteJob>) -> Threads {
        Threads { writer, readers: None, closed: Arc::default(), closing: tokio::sync::OnceCell::new() }
    }

    fn in_memory() -> Threads {
        Threads::start(Connection::open_in_memory().unwrap(), Vec::new(), true).unwrap()
    }

    #[test]
    fn a_panicking_job_is_an_error_and_the_writer_goes_on() {
        let threads = in_memory();
        block_on(threads.write(|c| c.execute_batch("CREATE TABLE t (n INTEGER)").map_err(super::super::backend)))
            .unwrap();
        let panicked = block_on(threads.write(|c| -> Result<(), StoreError> {
            let tx = c.transaction().map_err(super::super::backend)?;
            tx.execute("INSERT INTO t VALUES (1)", []).map_err(super::super::backend)?;
            panic!("boom")
        }))
        .unwrap_err();
        assert!(matches!(&panicked, StoreError::Backend { source, .. } if source.to_string().contains("boom")));
        // The writer goes on, and the panicking job's transaction was rolled back.
        let count = block_on(threads.read(|c| {
            c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)).map_err(super::super::backend)
        }));
        assert_eq!(count.unwrap(), 0);
    }

    #[test]
    fn a_stopped_thread_is_an_error() {
        let (writer, queue) = mpsc::channel::<WriteJob>();
        drop(queue);
        let threads = on_queue(writer);
        let error = block_on(threads.write(|_| Ok(()))).unwrap_err();
        assert!(matches!(&error, StoreError::Backend { source, .. } if source.to_string().contains("stopped")));
        // A thread that drops a job unanswered (as one dying with it queued would).
        let (writer, queue) = mpsc::channel::<WriteJob>();
        let threads = on_queue(writer);
        let answer = threads.read(|_| Ok(()));
        drop(queue.recv().unwrap());
        let error = block_on(answer).unwrap_err();
        assert!(
            matches!(&error, StoreError::Backend { source, .. } if source.to_string().contains("without answering"))
        );
    }
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

    /// The writer takes the commits waiting behind a commit into its group, but a job
    /// met on the way runs right after the group, before the commits sent after it.
    #[test]
    fn the_writer_keeps_the_queue_order() {
        use crate::store::{Commit, StreamId};
        let mut connection = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut connection).unwrap();
        let batch = |id: &str| Batch {
            commits: vec![Commit {
                stream: StreamId::new("Counter", id),
                expected_version: 0,
                advance: 1,
                state: Some("{}".into()),
                events: vec![],
                snapshot: None,
            }],
            ..Batch::default()
        };
        let (jobs, queue) = mpsc::channel::<WriteJob>();
        let mut answers = Vec::new();
        let mut unit = |id: &str| {
            let (answer, answered) = oneshot::channel();
            answers.push(answered);
            Unit { batch: batch(id), answer }
        };
        let (a, b, c, d) = (unit("a"), unit("b"), unit("c"), unit("d"));
        let seen = Arc::new(Mutex::new(None));
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT count(*) FROM protean_aggregates", [], |r| r.get(0)).unwrap()
        };
        jobs.send(WriteJob::Commit(vec![a])).unwrap();
        jobs.send(WriteJob::Commit(vec![b, c])).unwrap();
        let seen_by_job = Arc::clone(&seen);
        jobs.send(WriteJob::Run(Box::new(move |c: &mut Connection| *seen_by_job.lock().unwrap() = Some(count(c)))))
            .unwrap();
        jobs.send(WriteJob::Commit(vec![d])).unwrap();
        drop(jobs);
        write_loop(connection, &queue, GROUP_LIMIT);
        assert_eq!(*seen.lock().unwrap(), Some(3), "the job ran after a, b and c, before d");
        for answered in answers {
            assert_eq!(block_on(answered).unwrap().unwrap().len(), 1);
        }
    }
}
