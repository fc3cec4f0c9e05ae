//! [`Domain::trace`](crate::runtime::Domain::trace): a conversation's causal chain, from the event log.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::runtime::engine::Engine;
use crate::runtime::outcome::ProcessError;
use crate::store::{Envelope, Scheduled};

/// How many events [`Domain::trace`](crate::runtime::Domain::trace) reads from the log at a time.
const PAGE: usize = 1_000;

/// How many pending scheduled commands (every conversation's, due first)
/// [`Domain::trace`](crate::runtime::Domain::trace) reads to find the conversation's.
const SCHEDULED: usize = 10_000;

/// A conversation: what its first command caused, as a tree by causation id (see
/// [`Domain::trace`](crate::runtime::Domain::trace)).
#[derive(Debug, Clone)]
pub struct Trace {
    /// The conversation: the first command's id.
    pub correlation_id: Uuid,
    /// The commands of the conversation whose events are stored, in log order: the
    /// first command (id `correlation_id`), then those process managers sent and that
    /// have been processed since. Once a sent command is processed the store no longer
    /// keeps which event sent it, so it is listed here rather than under that event.
    pub commands: Vec<TraceCommand>,
    /// Commands of the conversation still scheduled whose sending event is not in the
    /// trace (see [`TraceEvent::scheduled`] for the others).
    pub scheduled: Vec<Scheduled>,
}

/// A command and the events its handling raised.
#[derive(Debug, Clone)]
pub struct TraceCommand {
    /// The command's id.
    pub command_id: Uuid,
    /// The events it raised, each with what it caused.
    pub events: Vec<TraceEvent>,
}

/// An event and what handling it caused.
#[derive(Debug, Clone)]
pub struct TraceEvent {
    /// The stored event.
    pub event: Envelope,
    /// The events its handlers raised, in log order.
    pub caused: Vec<TraceEvent>,
    /// The commands process managers sent on it that are still scheduled.
    pub scheduled: Vec<Scheduled>,
}

impl Trace {
    /// Builds the tree from the conversation's events (in log order) and its
    /// scheduled commands.
    fn of(correlation_id: Uuid, events: Vec<Envelope>, scheduled: Vec<Scheduled>) -> Trace {
        let ids: HashSet<Uuid> = events.iter().map(|e| e.id).collect();
        let mut children: HashMap<Uuid, Vec<Envelope>> = HashMap::new();
        let mut commands: Vec<Uuid> = Vec::new();
        for event in events {
            if !ids.contains(&event.causation_id) && !commands.contains(&event.causation_id) {
                commands.push(event.causation_id);
            }
            children.entry(event.causation_id).or_default().push(event);
        }
        let mut pending: HashMap<Uuid, Vec<Scheduled>> = HashMap::new();
        let mut loose = Vec::new();
        for command in scheduled {
            if ids.contains(&command.causation_id) {
                pending.entry(command.causation_id).or_default().push(command);
            } else {
                loose.push(command);
            }
        }
        // The first command first, whatever the order of the log.
        commands.sort_by_key(|id| *id != correlation_id);
        let commands = commands
            .into_iter()
            .map(|command_id| TraceCommand { command_id, events: grow(command_id, &mut children, &mut pending) })
            .collect();
        Trace { correlation_id, commands, scheduled: loose }
    }
}

/// The events caused by `cause`, each with its own subtree.
fn grow(
    cause: Uuid,
    children: &mut HashMap<Uuid, Vec<Envelope>>,
    pending: &mut HashMap<Uuid, Vec<Scheduled>>,
) -> Vec<TraceEvent> {
    let events = children.remove(&cause).unwrap_or_default();
    events
        .into_iter()
        .map(|event| {
            let caused = grow(event.id, children, pending);
            let scheduled = pending.remove(&event.id).unwrap_or_default();
            TraceEvent { event, caused, scheduled }
        })
        .collect()
}

/// [`Domain::trace`](crate::runtime::Domain::trace), on an engine.
pub(crate) async fn trace(engine: &Engine, correlation_id: Uuid) -> Result<Trace, ProcessError> {
    let store = engine.store();
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = store.log_after(after, PAGE, &[]).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        let read = page.len();
        events.extend(page.into_iter().map(|logged| logged.event).filter(|e| e.correlation_id == correlation_id));
        if read < PAGE {
            break;
        }
    }
    let mut scheduled = store.pending_scheduled(SCHEDULED).await?;
    scheduled.retain(|command| command.correlation_id == correlation_id);
    Ok(Trace::of(correlation_id, events, scheduled))
}
