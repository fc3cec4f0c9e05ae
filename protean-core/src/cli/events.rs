//! `ops events ...`: a stream's events, a conversation's causal chain, the log as it
//! grows.

use std::io::Write;
use std::time::Duration;

use clap::Subcommand;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::cli::{Exit, Outcome, Stop};
use crate::runtime::{Domain, TraceEvent};
use crate::store::{Envelope, OffsetDateTime, Scheduled};

/// How often `events tail` asks the store for new events.
const TAIL_POLL: Duration = Duration::from_millis(100);

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
        /// Only the events recorded at or before this time (RFC 3339,
        /// `2026-12-07T21:00:00Z`): the stream as it was then.
        #[arg(long, value_parser = parse_time)]
        as_of: Option<OffsetDateTime>,
    },
    /// The causal chain of a conversation (the id of its first command): the command,
    /// its events, what handlers and projectors raised on them, the commands process
    /// managers sent, as a tree by causation id. Reads the whole log.
    Trace {
        /// The conversation's correlation id.
        correlation_id: Uuid,
    },
    /// Follows the event log: prints each event as it is stored (with `--json`, one
    /// JSON document per line), until interrupted or `--limit` events are printed.
    Tail {
        /// Starts after this log position (0: the whole log); by default, at the log's
        /// end now, so only new events are printed.
        #[arg(long)]
        from: Option<u64>,
        /// Stops after this many events.
        #[arg(long)]
        limit: Option<u64>,
    },
}

/// An RFC 3339 time.
fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| format!("not an RFC 3339 time ({e}): write 2026-12-07T21:00:00Z"))
}

impl Events {
    /// Runs the command; see [`Ops::run`](crate::cli::Ops::run).
    pub(super) async fn run(self, domain: &Domain, json: bool, out: &mut impl Write, stop: Stop<'_>) -> Outcome {
        match self {
            Events::Read { stream, from, as_of } => read(domain, &stream, from, as_of, json, out).await,
            Events::Trace { correlation_id } => trace(domain, correlation_id, json, out).await,
            Events::Tail { from, limit } => {
                // Stopped: what was printed stands.
                tokio::select! {
                    outcome = tail(domain, from, limit, json, out) => outcome,
                    () = stop => Ok(Exit::Ok),
                }
            }
        }
    }
}

