//! `ops events ...`: the stored events of one stream.

use std::io::Write;

use clap::Subcommand;
use serde_json::{json, Value};

use crate::cli::{Exit, Outcome};
use crate::runtime::Domain;
use crate::store::{Envelope, StreamId};

/// The event commands.
#[derive(Debug, Subcommand)]
pub enum Events {
    /// The events of one stream, in order: `Aggregate/id` (as the other commands print
    /// streams), from sequence `--from` on.
    Read {
        /// The stream, `Aggregate/id`.
        stream: String,
        /// The first sequence to show.
        #[arg(long, default_value_t = 1)]
        from: u64,
    },
}

impl Events {
    /// Runs the command; see [`Ops::run`](crate::cli::Ops::run).
    pub(super) async fn run(self, domain: &Domain, json: bool, out: &mut impl Write) -> Outcome {
        match self {
            Events::Read { stream, from } => {
                let Some((aggregate, id)) = stream.split_once('/').filter(|(a, i)| !a.is_empty() && !i.is_empty())
                else {
                    let message = format!("`{stream}` is not a stream: write `Aggregate/id`");
                    super::say(out, json, &message)?;
                    return Ok(Exit::NotFound);
                };
                let stream = StreamId::new(aggregate.to_owned(), id.to_owned());
                let events = domain.store().stream_range(&stream, from.saturating_sub(1), None).await?;
                if events.is_empty() && from <= 1 {
                    super::say(out, json, &format!("no events in stream `{stream}`"))?;
                    return Ok(Exit::NotFound);
                }
                if json {
                    writeln!(out, "{}", Value::Array(events.iter().map(event_json).collect()))?;
                } else {
                    for event in &events {
                        writeln!(
                            out,
                            "#{} {} v{} {} {} {}",
                            event.sequence, event.type_name, event.version, event.recorded_at, event.id, event.payload
                        )?;
                    }
                }
                Ok(Exit::Ok)
            }
        }
    }
}

/// An event as JSON, its payload as a JSON value.
fn event_json(event: &Envelope) -> Value {
    json!({
        "sequence": event.sequence,
        "event_id": event.id,
        "event_type": event.type_name,
        "event_version": event.version,
        "recorded_at": event.recorded_at.to_string(),
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "payload": serde_json::from_str::<Value>(&event.payload).unwrap_or(Value::Null),
    })
}
