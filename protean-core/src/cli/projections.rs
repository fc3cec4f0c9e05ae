//! `ops projections ...`: where each projection stands.

use std::io::Write;

use clap::Subcommand;
use serde_json::{json, Value};

use crate::cli::{Exit, Outcome};
use crate::runtime::Domain;

/// The projection commands.
#[derive(Debug, Subcommand)]
pub enum Projections {
    /// Every projection: the serving copy's version (and the declared one), its
    /// checkpoint, how many events it is behind, and a rebuild under way.
    Status,
}

impl Projections {
    /// Runs the command; see [`Ops::run`](crate::cli::Ops::run).
    pub(super) async fn run(self, domain: &Domain, json: bool, out: &mut impl Write) -> Outcome {
        match self {
            Projections::Status => {
                let statuses = domain.projection_statuses().await?;
                if json {
                    let list: Vec<Value> = statuses
                        .iter()
                        .map(|s| {
                            json!({
                                "projection": s.projection,
                                "version": s.version,
                                "declared_version": s.declared_version,
                                "generation": s.generation,
                                "checkpoint": s.checkpoint,
                                "lag": s.lag,
                                "rebuilding": s.build.as_ref().map(|b| json!({
                                    "version": b.version,
                                    "position": b.position,
                                })),
                            })
                        })
                        .collect();
                    writeln!(out, "{}", Value::Array(list))?;
                } else {
                    writeln!(
                        out,
                        "{:<32} {:>8} {:>11} {:>8} rebuild",
                        "projection", "version", "checkpoint", "behind"
                    )?;
                    for s in &statuses {
                        let version = if s.version == s.declared_version {
                            s.version.to_string()
                        } else {
                            format!("{}->{}", s.version, s.declared_version)
                        };
                        let rebuild =
                            s.build.as_ref().map_or("-".to_owned(), |b| format!("v{} at {}", b.version, b.position));
                        writeln!(
                            out,
                            "{:<32} {:>8} {:>11} {:>8} {rebuild}",
                            s.projection, version, s.checkpoint, s.lag
                        )?;
                    }
                }
                let outdated = statuses.iter().any(|s| s.version != s.declared_version || s.build.is_some());
                Ok(if outdated { Exit::Attention } else { Exit::Ok })
            }
        }
    }
}
