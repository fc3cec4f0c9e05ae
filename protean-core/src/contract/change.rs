//! A change between the lock and the model, as the check reports it.

use std::fmt;

use serde::Serialize;

use super::lock::BlockKind;

/// What a change keeps readable, in Avro's sense, seen from stored data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// Neither new code reads old payloads nor old code new ones.
    None,
    /// Old code (another service, a process not yet deployed) reads new payloads, but
    /// new code does not read what is stored.
    Forward,
    /// New code reads old payloads (what a stored event needs); old code may not read
    /// new ones.
    Backward,
    /// Both ways.
    Full,
}

impl Verdict {
    /// `"NONE"`, `"FORWARD"`, `"BACKWARD"` or `"FULL"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::None => "NONE",
            Verdict::Forward => "FORWARD",
            Verdict::Backward => "BACKWARD",
            Verdict::Full => "FULL",
        }
    }
}

/// What a change means for the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Stored data still reads: the check passes, and the lock is to be updated.
    Safe,
    /// A new version whose upcasters read every older version the lock holds.
    Mitigated,
    /// Stored data (or what callers send) no longer reads: the check fails.
    Breaking,
}

impl Outcome {
    /// `"safe"`, `"mitigated"` or `"breaking"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Safe => "safe",
            Outcome::Mitigated => "mitigated",
            Outcome::Breaking => "breaking",
        }
    }
}

/// One difference between the lock and the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The element, by its Rust name when the model has it (`OrderPlaced`), else by its
    /// stored type name.
    pub element: String,
    /// Event, command or projection.
    pub kind: BlockKind,
    /// The stored type name (`Order.OrderPlaced`).
    pub type_name: String,
    /// The field's path, for a change of one field.
    pub path: Option<String>,
    /// The rule's stable name (`type-narrowed`); see the guide's table.
    pub rule: &'static str,
    /// What stays readable.
    pub verdict: Verdict,
    /// What it means for the check.
    pub outcome: Outcome,
    /// What changed, why it matters, and the fix, in a sentence.
    pub message: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}, {}]: {}", self.outcome.as_str(), self.rule, self.verdict.as_str(), self.message)
    }
}

impl Serialize for BlockKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}
