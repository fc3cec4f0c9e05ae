//! Idempotent commands: a command processed with an id records the id in its unit of
//! work's transaction, with its reply and what it wrote, so a copy of it (the same id,
//! from a client's retry, in this process or another) changes nothing and is handed the
//! first outcome.

use std::any::Any;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::model::element::{Command, Reply};
use crate::model::error::StoreError;
use crate::runtime::outcome::Processed;
use crate::store::{Commit, Committed, Store, StreamId};

/// What is kept with a command's id.
#[derive(Serialize, Deserialize)]
struct Outcome<'a> {
    #[serde(borrow)]
    reply: &'a RawValue,
    commits: Vec<Written>,
}

/// One aggregate a command's unit of work wrote.
#[derive(Serialize, Deserialize)]
struct Written {
    stream: StreamId,
    version: u64,
    events: Vec<Uuid>,
}

/// The outcome to record for a command whose reply is `reply` (JSON) and whose unit of
/// work writes `commits`.
pub(crate) fn outcome_json(reply: &str, commits: &[Commit]) -> Result<std::sync::Arc<str>, serde_json::Error> {
    let reply = RawValue::from_string(reply.to_owned())?;
    let commits = commits
        .iter()
        .map(|c| Written {
            stream: c.stream.clone(),
            version: c.expected_version.saturating_add(c.advance),
            events: c.events.iter().map(|e| e.id).collect(),
        })
        .collect();
    Ok(serde_json::to_string(&Outcome { reply: &reply, commits })?.into())
}

/// How the erased command path reads and checks a command's reply, without naming the
/// command's type: made by [`ReplyType::of`] for each command type.
#[derive(Clone, Copy)]
pub(crate) struct ReplyType {
    /// Reads a recorded reply (JSON) as the command's reply.
    pub(crate) read: fn(&str) -> Result<Box<dyn Any + Send>, serde_json::Error>,
    /// Whether a handler's reply is the command's.
    pub(crate) is: fn(&(dyn Any + Send)) -> bool,
}

impl ReplyType {
    /// The reply of command `C`.
    pub(crate) fn of<C: Command>() -> ReplyType {
        ReplyType { read: read_reply::<C::Reply>, is: is_reply::<C::Reply> }
    }
}

fn read_reply<R: Reply>(json: &str) -> Result<Box<dyn Any + Send>, serde_json::Error> {
    serde_json::from_str::<R>(json).map(|reply| Box::new(reply) as Box<dyn Any + Send>)
}

fn is_reply<R: Reply>(reply: &(dyn Any + Send)) -> bool {
    reply.is::<R>()
}

/// The first outcome of command `type_name` with id `command_id`, if it was processed:
/// its reply (read with `reply`), and what it wrote, read back (its events as stored).
pub(crate) async fn first_outcome(
    store: &dyn Store,
    type_name: &'static str,
    command_id: Uuid,
    reply: ReplyType,
) -> Result<Option<Processed<Box<dyn Any + Send>>>, StoreError> {
    let Some(recorded) = store.handled_outcome(type_name, command_id).await? else { return Ok(None) };
    let corrupt = |reason: String| StoreError::corrupt(&StreamId::new(type_name, command_id.to_string()), 0, reason);
    let json = recorded.ok_or_else(|| corrupt("the command's id was recorded without its outcome".into()))?;
    let outcome: Outcome<'_> =
        serde_json::from_str(&json).map_err(|e| corrupt(format!("the recorded outcome does not read: {e}")))?;
    let reply = (reply.read)(outcome.reply.get())
        .map_err(|e| corrupt(format!("the recorded reply does not read as the command's reply: {e}")))?;
    let mut committed = Vec::with_capacity(outcome.commits.len());
    let mut events = Vec::new();
    for written in outcome.commits {
        let stored = if written.events.is_empty() { Vec::new() } else { store.stream(&written.stream).await? };
        let mine: Vec<_> = stored.into_iter().filter(|e| written.events.contains(&e.id)).collect();
        events.extend(mine.iter().cloned());
        committed.push(Committed { stream: written.stream, version: written.version, events: mine });
    }
    Ok(Some(Processed { reply, command_id, committed, events, failures: Vec::new() }))
}
