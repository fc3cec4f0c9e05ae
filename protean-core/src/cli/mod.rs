//! The operations commands, to mount in the user's own binary (feature `cli`, on clap):
//! `my-service ops status`, `my-service ops dead-letters list`, ... run against the
//! user's [`Domain`]. Human output by default, `--json` for scripts; [`Ops::run`] returns
//! the process's exit code (see [`Exit`]).
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
mod projections;
mod status;

use std::io::Write;

use clap::{Args, Subcommand};

use crate::runtime::Domain;

pub use dead_letters::DeadLetters;
pub use events::Events;
pub use projections::Projections;

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
    /// Lag, undelivered events, and per handler delivered, retrying, dead and held.
    Status,
    /// Lists, shows, redelivers and discards dead letters.
    #[command(subcommand)]
    DeadLetters(DeadLetters),
    /// Where each projection stands.
    #[command(subcommand)]
    Projections(Projections),
    /// Reads stored events.
    #[command(subcommand)]
    Events(Events),
}

/// How an operations command ended: the process's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Exit {
    /// Done (for `status`: nothing dead, nothing held).
    Ok = 0,
    /// The store failed, or refused the command.
    Failed = 1,
    /// What the command names does not exist (an unknown dead letter, an empty stream).
    NotFound = 3,
    /// Done, and the answer needs attention: `status` found dead letters or held events,
    /// a redelivery failed again.
    Attention = 4,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit as u8)
    }
}

impl Ops {
    /// Runs the command against `domain`, writing its output to `out` (an error's text
    /// too, so that a script reading `out` sees it); returns the exit code.
    pub async fn run(self, domain: &Domain, out: &mut impl Write) -> Exit {
        let outcome = match self.command {
            OpsCommand::Status => status::run(domain, self.json, out).await,
            OpsCommand::DeadLetters(command) => command.run(domain, self.json, out).await,
            OpsCommand::Projections(command) => command.run(domain, self.json, out).await,
            OpsCommand::Events(command) => command.run(domain, self.json, out).await,
        };
        match outcome {
            Ok(exit) => exit,
            Err(error) => {
                let _ = report(out, self.json, &*error);
                Exit::Failed
            }
        }
    }
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
fn report(out: &mut impl Write, json: bool, error: &(dyn std::error::Error + Send + Sync)) -> std::io::Result<()> {
    say(out, json, &error.to_string())
}

/// What a command's work can fail with: the domain's error or writing the output.
type Outcome = Result<Exit, Box<dyn std::error::Error + Send + Sync>>;
