//! The contract's findings as coded diagnostics, for `Domain::check` and `ops check`:
//! `E002 upcaster-gap`, `E003 contract-breaking`, `W006 contract-lock-stale`.

use std::path::Path;

use super::check::{compare, read_lock, LockError};
use super::lock::Lock;
use super::rules::Outcome;
use crate::model::element::ElementKind;
use crate::registry::{Diagnostic, Model, CONTRACT_BREAKING, CONTRACT_LOCK_STALE, UPCASTER_GAP};

/// What to do about a stale lock.
const UPDATE: &str =
    "review the change and rewrite the lock: `PROTEAN_UPDATE_LOCK=1 cargo test` (or `ops schema update`)";

/// The contract's diagnostics for `model`: with the lock at `lock`, each change from it
/// (a version no upcaster reads is `E002`, another breaking change `E003`, a safe one
/// `W006`; a lock missing is `W006`, one that does not read `E003`). Without a lock,
/// `E002` for each event at a version whose upcasters do not reach back to version 1.
pub fn findings(model: &Model, lock: Option<&Path>) -> Vec<Diagnostic> {
    match lock {
        None => model
            .of_kind(ElementKind::Event)
            .filter(|e| !e.upcasts().covers(1, e.version()))
            .map(|e| {
                let missing: Vec<String> =
                    (1..e.version()).filter(|v| !e.upcasts().covers(*v, v + 1)).map(|v| v.to_string()).collect();
                UPCASTER_GAP.finding(
                    e.name(),
                    format!(
                        "`{}` is at version {}, and no upcaster reads version {} (stored before the bump, events of \
                         those versions do not load)",
                        e.name(),
                        e.version(),
                        missing.join(", ")
                    ),
                    format!(
                        "add `upcast(from = {}, with = ..)` for each version, or one `upcast = function`; if no \
                         stream holds an older version, check in a contract lock, which knows the versions stored",
                        missing.first().map_or("1", String::as_str)
                    ),
                )
            })
            .collect(),
        Some(path) => with_lock(model, path),
    }
}

fn with_lock(model: &Model, path: &Path) -> Vec<Diagnostic> {
    let old = match read_lock(path) {
        Ok(Some((_, lock))) => lock,
        Ok(None) => {
            return vec![CONTRACT_LOCK_STALE.finding(
                path.display().to_string(),
                format!("there is no contract lock at {}", path.display()),
                "write it with `PROTEAN_UPDATE_LOCK=1 cargo test` (or `ops schema update`) and check it in",
            )]
        }
        Err(LockError::Parse { source, .. }) => {
            return vec![CONTRACT_BREAKING.finding(
                path.display().to_string(),
                source.to_string(),
                "restore the lock from version control, or rewrite it with `ops schema update --force`",
            )]
        }
        Err(e) => {
            let why = std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string);
            return vec![CONTRACT_BREAKING.finding(
                path.display().to_string(),
                format!("the contract lock at {} could not be read: {why}", path.display()),
                "make the file readable",
            )];
        }
    };
    let (changes, _) = compare(model, &old, &Lock::of(model));
    changes
        .into_iter()
        .map(|c| {
            let message = format!("{} [{}, {}]", c.message, c.rule, c.verdict.as_str());
            match c.outcome {
                Outcome::Breaking if c.rule == "upcaster-gap" => {
                    UPCASTER_GAP.finding(c.element, message, "add the upcaster step the message names")
                }
                Outcome::Breaking => CONTRACT_BREAKING.finding(
                    c.element,
                    message,
                    "undo the change, or make it one stored data survives, as the message says",
                ),
                Outcome::Safe | Outcome::Mitigated => CONTRACT_LOCK_STALE.finding(c.element, message, UPDATE),
            }
        })
        .collect()
}
