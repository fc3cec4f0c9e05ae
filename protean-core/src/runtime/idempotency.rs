//! Idempotent commands: a command processed with an id records the id in its unit of
//! work's transaction, with its reply and what it wrote, so a copy of it (the same id,
//! from a client's retry, in this process or another) changes nothing and is handed the
//! first outcome.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::model::element::Command;
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

/// The first outcome of command `C` with id `command_id`, if it was processed: its reply,
/// and what it wrote, read back (its events as stored).
pub(crate) async fn first_outcome<C: Command>(
    store: &dyn Store,
    command_id: Uuid,
) -> Result<Option<Processed<C::Reply>>, StoreError> {
    let Some(recorded) = store.handled_outcome(C::TYPE_NAME, command_id).await? else { return Ok(None) };
    let corrupt = |reason: String| StoreError::corrupt(&StreamId::new(C::TYPE_NAME, command_id.to_string()), 0, reason);
    let json = recorded.ok_or_else(|| corrupt("the command's id was recorded without its outcome".into()))?;
    let outcome: Outcome<'_> =
        serde_json::from_str(&json).map_err(|e| corrupt(format!("the recorded outcome does not read: {e}")))?;
    let reply: C::Reply = serde_json::from_str(outcome.reply.get())
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
