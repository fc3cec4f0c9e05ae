//! `ops dead-letters ...`: list, show, redeliver and discard dead letters.

use std::io::Write;

use clap::Subcommand;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::cli::{Exit, Outcome};
use crate::runtime::{Domain, ProcessError, Redelivered};
use crate::store::{FailedDelivery, FailureQuery, FailureStatus};

/// The dead-letter commands. A dead letter is named by its handler and its event's id.
#[derive(Debug, Subcommand)]
pub enum DeadLetters {
    /// Lists dead letters, oldest event first.
    List {
        /// Only this handler's (`Type::method`).
        #[arg(long)]
        handler: Option<String>,
        /// Only events of this type (`Aggregate.Event`).
        #[arg(long)]
        event_type: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Shows one dead letter: its event, attempts, first and last errors and times.
    Show {
        /// The handler (`Type::method`).
        handler: String,
        /// The event's id.
        event_id: Uuid,
    },
    /// Delivers a dead letter to its handler again, then what it held (see
    /// `Domain::redeliver`).
    Redeliver {
        /// The handler (`Type::method`).
        handler: String,
        /// The event's id.
        event_id: Uuid,
    },
    /// Gives up on a dead letter: its handler never gets the event; what it held is
    /// delivered.
    Discard {
        /// The handler (`Type::method`).
        handler: String,
        /// The event's id.
        event_id: Uuid,
    },
}

impl DeadLetters {
    /// Runs the command; see [`Ops::run`](crate::cli::Ops::run).
    pub(super) async fn run(self, domain: &Domain, json: bool, out: &mut impl Write) -> Outcome {
        match self {
            DeadLetters::List { handler, event_type, limit } => {
                let query =
                    FailureQuery { handler, status: Some(FailureStatus::Dead), limit, ..FailureQuery::default() };
                let mut letters = domain.delivery_failures(query).await?;
                if let Some(event_type) = event_type {
                    letters.retain(|letter| letter.event.type_name == event_type);
                }
                if json {
                    let list: Vec<Value> = letters.iter().map(letter_json).collect();
                    writeln!(out, "{}", Value::Array(list))?;
                } else if letters.is_empty() {
                    writeln!(out, "no dead letters")?;
                } else {
                    for letter in &letters {
                        writeln!(
                            out,
                            "{} {} {} #{} ({} attempts): {}",
                            letter.handler,
                            letter.event.id,
                            letter.event.type_name,
                            letter.event.sequence,
                            letter.attempts,
                            letter.last_error
                        )?;
                    }
                }
                Ok(Exit::Ok)
            }
            DeadLetters::Show { handler, event_id } => match domain.dead_letter(&handler, event_id).await? {
                None => not_found(out, json, &handler, event_id),
                Some(letter) => {
                    if json {
                        writeln!(out, "{}", letter_json(&letter))?;
                    } else {
                        show(out, &letter)?;
                    }
                    Ok(Exit::Ok)
                }
            },
            DeadLetters::Redeliver { handler, event_id } => {
                settle(domain.redeliver(&handler, event_id).await, out, json, &handler, event_id)
            }
            DeadLetters::Discard { handler, event_id } => {
                settle(domain.discard(&handler, event_id).await, out, json, &handler, event_id)
            }
        }
    }
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
    if json {
        let delivered: Vec<Value> =
            done.delivered.iter().map(|(h, id)| json!({ "handler": h, "event_id": id })).collect();
        let failed: Vec<Value> = done.failed.iter().map(letter_json).collect();
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
    writeln!(out, "first:     {} {}", letter.first_failed_at, letter.first_error)?;
    writeln!(out, "last:      {} {}", letter.last_failed_at, letter.last_error)?;
    writeln!(out, "payload:   {}", letter.event.payload)
}

/// A dead letter as JSON.
fn letter_json(letter: &FailedDelivery) -> Value {
    let payload: Value = serde_json::from_str(&letter.event.payload).unwrap_or(Value::Null);
    json!({
        "handler": letter.handler,
        "event_id": letter.event.id,
        "event_type": letter.event.type_name,
        "event_version": letter.event.version,
        "stream": letter.event.stream.to_string(),
        "sequence": letter.event.sequence,
        "status": letter.status.as_str(),
        "attempts": letter.attempts,
        "first_error": letter.first_error,
        "last_error": letter.last_error,
        "first_failed_at": letter.first_failed_at.to_string(),
        "last_failed_at": letter.last_failed_at.to_string(),
        "payload": payload,
    })
}
