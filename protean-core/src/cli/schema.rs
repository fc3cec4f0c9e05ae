//! `ops schema ...`: the domain's stored contract against its lock, `protean.lock`
//! ([`crate::contract`]).

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{json, Value};

use crate::cli::{Exit, Outcome};
use crate::contract::{
    self, check_lock, compare, json_schemas, merge, read_lock, Lock, LockError, LockMode, Outcome as Verdict,
};
use crate::runtime::Domain;

/// The contract-lock commands. The lock is `protean.lock` in the current directory
/// unless `--lock` names another (a binary has no crate root to find it by).
#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Compares the model with the lock: exit 0 when nothing breaks (a stale lock is
    /// listed), 4 when a change breaks stored data, or with `--strict` when the lock is
    /// stale; 3 when there is no lock. Writes nothing.
    Check {
        /// The lock file.
        #[arg(long, default_value = "protean.lock")]
        lock: PathBuf,
        /// Fails (exit 4) on a stale lock too, for CI.
        #[arg(long)]
        strict: bool,
    },
    /// Every change between the lock and the model: its rule, verdict and outcome, and
    /// the lock's lines that would change. Exit 4 when one breaks.
    Diff {
        /// The lock file.
        #[arg(long, default_value = "protean.lock")]
        lock: PathBuf,
    },
    /// Rewrites the lock for the changes made: only when none breaks, unless `--force`.
    Update {
        /// The lock file.
        #[arg(long, default_value = "protean.lock")]
        lock: PathBuf,
        /// Rewrites it whatever changed (for a change that is meant, and that nothing
        /// stored holds).
        #[arg(long)]
        force: bool,
    },
    /// Marks an event or command retired in the lock, by its stored type name
    /// (`Order.OrderCancelled`): once no stream holds it, it may leave the model.
    Retire {
        /// The stored type name.
        type_name: String,
        /// The lock file.
        #[arg(long, default_value = "protean.lock")]
        lock: PathBuf,
    },
    /// JSON Schema (draft 2020-12) of the events and commands as stored, for another
    /// service to check what it receives: all of them (a JSON list), or the one named.
    Export {
        /// The stored type name of one event or command (`Order.OrderPlaced`).
        type_name: Option<String>,
    },
}

