//! The outbox's wake-up, both ends of channel `protean_outbox`: the notifier, which sends
//! `NOTIFY` after a commit that stored an undelivered event (or scheduled a command) is
//! durable, outside its transaction and coalesced, and the listener behind
//! [`Outbox::outbox_signal`](crate::store::Outbox::outbox_signal). See docs/storage.md,
//! "How commits work on PostgreSQL".

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPoolOptions};
use sqlx::Connection;
use tokio::sync::Notify;

/// The longest a notification may take (connecting included) before it is given up.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// The notification every listener of the outbox's channel wakes on (see
/// [`OUTBOX_CHANNEL`]; the listeners ignore the payload, and there is none).
const NOTIFY: &str = "NOTIFY protean_outbox";

/// What the notifier is doing.
#[derive(Default)]
struct State {
    /// A task is sending.
    sending: bool,
    /// A notification was asked for after the sending task's current one began.
    again: bool,
    /// The connection, while no task holds it.
    connection: Option<PgConnection>,
}

/// A store's notifier, shared by its clones.
pub(super) struct Notifier {
    options: PgConnectOptions,
    state: Mutex<State>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Notifier")
            .field("sending", &state.sending)
            .field("again", &state.again)
            .field("connected", &state.connection.is_some())
            .finish()
    }
}

/// Counts the sending task out if it ends without doing so itself (dropped with its
/// runtime, or a panic), so later requests start one again.
struct Sending<'n> {
    notifier: &'n Notifier,
    armed: bool,
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.notifier.lock();
            state.sending = false;
            state.again = false;
        }
    }
}

impl Notifier {
    /// A notifier connecting with `options` (on first use).
    pub(super) fn new(options: PgConnectOptions) -> Self {
        Notifier { options, state: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for a notification: sends one on a task of its own on the current runtime,
    /// or, while one is being sent, one more after it. Never waits.
    pub(super) fn request(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("postgres: no tokio runtime to notify the outbox's channel on");
            return;
        };
        {
            let mut state = self.lock();
            if state.sending {
                state.again = true;
                return;
            }
            state.sending = true;
        }
        runtime.spawn(Arc::clone(self).send());
    }

    /// Closes the connection, if no task is sending on it (a task sending when the
    /// store closes keeps it until the store is dropped).
    pub(super) async fn close(&self) {
        let connection = self.lock().connection.take();
        if let Some(connection) = connection {
            if let Err(error) = connection.close().await {
                tracing::debug!(%error, "postgres: closing the outbox notifier's connection failed");
            }
        }
    }

    /// The sending task: notifies until no request came in meanwhile.
    async fn send(self: Arc<Self>) {
        let mut sending = Sending { notifier: &self, armed: true };
        let mut connection = self.lock().connection.take();
        loop {
            self.notify(&mut connection).await;
            let mut state = self.lock();
            if state.again {
                state.again = false;
                continue;
            }
            // Counted out under the lock that requests take: a request after this starts
            // a task of its own, which finds the connection.
            state.sending = false;
            state.connection = connection;
            sending.armed = false;
            return;
        }
    }

    /// Sends one notification on `connection`, opening it first if it is not open. A
    /// connection that fails is dropped; if it had served before (the server may have
    /// closed it meanwhile, or the runtime it was opened on ended), a fresh one tries again.
    async fn notify(&self, connection: &mut Option<PgConnection>) {
        loop {
            let fresh = connection.is_none();
            let sent = tokio::time::timeout(NOTIFY_TIMEOUT, self.notify_on(connection)).await;
            let error = match sent {
                Ok(Ok(())) => return,
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no answer within {NOTIFY_TIMEOUT:?}"),
            };
            *connection = None;
            if fresh {
                tracing::warn!(%error, "postgres: could not notify the outbox's channel; other processes' delivery \
                    workers will find the new events at their next poll");
                return;
            }
            tracing::debug!(%error, "postgres: the outbox notifier's connection failed; connecting again");
        }
    }

    /// Connects if need be, then notifies.
    async fn notify_on(&self, connection: &mut Option<PgConnection>) -> Result<(), sqlx::Error> {
        let connection = match connection {
            Some(connection) => connection,
            None => connection.insert(self.connect().await?),
        };
        sqlx::Executor::execute(&mut *connection, sqlx::raw_sql(NOTIFY)).await.map(|_| ())
    }

    /// A connection whose transactions do not wait for their WAL flush.
    async fn connect(&self) -> Result<PgConnection, sqlx::Error> {
        let mut connection = PgConnection::connect_with(&self.options).await?;
        sqlx::Executor::execute(&mut connection, sqlx::raw_sql("SET synchronous_commit = off")).await?;
        Ok(connection)
    }
}

/// The channel the store notifies after a commit that stored an event not delivered yet
/// (this file).
const OUTBOX_CHANNEL: &str = "protean_outbox";

/// How long the outbox listener waits to listen again after an error, the first time;
/// the wait doubles with every error in a row, up to [`MAX_RELISTEN_DELAY`].
const RELISTEN_DELAY: Duration = Duration::from_millis(250);

/// The longest wait of the outbox listener between two attempts to listen.
const MAX_RELISTEN_DELAY: Duration = Duration::from_secs(5);

/// Wakes the delivery workers waiting on an outbox signal now, and the next one to wait
/// (a permit, for a worker between two waits).
fn wake(notify: &Notify) {
    notify.notify_waiters();
    notify.notify_one();
}

/// The outbox signal of a store and the task that listens for it, started on first use
/// and stopped when this is dropped (with the last clone of the store).
#[derive(Debug, Default)]
pub(super) struct OutboxListener {
    started: Mutex<Option<(Arc<Notify>, tokio::task::JoinHandle<()>)>>,
    /// Set when the store is closed: no listener is started again.
    stopped: std::sync::atomic::AtomicBool,
}

impl OutboxListener {
    /// The signal, its listener started on the current tokio runtime if it is not
    /// running (not yet, or no longer: the runtime it ran on shut down); `None` outside a
    /// runtime when it is not running (nothing to run the listener on).
    pub(super) fn signal(&self, options: &PgConnectOptions) -> Option<Arc<Notify>> {
        let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        if self.stopped.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let notify = match &*started {
            Some((notify, task)) if !task.is_finished() => return Some(Arc::clone(notify)),
            Some((notify, _)) => Arc::clone(notify),
            None => Arc::new(Notify::new()),
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("postgres: no tokio runtime to listen for outbox notifications on");
            return None;
        };
        let task = runtime.spawn(listen(options.clone(), Arc::clone(&notify)));
        *started = Some((Arc::clone(&notify), task));
        Some(notify)
    }
}

impl OutboxListener {
    /// Stops the listener, for good: [`signal`](Self::signal) answers `None` from then on.
    pub(super) fn stop(&self) {
        let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, task)) = started.take() {
            task.abort();
        }
        self.stopped.store(true, std::sync::atomic::Ordering::Release);
    }
}

