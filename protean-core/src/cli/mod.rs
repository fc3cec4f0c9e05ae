//! The operations commands, to mount in the user's own binary (feature `cli`, on clap):
//! `my-service ops status`, `my-service ops dead-letters replay ID`, `my-service ops
//! migrate --check`, ... run against the user's [`Domain`] and its store. Human output
//! by default, `--json` for scripts; every command returns the process's exit code
//! ([`Exit`]: 0 done, 1 failed, 2 clap's usage error, 3 not found, 4 needs attention,
//! 5 schema not current).
//!
//! The commands: `migrate [--check]`; `status`; `dead-letters list|show|replay|discard`
//! (`replay --all` with filters); `projections status|rebuild NAME [--dry-run]
//! [--from-position N]` (a progress bar on a terminal, lines otherwise; Ctrl-C cancels
//! and the serving copy stays); `events read|trace|tail`; `scheduled list|cancel`;
//! `model export --format json|mermaid|dot`; `check [--format text|json|sarif|github]
//! [--severity CODE=LEVEL]... [--max-fields N] [--max-entities N] [--max-events N]
//! [--deny-warnings] [--store]` ([`Domain::check`]);
//! `schema check|diff|update|retire|export` (the contract lock, [`crate::contract`]).
//! The repository's `docs/operations.md` describes each.
//!
//! [`Ops::run_with`] takes the store's URL and a closure building the domain, called
//! only for the commands that need one: `migrate --check` reads the schema version of a
//! store the domain could not open ([`schema_status`](crate::store::schema_status)).
//! [`Ops::run`] runs a command against a domain already built:
//!
//! ```
//! # extern crate protean_core as protean;
//! use clap::Parser;
//! use protean::cli::Ops;
//! use protean::runtime::Domain;
//! use protean::store::MemoryStore;
//!
//! /// The user's own command line, with the operations commands under `ops`.
//! #[derive(Parser)]
//! enum Service {
//!     /// Serves requests.
//!     Serve,
//!     /// Operates the service.
//!     Ops(Ops),
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let domain = Domain::builder().store(MemoryStore::new()).build()?;
//! if let Service::Ops(ops) = Service::try_parse_from(["my-service", "ops", "status", "--json"])? {
//!     let mut out = Vec::new();
//!     let exit = ops.run(&domain, &mut out).await;
//!     assert_eq!(exit as i32, 0);
//!     let status: serde_json::Value = serde_json::from_slice(&out)?;
//!     assert_eq!(status["undelivered"], 0);
//! }
//! # Ok(())
//! # }
//! ```

mod dead_letters;
mod events;
mod migrate;
mod model;
mod projections;
mod sarif;
mod scheduled;
mod schema;
mod status;

use std::future::Future;
use std::io::Write;

use clap::{Args, Subcommand};

use crate::runtime::Domain;
use crate::store::StreamId;

pub use dead_letters::{DeadLetterFilter, DeadLetters};
pub use events::Events;
pub use model::{CheckArgs, CheckFormat, ExportFormat, ModelCommand};
pub use projections::Projections;
pub use sarif::{to_sarif, SARIF_VERSION};
pub use scheduled::ScheduledCommands;
pub use schema::SchemaCommand;

/// The operations commands: `ops [--json] <command>`.
#[derive(Debug, Args)]
pub struct Ops {
    /// Prints JSON (one document) instead of text, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: OpsCommand,
}

/// One operations command.
#[derive(Debug, Subcommand)]
pub enum OpsCommand {
    /// Creates or upgrades the store's schema; with `--check`, only says whether it is
    /// current (exit 5 when not), changing nothing.
    Migrate {
        /// Changes nothing: exit 0 when the schema is current, 5 when it is behind (or
        /// ahead of this build).
        #[arg(long)]
        check: bool,
    },
    /// Lag, undelivered events, and per handler delivered, retrying, dead and held.
    Status,
    /// Lists, shows, replays and discards dead letters.
    #[command(subcommand)]
    DeadLetters(DeadLetters),
    /// Where each projection stands; rebuilds one.
    #[command(subcommand)]
    Projections(Projections),
    /// Lists and cancels the commands process managers scheduled.
    #[command(subcommand)]
    Scheduled(ScheduledCommands),
    /// Reads stored events: a stream, a conversation's causal chain, the log as it grows.
    #[command(subcommand)]
    Events(Events),
    /// The domain's model: exported as JSON, Mermaid or Graphviz.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Whole-model diagnostics, each with a stable code, a severity and a fix, as text,
    /// JSON, SARIF 2.1.0 or GitHub annotations (exit 4 when any is an error, or a warning
    /// under `--deny-warnings`).
    Check(CheckArgs),
    /// The stored contract against its lock, `protean.lock`: check, diff, update,
    /// retire, and JSON Schema export.
    #[command(subcommand)]
    Schema(SchemaCommand),
}

/// How an operations command ended: the process's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Exit {
    /// Done (for `status`: nothing dead, nothing held).
    Ok = 0,
    /// The store failed, or refused the command.
    Failed = 1,
    /// What the command names does not exist (an unknown dead letter, an empty stream),
    /// or is ambiguous (an event dead for several handlers, without `--handler`).
    NotFound = 3,
    /// Done, and the answer needs attention: `status` found dead letters or held events,
    /// a replay failed again, a projection is outdated, `check` found an error.
    Attention = 4,
    /// `migrate --check`: the schema is not the one this build works with (behind:
    /// run `migrate`; or ahead: this build is older than the database).
    SchemaMismatch = 5,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit as u8)
    }
}