impl SchemaCommand {
    /// Runs the command; see [`Ops::run`](crate::cli::Ops::run).
    pub(super) fn run(self, domain: &Domain, json: bool, out: &mut impl Write) -> Outcome {
        let model = domain.model();
        match self {
            SchemaCommand::Check { lock, strict } => match check_lock(model, &lock, LockMode::Verify) {
                Ok(report) => {
                    let stale = report.stale();
                    if json {
                        writeln!(out, "{}", report_json(&report.changes, &report.notes, false, stale, &lock))?;
                    } else {
                        writeln!(out, "{report}")?;
                    }
                    Ok(if stale && strict { Exit::Attention } else { Exit::Ok })
                }
                Err(error) => failed(error, json, out),
            },
            SchemaCommand::Diff { lock } => {
                let Some((text, old)) = read_lock(&lock)? else {
                    return failed(LockError::Missing { path: lock }, json, out);
                };
                let now = Lock::of(model);
                let (changes, notes) = compare(model, &old, &now);
                let breaking = changes.iter().any(|c| c.outcome == Verdict::Breaking);
                let merged = merge(&old, &now).to_text();
                if json {
                    let mut document = report_json(&changes, &notes, false, !changes.is_empty(), &lock);
                    document["lines"] = json!(line_diff(&text, &merged));
                    writeln!(out, "{document}")?;
                } else if changes.is_empty() {
                    writeln!(out, "{}: up to date", lock.display())?;
                } else {
                    for c in &changes {
                        writeln!(out, "{c}")?;
                    }
                    for line in line_diff(&text, &merged) {
                        writeln!(out, "{line}")?;
                    }
                }
                Ok(if breaking { Exit::Attention } else { Exit::Ok })
            }
            SchemaCommand::Update { lock, force } => {
                let mode = if force { LockMode::Force } else { LockMode::Update };
                match check_lock(model, &lock, mode) {
                    Ok(report) => {
                        if json {
                            writeln!(
                                out,
                                "{}",
                                report_json(&report.changes, &report.notes, report.written, false, &lock)
                            )?;
                        } else if report.written {
                            writeln!(out, "{}: written ({} change(s))", lock.display(), report.changes.len())?;
                            for c in &report.changes {
                                writeln!(out, "  - {c}")?;
                            }
                        } else {
                            writeln!(out, "{}: up to date", lock.display())?;
                        }
                        Ok(Exit::Ok)
                    }
                    Err(error) => failed(error, json, out),
                }
            }
            SchemaCommand::Retire { type_name, lock } => match contract::retire(&lock, &type_name) {
                Ok(true) => {
                    if json {
                        writeln!(out, "{}", json!({ "retired": type_name, "lock": lock }))?;
                    } else {
                        writeln!(out, "{type_name} is retired in {}", lock.display())?;
                    }
                    Ok(Exit::Ok)
                }
                Ok(false) => {
                    let message = format!("{} holds no event or command `{type_name}`", lock.display());
                    super::say(out, json, &message)?;
                    Ok(Exit::NotFound)
                }
                Err(error) => failed(error, json, out),
            },
            SchemaCommand::Export { type_name } => {
                let schemas: Vec<Value> = json_schemas(model)
                    .into_iter()
                    .filter(|(name, _)| type_name.as_deref().is_none_or(|t| t == name))
                    .map(|(_, schema)| schema)
                    .collect();
                match (type_name, schemas.as_slice()) {
                    (None, _) => writeln!(out, "{:#}", Value::Array(schemas))?,
                    (Some(_), [one]) => writeln!(out, "{one:#}")?,
                    (Some(name), _) => {
                        super::say(out, json, &format!("no event or command is stored as `{name}`"))?;
                        return Ok(Exit::NotFound);
                    }
                }
                Ok(Exit::Ok)
            }
        }
    }
}

/// The exit code of a failed check, its text (or JSON) written.
fn failed(error: LockError, json: bool, out: &mut impl Write) -> Outcome {
    match error {
        LockError::Breaking { path, changes } => {
            if json {
                let mut document = report_json(&changes, &[], false, true, &path);
                document["error"] = json!(LockError::Breaking { path, changes }.to_string());
                writeln!(out, "{document}")?;
            } else {
                writeln!(out, "{}", LockError::Breaking { path, changes })?;
            }
            Ok(Exit::Attention)
        }
        LockError::Missing { .. } => {
            super::say(out, json, &error.to_string())?;
            Ok(Exit::NotFound)
        }
        other => Err(Box::new(other)),
    }
}

fn report_json(
    changes: &[contract::Change],
    notes: &[String],
    written: bool,
    stale: bool,
    lock: &std::path::Path,
) -> Value {
    let breaking = changes.iter().any(|c| c.outcome == Verdict::Breaking);
    json!({
        "lock": lock,
        "breaking": breaking,
        "stale": stale && !breaking,
        "written": written,
        "changes": changes,
        "notes": notes,
    })
}

/// The lines of `old` missing from `new` (`- ` before them) and of `new` missing from
/// `old` (`+ `), by block: what the lock's own diff in review will show.
fn line_diff(old: &str, new: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let (mut old_block, mut new_block) = ("", "");
    let in_other = |line: &str, text: &str, title: &str| {
        let mut block = "";
        text.lines().any(|l| {
            if l.starts_with('[') {
                block = l;
            }
            block == title && l == line
        })
    };
    for line in old.lines() {
        if line.starts_with('[') {
            old_block = line;
        }
        if !line.is_empty() && !line.starts_with('#') && !in_other(line, new, old_block) {
            lines.push(if line == old_block { format!("- {line}") } else { format!("- {old_block} {line}") });
        }
    }
    for line in new.lines() {
        if line.starts_with('[') {
            new_block = line;
        }
        if !line.is_empty() && !line.starts_with('#') && !in_other(line, old, new_block) {
            lines.push(if line == new_block { format!("+ {line}") } else { format!("+ {new_block} {line}") });
        }
    }
    lines
}
