//! `ops model export` and `ops check`: the domain's model, pictured or diagnosed.

use std::io::Write;

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use crate::cli::{Exit, Outcome};
use crate::registry::Severity;
use crate::runtime::Domain;

/// The model commands.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Writes the model: JSON, a Mermaid class diagram or a Graphviz graph.
    Export {
        /// The format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
    },
}

/// A format of `ops model export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// `Model::to_json`, pretty-printed.
    Json,
    /// `Model::to_mermaid`.
    Mermaid,
    /// `Model::to_dot`.
    Dot,
}

impl ModelCommand {
    /// Runs the command; see [`Ops::run`](crate::cli::Ops::run). The export is the
    /// document itself, whatever `--json` says.
    pub(super) fn run(self, domain: &Domain, _json: bool, out: &mut impl Write) -> Outcome {
        let ModelCommand::Export { format } = self;
        let model = domain.model();
        match format {
            ExportFormat::Json => writeln!(out, "{:#}", model.to_json())?,
            ExportFormat::Mermaid => write!(out, "{}", model.to_mermaid())?,
            ExportFormat::Dot => write!(out, "{}", model.to_dot())?,
        }
        Ok(Exit::Ok)
    }
}

/// `ops check`: [`Model::diagnose`](crate::registry::Model::diagnose), one line per
/// finding (`W001 warning Element: message`) or a JSON list; [`Exit::Attention`] when
/// any is an error.
pub(super) fn check(domain: &Domain, json: bool, out: &mut impl Write) -> Outcome {
    let found = domain.model().diagnose();
    if json {
        writeln!(out, "{}", json!(found))?;
    } else if found.is_empty() {
        writeln!(out, "no findings")?;
    } else {
        for d in &found {
            writeln!(out, "{} {} {}: {}", d.code, d.severity.as_str(), d.element, d.message)?;
        }
        let errors = found.iter().filter(|d| d.severity == Severity::Error).count();
        writeln!(out, "{} finding(s), {errors} error(s)", found.len())?;
    }
    let errors = found.iter().any(|d| d.severity == Severity::Error);
    Ok(if errors { Exit::Attention } else { Exit::Ok })
}
