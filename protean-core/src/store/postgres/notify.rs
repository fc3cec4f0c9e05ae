//! The outbox wake-up: `NOTIFY protean_outbox`, sent after a commit that stored an event
//! not yet delivered (or scheduled a command) has committed, outside its transaction, and
//! coalesced.
//!
//! Not in the commit's transaction: PostgreSQL (15 at least) takes a lock for the whole
//! cluster when a transaction that sent `NOTIFY` commits, to order the notifications in
//! its queue, and holds it through the commit's WAL flush; so every commit that notified
//! waited for the previous one's flush, and none could share one. Here a connection of the
//! store's own, on which `SET synchronous_commit = off` ran once, sends the notification
//! in a transaction of its own: it takes that lock too, but does not wait for a flush
//! while holding it (a notification needs no durability: it is a hint, and a lost one is
//! made up for by the workers' poll).
//!
//! One task at a time sends, on the runtime of the commit that asked: while it sends,
//! further requests only set a flag, and it sends once more when it is done (so at most
//! one notification waits, never a queue). The commit is answered as soon as it is
//! durable, whatever becomes of its notification: a failure is logged (`warn`), the
//! connection dropped and opened again for the next one.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;

/// The longest a notification may take (connecting included) before it is given up.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// The notification every listener of the outbox's channel wakes on (see
/// [`super::OUTBOX_CHANNEL`]; the listeners ignore the payload, and there is none).
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

#[cfg(test)]
mod tests {
    #[test]
    fn it_notifies_the_channel_the_listeners_listen_on() {
        assert_eq!(super::NOTIFY, format!("NOTIFY {}", super::super::OUTBOX_CHANNEL));
    }
}