impl Ops {
    /// Whether the command needs an opened [`Domain`]: every command but `migrate`,
    /// which opens the store itself from its URL (see [`run_with`](Self::run_with)).
    pub fn needs_domain(&self) -> bool {
        !matches!(self.command, OpsCommand::Migrate { .. })
    }

    /// Runs the command against `domain`, writing its output to `out` (an error's text
    /// too, so that a script reading `out` sees it); returns the exit code.
    ///
    /// `migrate` (without `--check`) migrates the domain's store; `migrate --check`
    /// cannot be answered here, as an opened store is current by construction (it
    /// migrated, or refused a schema that is not): it fails with a message pointing at
    /// [`run_with`](Self::run_with).
    ///
    /// A long command (`projections rebuild`, `events tail`) stops cleanly on Ctrl-C
    /// (see [`run_until`](Self::run_until)).
    pub async fn run(self, domain: &Domain, out: &mut impl Write) -> Exit {
        self.run_until(domain, out, ctrl_c()).await
    }

    /// [`run`](Self::run), with the long commands stopped cleanly when `stop` completes
    /// instead of on Ctrl-C (a service's shutdown signal, a test's timer): a rebuild
    /// stops between batches, the serving copy stays, and the command exits with
    /// [`Exit::Attention`]; `events tail` stops and exits with [`Exit::Ok`]. The other
    /// commands ignore `stop`.
    pub async fn run_until(self, domain: &Domain, out: &mut impl Write, stop: impl Future<Output = ()> + Send) -> Exit {
        let json = self.json;
        let outcome = match self.command {
            OpsCommand::Migrate { check } => migrate::on_domain(domain, check, json, out).await,
            command => run_on(command, domain, json, out, Box::pin(stop)).await,
        };
        finish(outcome, json, out)
    }

    /// Runs the command against the store at `url`, and builds the domain with
    /// `domain` only for a command that needs one ([`needs_domain`](Self::needs_domain)):
    /// `migrate` and `migrate --check` open the store themselves, so a deploy gate
    /// checks a schema the domain could not open (see [`schema_status`](crate::store::schema_status)).
    /// `domain` failing is reported like any other failure ([`Exit::Failed`]).
    pub async fn run_with<F, Fut, E>(self, url: &str, domain: F, out: &mut impl Write) -> Exit
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Domain, E>>,
        E: Into<Box<dyn std::error::Error>>,
    {
        let json = self.json;
        let outcome = match self.command {
            OpsCommand::Migrate { check } => migrate::on_url(url, check, json, out).await,
            command => match domain().await {
                Ok(domain) => run_on(command, &domain, json, out, Box::pin(ctrl_c())).await,
                Err(error) => {
                    let _ = report(out, json, &*error.into());
                    return Exit::Failed;
                }
            },
        };
        finish(outcome, json, out)
    }
}

/// Runs a command that needs a domain.
async fn run_on(command: OpsCommand, domain: &Domain, json: bool, out: &mut impl Write, stop: Stop<'_>) -> Outcome {
    match command {
        OpsCommand::Migrate { check } => migrate::on_domain(domain, check, json, out).await,
        OpsCommand::Status => status::run(domain, json, out).await,
        OpsCommand::DeadLetters(command) => command.run(domain, json, out).await,
        OpsCommand::Projections(command) => command.run(domain, json, out, stop).await,
        OpsCommand::Scheduled(command) => command.run(domain, json, out).await,
        OpsCommand::Events(command) => command.run(domain, json, out, stop).await,
        OpsCommand::Model(command) => command.run(domain, json, out),
        OpsCommand::Check(args) => args.run(domain, json, out).await,
        OpsCommand::Schema(command) => command.run(domain, json, out),
    }
}

/// What stops a long command.
type Stop<'a> = std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Completes on Ctrl-C (never, where no handler can be installed).
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The exit code of an outcome, its error written to `out`.
fn finish(outcome: Outcome, json: bool, out: &mut impl Write) -> Exit {
    match outcome {
        Ok(exit) => exit,
        Err(error) => {
            let _ = report(out, json, &*error);
            Exit::Failed
        }
    }
}

/// A stream as the commands print it, `Aggregate/id`; `None` when it is not one.
fn parse_stream(stream: &str) -> Option<StreamId> {
    let (aggregate, id) = stream.split_once('/').filter(|(a, i)| !a.is_empty() && !i.is_empty())?;
    Some(StreamId::new(aggregate.to_owned(), id.to_owned()))
}

/// Writes a message that is an error to the reader (nothing matched): as text, or as
/// `{"error": ...}`.
fn say(out: &mut impl Write, json: bool, message: &str) -> std::io::Result<()> {
    if json {
        writeln!(out, "{}", serde_json::json!({ "error": message }))
    } else {
        writeln!(out, "error: {message}")
    }
}

/// Writes `error` as text or as `{"error": ...}`.
fn report(out: &mut impl Write, json: bool, error: &dyn std::error::Error) -> std::io::Result<()> {
    say(out, json, &error.to_string())
}

/// What a command's work can fail with: the domain's error or writing the output.
type Outcome = Result<Exit, Box<dyn std::error::Error + Send + Sync>>;
