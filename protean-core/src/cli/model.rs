//! `ops model export` and `ops check`: the domain's model, pictured or diagnosed.

use std::io::Write;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use crate::cli::sarif::to_sarif;
use crate::cli::{Exit, Outcome};
use crate::registry::{CheckConfig, Diagnostic, Level, Rule, Severity};
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

/// `ops check`'s options: the format, severities per code, the bounds of
/// `aggregate-too-large`, whether warnings fail, and whether to read the store.
#[derive(Debug, Clone, Default, Args)]
pub struct CheckArgs {
    /// The format: text (the default), json (also `--json`), sarif (SARIF 2.1.0) or
    /// github (workflow annotations, one line per finding).
    #[arg(long, value_enum)]
    pub format: Option<CheckFormat>,
    /// Reports a rule's findings at another severity, or not at all:
    /// `--severity W001=off`, `--severity W007=error`. Repeatable.
    #[arg(long = "severity", value_name = "CODE=off|note|warning|error", value_parser = parse_severity)]
    pub severities: Vec<(String, Level)>,
    /// The most fields an aggregate root may declare (default 30).
    #[arg(long, value_name = "N")]
    pub max_fields: Option<usize>,
    /// The most entities an aggregate may hold (default 10).
    #[arg(long, value_name = "N")]
    pub max_entities: Option<usize>,
    /// The most events an aggregate may have (default 40).
    #[arg(long, value_name = "N")]
    pub max_events: Option<usize>,
    /// Exits 4 on a warning too, not only on an error.
    #[arg(long)]
    pub deny_warnings: bool,
    /// The contract lock to check the model against (E002, E003, W006); by default
    /// `./protean.lock` when there is one.
    #[arg(long, value_name = "PATH")]
    pub lock: Option<std::path::PathBuf>,
    /// Also reads the store, for the rules that need it (W003 event-never-stored, E004
    /// scheduled-command-without-handler): one count over the event log per event type.
    #[arg(long)]
    pub store: bool,
}

/// A format of `ops check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// `E001 error Element: message`, the fix on the next line, then the totals.
    Text,
    /// The list of diagnostics (code, rule, severity, element, message, fix).
    Json,
    /// A SARIF 2.1.0 log.
    Sarif,
    /// GitHub Actions workflow commands: `::error title=E001 handler-takes-unknown-event::...`.
    Github,
}

/// `CODE=LEVEL`, for a code of [`RULES`](crate::registry::RULES).
fn parse_severity(arg: &str) -> Result<(String, Level), String> {
    let (code, level) = arg.split_once('=').ok_or_else(|| format!("`{arg}` is not CODE=LEVEL (W001=off)"))?;
    if Rule::by_code(code).is_none() {
        return Err(format!("no rule has the code `{code}` (see `ops check --format json` or docs/operations.md)"));
    }
    let level = level.parse::<Level>().map_err(|e| e.to_string())?;
    Ok((code.to_owned(), level))
}

impl CheckArgs {
    /// The configuration these options ask for (without the store's facts).
    pub fn config(&self) -> CheckConfig {
        let mut config = CheckConfig::default();
        for (code, level) in &self.severities {
            config = config.severity(code.clone(), *level);
        }
        let limits = config.limits();
        let config = config
            .max_fields(self.max_fields.unwrap_or(limits.fields))
            .max_entities(self.max_entities.unwrap_or(limits.entities))
            .max_events(self.max_events.unwrap_or(limits.events));
        let default = std::path::Path::new("protean.lock");
        match (&self.lock, default.exists()) {
            (Some(path), _) => config.lock(path.clone()),
            (None, true) => config.lock(default),
            (None, false) => config,
        }
    }

    /// Runs `ops check`: [`Domain::check`] (with the store's facts under `--store`),
    /// written in the format asked for (`--json` is `--format json`);
    /// [`Exit::Attention`] when a finding is an error, or a warning under
    /// `--deny-warnings`.
    pub(super) async fn run(self, domain: &Domain, json: bool, out: &mut impl Write) -> Outcome {
        let mut config = self.config();
        if self.store {
            config = config.store_facts(domain.store_facts().await?);
        }
        let found = domain.check(&config);
        let format = self.format.unwrap_or(if json { CheckFormat::Json } else { CheckFormat::Text });
        match format {
            CheckFormat::Text => text(&found, out)?,
            CheckFormat::Json => writeln!(out, "{}", json!(found))?,
            CheckFormat::Sarif => writeln!(out, "{:#}", to_sarif(domain.model(), &found))?,
            CheckFormat::Github => github(&found, out)?,
        }
        let worst = if self.deny_warnings { Severity::Warning } else { Severity::Error };
        Ok(if found.iter().any(|d| d.severity >= worst) { Exit::Attention } else { Exit::Ok })
    }
}

/// One finding per line and its fix on the next, then the totals.
fn text(found: &[Diagnostic], out: &mut impl Write) -> std::io::Result<()> {
    if found.is_empty() {
        return writeln!(out, "no findings");
    }
    for d in found {
        writeln!(out, "{} {} {}: {}", d.code, d.severity, d.element, d.message)?;
        writeln!(out, "  fix: {}", d.fix)?;
    }
    let count = |severity| found.iter().filter(|d| d.severity == severity).count();
    writeln!(out, "{} finding(s), {} error(s)", found.len(), count(Severity::Error))
}

/// GitHub Actions workflow commands, one per finding:
/// `::warning title=W001 event-without-reaction::Dropped: message. Fix: fix`.
fn github(found: &[Diagnostic], out: &mut impl Write) -> std::io::Result<()> {
    for d in found {
        let command = match d.severity {
            Severity::Note => "notice",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        let title = escape_property(&format!("{} {}", d.code, d.rule));
        let text = escape_data(&format!("{}: {}. Fix: {}", d.element, d.message, d.fix));
        writeln!(out, "::{command} title={title}::{text}")?;
    }
    Ok(())
}

/// A workflow command's message, escaped as GitHub's runner reads it back.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A workflow command's property value, escaped as GitHub's runner reads it back.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_commands_escape_what_would_end_them() {
        assert_eq!(escape_data("50% done\nnext"), "50%25 done%0Anext");
        assert_eq!(escape_property("a: b, c"), "a%3A b%2C c");
    }

    #[test]
    fn severities_name_a_known_code_and_level() {
        assert_eq!(parse_severity("W001=off"), Ok(("W001".to_owned(), Level::Off)));
        assert!(parse_severity("W999=off").unwrap_err().contains("no rule has the code `W999`"));
        assert!(parse_severity("W001").is_err());
        assert!(parse_severity("W001=loud").unwrap_err().contains("not a level"));
    }
}
