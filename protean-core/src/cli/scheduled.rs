//! `ops scheduled ...`: the commands process managers sent that have not fired yet.

use std::io::Write;

use clap::Subcommand;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::cli::{Exit, Outcome};
use crate::runtime::Domain;

/// The scheduled-command commands.
#[derive(Debug, Subcommand)]
pub enum ScheduledCommands {
    /// The pending commands, earliest due first: id, command, deadline name, sender, due time.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Cancels a pending command: it never fires.
    Cancel {
        /// The scheduled command's id (as `scheduled list` prints it).
        id: Uuid,
    },
}

impl ScheduledCommands {
    /// Runs the command; see [`Ops::run`](crate::cli::Ops::run).
    pub(super) async fn run(self, domain: &Domain, json: bool, out: &mut impl Write) -> Outcome {
        match self {
            ScheduledCommands::List { limit } => {
                let pending = domain.scheduled_commands(limit).await?;
                if json {
                    let list: Vec<Value> = pending
                        .iter()
                        .map(|c| {
                            json!({
                                "id": c.id,
                                "command_type": c.type_name,
                                "name": c.name,
                                "owner": c.owner,
                                "owner_key": c.owner_key,
                                "due_at": c.due_at.format(&Rfc3339).unwrap_or_default(),
                                "correlation_id": c.correlation_id,
                                "causation_id": c.causation_id,
                                "payload": serde_json::from_str::<Value>(&c.payload).unwrap_or(Value::Null),
                            })
                        })
                        .collect();
                    writeln!(out, "{}", Value::Array(list))?;
                } else if pending.is_empty() {
                    writeln!(out, "no scheduled commands")?;
                } else {
                    for c in &pending {
                        let name = c.name.as_deref().unwrap_or("-");
                        writeln!(out, "{} {} {name} {} {} due {}", c.id, c.type_name, c.owner, c.owner_key, c.due_at)?;
                    }
                }
                Ok(Exit::Ok)
            }
            ScheduledCommands::Cancel { id } => {
                if domain.cancel_scheduled(id).await? {
                    if json {
                        writeln!(out, "{}", json!({ "cancelled": id }))?;
                    } else {
                        writeln!(out, "cancelled: {id}")?;
                    }
                    Ok(Exit::Ok)
                } else {
                    super::say(
                        out,
                        json,
                        &format!("no pending scheduled command {id} (fired, cancelled, or unknown)"),
                    )?;
                    Ok(Exit::NotFound)
                }
            }
        }
    }
}
