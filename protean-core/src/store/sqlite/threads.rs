//! SQLite's own threads, so that no executor thread ever waits on SQLite (a lock another
//! connection holds for up to the busy timeout, an fsync).
//!
//! One writer thread owns the connection that writes and runs the write jobs one at a
//! time, in the order they were sent. A few reader threads each own a read-only
//! connection and share one queue of reads: under WAL a read sees the last commit and
//! waits for no writer, so loads do not queue behind writes. A database no second
//! connection can see (in memory) has no readers: its reads go to the writer.
//!
//! An async caller sends its job, a closure, and awaits the answer on a oneshot channel.
//! The channels are std's (sending never blocks); the oneshot is tokio's, with only its
//! `sync` feature: its receiver is a plain future that any executor can await (it needs
//! no tokio runtime), and tokio is already in the tree of every protean build that runs
//! the engine on tokio.
//!
//! When the last handle is dropped the queues close: each thread finishes the jobs
//! already sent, drops its connection and ends.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, RecvError, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::super::{BoxFuture, StoreError};

type WriteJob = Box<dyn FnOnce(&mut Connection) + Send>;
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

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

/// The handles of a store's threads: dropping the last one ends them.
#[derive(Debug)]
pub(super) struct Threads {
    writer: Sender<WriteJob>,
    /// `None`: the reads go to the writer.
    readers: Option<Sender<ReadJob>>,
}

impl Threads {
    /// Starts the writer thread on `writer`, and a reader thread on each of `readers`
    /// (none: reads run on the writer).
    pub(super) fn start(writer: Connection, readers: Vec<Connection>) -> Result<Self, StoreError> {
        let (write_jobs, queue) = mpsc::channel::<WriteJob>();
        spawn("protean-sqlite-writer".to_owned(), move || write_loop(writer, &queue))?;
        let readers = if readers.is_empty() {
            None
        } else {
            let (read_jobs, queue) = mpsc::channel::<ReadJob>();
            let queue = Arc::new(Mutex::new(queue));
            for (n, connection) in readers.into_iter().enumerate() {
                let queue = Arc::clone(&queue);
                // Should this fail, dropping the senders ends the threads already started.
                spawn(format!("protean-sqlite-reader-{n}"), move || read_loop(&connection, &queue))?;
            }
            Some(read_jobs)
        };
        Ok(Threads { writer: write_jobs, readers })
    }

    /// Runs `job` on the writer thread; the future answers with its result.
    pub(super) fn write<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let (answer, answered) = oneshot::channel();
        let sent = self.writer.send(Box::new(move |c: &mut Connection| reply(answer, || job(c)))).is_ok();
        answer_of(sent, "writer", answered)
    }

    /// Runs `job` on a reader thread (the writer when there are none); the future
    /// answers with its result.
    pub(super) fn read<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let (answer, answered) = oneshot::channel();
        let (sent, thread) = match &self.readers {
            Some(readers) => (readers.send(Box::new(move |c: &Connection| reply(answer, || job(c)))).is_ok(), "reader"),
            None => (self.writer.send(Box::new(move |c: &mut Connection| reply(answer, || job(c)))).is_ok(), "writer"),
        };
        answer_of(sent, thread, answered)
    }
}

fn spawn(name: String, body: impl FnOnce() + Send + 'static) -> Result<(), StoreError> {
    std::thread::Builder::new().name(name).spawn(body).map(drop).map_err(|e| StoreError::backend("sqlite", e))
}

fn write_loop(mut connection: Connection, jobs: &Receiver<WriteJob>) {
    while let Ok(job) = jobs.recv() {
        job(&mut connection);
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

fn read_loop(connection: &Connection, jobs: &Mutex<Receiver<ReadJob>>) {
    while let Ok(job) = next(jobs) {
        job(connection);
    }
}

/// The next read, for whichever reader asks first. The lock is held while waiting, so
/// one idle reader waits on the queue and the others on the lock; a poisoned lock
/// (impossible: nothing panics while holding it) is taken as it is.
fn next(jobs: &Mutex<Receiver<ReadJob>>) -> Result<ReadJob, RecvError> {
    jobs.lock().unwrap_or_else(PoisonError::into_inner).recv()
}

/// Runs `job`, a panic included, and sends its result to whoever waits for it.
fn reply<T>(answer: oneshot::Sender<Result<T, StoreError>>, job: impl FnOnce() -> Result<T, StoreError>) {
    let result =
        catch_unwind(AssertUnwindSafe(job)).unwrap_or_else(|panic| Err(stopped(Stopped::Panicked(message(&*panic)))));
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

fn answer_of<T: Send + 'static>(
    sent: bool,
    thread: &'static str,
    answered: oneshot::Receiver<Result<T, StoreError>>,
) -> BoxFuture<'static, Result<T, StoreError>> {
    Box::pin(async move {
        if !sent {
            return Err(stopped(Stopped::Gone(thread)));
        }
        answered.await.unwrap_or_else(|_| Err(stopped(Stopped::Dropped(thread))))
    })
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

    fn in_memory() -> Threads {
        Threads::start(Connection::open_in_memory().unwrap(), Vec::new()).unwrap()
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
        let threads = Threads { writer, readers: None };
        let error = block_on(threads.write(|_| Ok(()))).unwrap_err();
        assert!(matches!(&error, StoreError::Backend { source, .. } if source.to_string().contains("stopped")));
        // A thread that drops a job unanswered (as one dying with it queued would).
        let (writer, queue) = mpsc::channel::<WriteJob>();
        let threads = Threads { writer, readers: None };
        let answer = threads.read(|_| Ok(()));
        drop(queue.recv().unwrap());
        let error = block_on(answer).unwrap_err();
        assert!(
            matches!(&error, StoreError::Backend { source, .. } if source.to_string().contains("without answering"))
        );
    }
}