async fn read(
    domain: &Domain,
    stream: &str,
    from: u64,
    as_of: Option<OffsetDateTime>,
    json: bool,
    out: &mut impl Write,
) -> Outcome {
    let Some(stream) = super::parse_stream(stream) else {
        super::say(out, json, &format!("`{stream}` is not a stream: write `Aggregate/id`"))?;
        return Ok(Exit::NotFound);
    };
    let mut events = domain.store().stream_range(&stream, from.saturating_sub(1), None).await?;
    if events.is_empty() && from <= 1 {
        super::say(out, json, &format!("no events in stream `{stream}`"))?;
        return Ok(Exit::NotFound);
    }
    if let Some(as_of) = as_of {
        // Sequences grow with time in a stream: the stream as it was is a prefix.
        let kept = events.iter().take_while(|e| e.recorded_at <= as_of).count();
        events.truncate(kept);
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

async fn trace(domain: &Domain, correlation_id: Uuid, json: bool, out: &mut impl Write) -> Outcome {
    let trace = domain.trace(correlation_id).await?;
    if trace.commands.is_empty() && trace.scheduled.is_empty() {
        super::say(out, json, &format!("no events of the conversation {correlation_id}"))?;
        return Ok(Exit::NotFound);
    }
    if json {
        let commands: Vec<Value> = trace
            .commands
            .iter()
            .map(|c| {
                json!({
                    "command_id": c.command_id,
                    "first": c.command_id == correlation_id,
                    "events": c.events.iter().map(node_json).collect::<Vec<_>>(),
                })
            })
            .collect();
        let scheduled: Vec<Value> = trace.scheduled.iter().map(scheduled_json).collect();
        let document = json!({ "correlation_id": correlation_id, "commands": commands, "scheduled": scheduled });
        writeln!(out, "{document}")?;
        return Ok(Exit::Ok);
    }
    for command in &trace.commands {
        let sender = if command.command_id == correlation_id { "" } else { " (sent by a process manager)" };
        writeln!(out, "command {}{sender}", command.command_id)?;
        for node in &command.events {
            write_node(out, node, 1)?;
        }
    }
    for command in &trace.scheduled {
        writeln!(out, "{}", scheduled_line(command))?;
    }
    Ok(Exit::Ok)
}

/// An event of a trace and what it caused, indented by depth.
fn write_node(out: &mut impl Write, node: &TraceEvent, depth: usize) -> std::io::Result<()> {
    let indent = "  ".repeat(depth);
    let event = &node.event;
    writeln!(out, "{indent}{} {} #{} {}", event.type_name, event.stream, event.sequence, event.id)?;
    for command in &node.scheduled {
        writeln!(out, "{indent}  {}", scheduled_line(command))?;
    }
    for child in &node.caused {
        write_node(out, child, depth + 1)?;
    }
    Ok(())
}

fn scheduled_line(command: &Scheduled) -> String {
    let name = command.name.as_deref().map_or(String::new(), |n| format!(" `{n}`"));
    format!(
        "scheduled {} {}{name} by {} {}, due {}",
        command.type_name, command.id, command.owner, command.owner_key, command.due_at
    )
}

fn node_json(node: &TraceEvent) -> Value {
    let mut event = event_json(&node.event);
    event["stream"] = json!(node.event.stream.to_string());
    event["caused"] = Value::Array(node.caused.iter().map(node_json).collect());
    event["scheduled"] = Value::Array(node.scheduled.iter().map(scheduled_json).collect());
    event
}

fn scheduled_json(command: &Scheduled) -> Value {
    json!({
        "id": command.id,
        "command_type": command.type_name,
        "name": command.name,
        "owner": command.owner,
        "owner_key": command.owner_key,
        "due_at": command.due_at.format(&Rfc3339).unwrap_or_default(),
        "causation_id": command.causation_id,
        "payload": serde_json::from_str::<Value>(&command.payload).unwrap_or(Value::Null),
    })
}

async fn tail(domain: &Domain, from: Option<u64>, limit: Option<u64>, json: bool, out: &mut impl Write) -> Outcome {
    let store = domain.store();
    let mut after = match from {
        Some(from) => from,
        None => {
            // The log's end: its last position (positions may have gaps).
            let mut end = 0;
            while let Some(last) = store.log_after(end, 1_000, &[]).await?.last() {
                end = last.position;
            }
            end
        }
    };
    let mut printed = 0;
    while limit.is_none_or(|limit| printed < limit) {
        let page = store.log_after(after, 100, &[]).await?;
        if page.is_empty() {
            tokio::time::sleep(TAIL_POLL).await;
            continue;
        }
        for logged in page {
            after = logged.position;
            let event = &logged.event;
            if json {
                let mut document = event_json(event);
                document["position"] = json!(logged.position);
                document["stream"] = json!(event.stream.to_string());
                writeln!(out, "{document}")?;
            } else {
                writeln!(
                    out,
                    "{} {} {} #{} {}",
                    logged.position, event.type_name, event.stream, event.sequence, event.id
                )?;
            }
            out.flush()?;
            printed += 1;
            if limit.is_some_and(|limit| printed >= limit) {
                break;
            }
        }
    }
    Ok(Exit::Ok)
}

/// An event as JSON, its payload as a JSON value.
fn event_json(event: &Envelope) -> Value {
    json!({
        "sequence": event.sequence,
        "event_id": event.id,
        "event_type": event.type_name,
        "event_version": event.version,
        "recorded_at": event.recorded_at.format(&Rfc3339).unwrap_or_default(),
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "payload": serde_json::from_str::<Value>(&event.payload).unwrap_or(Value::Null),
    })
}