impl Drop for OutboxListener {
    fn drop(&mut self) {
        let started = self.started.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, task)) = started.take() {
            task.abort();
        }
    }
}

/// Listens on [`OUTBOX_CHANNEL`] with a connection of its own, waking `notify` on every
/// notification, until aborted; after an error it waits a little and listens again.
async fn listen(options: PgConnectOptions, notify: Arc<Notify>) {
    let mut delay = RELISTEN_DELAY;
    loop {
        let Err(error) = listen_until_error(&options, &notify, &mut delay).await;
        tracing::warn!(%error, retry_in = ?delay, "postgres: listening for outbox notifications failed");
        tokio::time::sleep(delay).await;
        delay = delay.saturating_mul(2).min(MAX_RELISTEN_DELAY);
    }
}

/// Connects, listens, and wakes `notify` on each notification until an error; resets
/// `delay` once listening. Wakes it also whenever it starts listening (on connecting, and
/// after sqlx made a lost connection again), as a commit meanwhile went unheard.
async fn listen_until_error(
    options: &PgConnectOptions,
    notify: &Notify,
    delay: &mut Duration,
) -> Result<Infallible, sqlx::Error> {
    // A pool of one, as `PgListener::connect` makes: the listener takes its connections
    // from it, again after losing one.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with(options.clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(OUTBOX_CHANNEL).await?;
    *delay = RELISTEN_DELAY;
    wake(notify);
    loop {
        // `None`: the connection was lost, and is listening again.
        let _ = listener.try_recv().await?;
        wake(notify);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn it_notifies_the_channel_the_listeners_listen_on() {
        assert_eq!(super::NOTIFY, format!("NOTIFY {}", super::OUTBOX_CHANNEL));
    }
}
