//! `ops dead-letters ...`: list, show, replay and discard dead letters.

use std::io::Write;

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::cli::{Exit, Outcome};
use crate::runtime::{Domain, ProcessError, Redelivered};
use crate::store::{FailedDelivery, FailureQuery, FailureStatus};

/// The dead-letter commands. A dead letter is named by its event's id; `--handler` is
/// needed only when the event is dead for more than one handler.
#[derive(Debug, Subcommand)]
pub enum DeadLetters {
    /// Lists dead letters, oldest event first: handler, event, attempts, last error.
    List {
        /// Which dead letters.
        #[command(flatten)]
        filter: DeadLetterFilter,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Shows one dead letter: its event, attempts, first and last errors and times.
    Show {
        /// The event's id.
        event_id: Uuid,
        /// The handler (`Type::method`), when the event is dead for several.
        #[arg(long)]
        handler: Option<String>,
    },
    /// Delivers a dead letter to its handler again, then what it held (see
    /// `Domain::redeliver`); with `--all`, every dead letter the filters match.
    #[command(alias = "redeliver")]
    Replay {
        /// The event's id (or `--all`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        event_id: Option<Uuid>,
        /// Every dead letter (of `--handler`, `--event-type`, `--stream`, when given).
        #[arg(long)]
        all: bool,
        /// Which dead letters, with `--all`; `--handler` names the handler of `EVENT_ID`.
        #[command(flatten)]
        filter: DeadLetterFilter,
    },
    /// Gives up on a dead letter: its handler never gets the event; what it held is
    /// delivered.
    Discard {
        /// The event's id.
        event_id: Uuid,
        /// The handler (`Type::method`), when the event is dead for several.
        #[arg(long)]
        handler: Option<String>,
    },
}

/// Which dead letters `list` and `replay --all` take.
#[derive(Debug, Clone, Default, Args)]
pub struct DeadLetterFilter {
    /// Only this handler's (`Type::method`).
    #[arg(long)]
    pub handler: Option<String>,
    /// Only events of this type (`Aggregate.Event`).
    #[arg(long)]
    pub event_type: Option<String>,
    /// Only events of this stream (`Aggregate/id`).
    #[arg(long)]
    pub stream: Option<String>,
}

/// How many dead letters `replay --all` with filters reads at a time.
const PAGE: usize = 1_000;

impl DeadLetters {
    /// Runs the command; see [`Ops::run`](crate::cli::Ops::run).
    pub(super) async fn run(self, domain: &Domain, json: bool, out: &mut impl Write) -> Outcome {
        match self {
            DeadLetters::List { filter, limit } => {
                let Some(letters) = matching(domain, &filter, limit, json, out).await? else {
                    return Ok(Exit::NotFound);
                };
                if json {
                    let list: Vec<Value> = letters.iter().map(FailedDelivery::to_json).collect();
                    writeln!(out, "{}", Value::Array(list))?;
                } else if letters.is_empty() {
                    writeln!(out, "no dead letters")?;
                } else {
                    for letter in &letters {
                        writeln!(
                            out,
                            "{} {} {} {} #{} ({} attempts, last {}): {}",
                            letter.event.id,
                            letter.handler,
                            letter.event.type_name,
                            letter.event.stream,
                            letter.event.sequence,
                            letter.attempts,
                            letter.last_failed_at,
                            letter.last_error
                        )?;
                    }
                }
                Ok(Exit::Ok)
            }
            DeadLetters::Show { event_id, handler } => {
                let Some(letter) = resolve(domain, event_id, handler, json, out).await? else {
                    return Ok(Exit::NotFound);
                };
                if json {
                    writeln!(out, "{}", letter.to_json())?;
                } else {
                    show(out, &letter)?;
                }
                Ok(Exit::Ok)
            }
            DeadLetters::Replay { event_id: Some(event_id), filter, .. } => {
                let Some(letter) = resolve(domain, event_id, filter.handler, json, out).await? else {
                    return Ok(Exit::NotFound);
                };
                settle(domain.redeliver(&letter.handler, event_id).await, out, json, &letter.handler, event_id)
            }
            DeadLetters::Replay { event_id: None, filter, .. } => replay_all(domain, filter, json, out).await,
            DeadLetters::Discard { event_id, handler } => {
                let Some(letter) = resolve(domain, event_id, handler, json, out).await? else {
                    return Ok(Exit::NotFound);
                };
                settle(domain.discard(&letter.handler, event_id).await, out, json, &letter.handler, event_id)
            }
        }
    }
}

/// The dead letters `filter` matches, at most `limit`; `None` (said) when its stream
/// is not one.
async fn matching(
    domain: &Domain,
    filter: &DeadLetterFilter,
    limit: usize,
    json: bool,
    out: &mut impl Write,
) -> Result<Option<Vec<FailedDelivery>>, Box<dyn std::error::Error + Send + Sync>> {
    let stream = match filter.stream.as_deref().map(|s| (s, super::parse_stream(s))) {
        None => None,
        Some((_, Some(stream))) => Some(stream),
        Some((text, None)) => {
            super::say(out, json, &format!("`{text}` is not a stream: write `Aggregate/id`"))?;
            return Ok(None);
        }
    };
    let query = FailureQuery { handler: filter.handler.clone(), stream, status: Some(FailureStatus::Dead), limit };
    let mut letters = domain.delivery_failures(query).await?;
    if let Some(event_type) = &filter.event_type {
        letters.retain(|letter| letter.event.type_name == event_type.as_str());
    }
    Ok(Some(letters))
}

/// The dead letter of `event_id`: of `handler` when given, else of the one handler it
/// is dead for. `None`, said, when there is none, or several and no `handler`.
async fn resolve(
    domain: &Domain,
    event_id: Uuid,
    handler: Option<String>,
    json: bool,
    out: &mut impl Write,
) -> Result<Option<FailedDelivery>, Box<dyn std::error::Error + Send + Sync>> {
    if let Some(handler) = handler {
        let letter = domain.dead_letter(&handler, event_id).await?;
        if letter.is_none() {
            super::say(out, json, &format!("no dead letter of `{handler}` for event {event_id}"))?;
        }
        return Ok(letter);
    }
    let mut found = Vec::new();
    let mut names: Vec<&str> = domain.model().handlers().iter().map(|h| h.name()).collect();
    names.dedup();
    for name in names {
        if let Some(letter) = domain.dead_letter(name, event_id).await? {
            found.push(letter);
        }
    }
    match found.len() {
        0 => {
            super::say(out, json, &format!("no dead letter for event {event_id}"))?;
            Ok(None)
        }
        1 => Ok(found.pop()),
        _ => {
            let handlers: Vec<&str> = found.iter().map(|l| l.handler.as_str()).collect();
            let message = format!(
                "event {event_id} is dead for {} handlers ({}): name one with --handler",
                handlers.len(),
                handlers.join(", ")
            );
            super::say(out, json, &message)?;
            Ok(None)
        }
    }
}

/// `replay --all`: every dead letter, or every one the filters match.
async fn replay_all(domain: &Domain, filter: DeadLetterFilter, json: bool, out: &mut impl Write) -> Outcome {
    if filter.handler.is_none() && filter.event_type.is_none() && filter.stream.is_none() {
        let done = domain.redeliver_all().await?;
        return report_replayed(done, out, json);
    }
    let mut done = Redelivered::default();
    let mut tried: std::collections::HashSet<(String, Uuid)> = std::collections::HashSet::new();
    loop {
        let Some(letters) = matching(domain, &filter, PAGE, json, out).await? else {
            return Ok(Exit::NotFound);
        };
        let fresh: Vec<FailedDelivery> =
            letters.into_iter().filter(|l| !tried.contains(&(l.handler.clone(), l.event.id))).collect();
        if fresh.is_empty() {
            break;
        }
        for letter in fresh {
            tried.insert((letter.handler.clone(), letter.event.id));
            match domain.redeliver(&letter.handler, letter.event.id).await {
                // Delivered already, behind another letter replayed before it.
                Err(ProcessError::NoDeadLetter { .. }) => {}
                Err(error) => return Err(error.into()),
                Ok(one) => {
                    done.delivered.extend(one.delivered);
                    done.failed.extend(one.failed);
                }
            }
        }
    }
    report_replayed(done, out, json)
}

/// Reports what a redelivery or a discard did.
fn settle(
    outcome: Result<Redelivered, ProcessError>,
    out: &mut impl Write,
    json: bool,
    handler: &str,
    event_id: Uuid,
) -> Outcome {
    let done = match outcome {
        Err(ProcessError::NoDeadLetter { .. }) => return not_found(out, json, handler, event_id),
        Err(error) => return Err(error.into()),
        Ok(done) => done,
    };
    report_replayed(done, out, json)
}

/// Prints what a replay delivered and what failed again.
fn report_replayed(done: Redelivered, out: &mut impl Write, json: bool) -> Outcome {
    if json {
        let delivered: Vec<Value> =
            done.delivered.iter().map(|(h, id)| json!({ "handler": h, "event_id": id })).collect();
        let failed: Vec<Value> = done.failed.iter().map(FailedDelivery::to_json).collect();
        writeln!(out, "{}", json!({ "delivered": delivered, "failed": failed }))?;
    } else {
        for (handler, id) in &done.delivered {
            writeln!(out, "delivered: {handler} {id}")?;
        }
        for letter in &done.failed {
            writeln!(
                out,
                "failed again: {} {} ({} attempts): {}",
                letter.handler, letter.event.id, letter.attempts, letter.last_error
            )?;
        }
    }
    Ok(if done.failed.is_empty() { Exit::Ok } else { Exit::Attention })
}

/// No dead letter of `handler` for `event_id`: said, and [`Exit::NotFound`].
fn not_found(out: &mut impl Write, json: bool, handler: &str, event_id: Uuid) -> Outcome {
    super::say(out, json, &format!("no dead letter of `{handler}` for event {event_id}"))?;
    Ok(Exit::NotFound)
}

/// A dead letter, every field, for a reader.
fn show(out: &mut impl Write, letter: &FailedDelivery) -> std::io::Result<()> {
    writeln!(out, "handler:   {}", letter.handler)?;
    writeln!(out, "event:     {} {} v{}", letter.event.id, letter.event.type_name, letter.event.version)?;
    writeln!(out, "stream:    {} #{}", letter.event.stream, letter.event.sequence)?;
    writeln!(out, "status:    {}", letter.status)?;
    writeln!(out, "attempts:  {}", letter.attempts)?;
    writeln!(out, "first:     {}: {}", letter.first_failed_at, letter.first_error)?;
    writeln!(out, "last:      {}: {}", letter.last_failed_at, letter.last_error)?;
    writeln!(out, "payload:   {}", letter.event.payload)
}
