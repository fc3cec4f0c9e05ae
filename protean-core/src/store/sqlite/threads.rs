//! SQLite's own threads, so that no executor thread ever waits on SQLite (a lock another
//! connection holds for up to the busy timeout, an fsync): the handle the store's
//! methods send their work through, and the reader threads. One writer thread
//! (`writer.rs`) runs the writes in the order they were sent, grouping commits; reader
//! threads, each with a read-only connection, share one queue of reads. An async caller
//! awaits its answer on a oneshot channel, which any executor can await. See
//! docs/storage.md, "Durability (SQLite)" and "Opening and closing".

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvError, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::writer::{guarded, reply, stopped, write_loop, Outcome, Stopped, Unit, WriteJob, GROUP_LIMIT};
use crate::store::{Batch, BoxFuture, StoreError};

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// What a reader thread is sent.
enum ReadMessage {
    /// A read to run.
    Run(ReadJob),
    /// Close the connection and end; the sender is dropped once the connection is closed.
    Stop(Sender<()>),
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
    /// closes the connections; the future answers once
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
