//! [`Model::diagnose`]: whole-model diagnostics, each a rule with a stable code.
//!
//! Building a [`Domain`](crate::runtime::Domain) already refuses a model that cannot run
//! (a command with no handler, a projection without projector, ...: see
//! [`ModelError`](super::ModelError)). The rules here look at a model that runs, for
//! what is likely a mistake all the same. Each rule has a code that never changes
//! meaning, so that scripts and CI can match on it; new rules take new codes.

use serde::Serialize;

use super::{HandlerInfo, MessageKind, Model};
use crate::model::element::ElementKind;

/// How much a [`Diagnostic`] matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Likely a mistake; the model still runs as written.
    Warning,
    /// The model does not do what it says: something it declares can never happen.
    Error,
}

impl Severity {
    /// `"warning"` or `"error"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One finding of [`Model::diagnose`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The rule's stable code (`"E001"`); see [`RULES`].
    pub code: &'static str,
    /// The rule's stable name (`"handler-takes-unknown-event"`).
    pub rule: &'static str,
    /// How much it matters.
    pub severity: Severity,
    /// The element or handler it is about.
    pub element: String,
    /// What is wrong, and what to do, in a sentence.
    pub message: String,
}

/// A diagnostic rule: its code, name and severity, and what it looks for.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The stable code: `E…` for errors, `W…` for warnings.
    pub code: &'static str,
    /// The stable name.
    pub rule: &'static str,
    /// How much a finding matters.
    pub severity: Severity,
    /// What the rule finds, in a sentence.
    pub summary: &'static str,
    check: fn(&Model, &mut Vec<(String, String)>),
}

/// Every rule [`Model::diagnose`] applies, in code order.
pub const RULES: &[Rule] = &[
    Rule {
        code: "E001",
        rule: "handler-takes-unknown-event",
        severity: Severity::Error,
        summary: "a handler, projector or process manager step takes an event that is not in this domain",
        check: handler_takes_unknown_event,
    },
    Rule {
        code: "W001",
        rule: "event-without-reaction",
        severity: Severity::Warning,
        summary: "an event no handler, projector or process manager step takes",
        check: event_without_reaction,
    },
    Rule {
        code: "W002",
        rule: "aggregate-without-commands",
        severity: Severity::Warning,
        summary: "an aggregate no command changes",
        check: aggregate_without_commands,
    },
];

impl Model {
    /// Applies every rule of [`RULES`] to the model: its findings, by code, then
    /// element. An empty list is a clean model.
    pub fn diagnose(&self) -> Vec<Diagnostic> {
        let mut found = Vec::new();
        for rule in RULES {
            let mut findings = Vec::new();
            (rule.check)(self, &mut findings);
            findings.sort();
            found.extend(findings.into_iter().map(|(element, message)| Diagnostic {
                code: rule.code,
                rule: rule.rule,
                severity: rule.severity,
                element,
                message,
            }));
        }
        found
    }
}

/// The handler methods taking events.
fn event_handlers(model: &Model) -> impl Iterator<Item = &HandlerInfo> {
    model.handlers().iter().filter(|h| h.kind == MessageKind::Event)
}

fn handler_takes_unknown_event(model: &Model, found: &mut Vec<(String, String)>) {
    for h in event_handlers(model) {
        if !model.elements().iter().any(|d| d.key == h.message_key) {
            found.push((
                h.name().to_owned(),
                format!(
                    "`{}` takes the event `{}`, which is not in this domain, so it never runs: include the \
                     module of `{1}` in the domain, or remove the method",
                    h.name(),
                    h.message
                ),
            ));
        }
    }
}

fn event_without_reaction(model: &Model, found: &mut Vec<(String, String)>) {
    for event in model.of_kind(ElementKind::Event) {
        if !event_handlers(model).any(|h| h.message_key == event.key) {
            found.push((
                event.name.to_owned(),
                format!(
                    "no handler, projector or process manager step takes the event `{}`: it is only stored \
                     (and applied, in an event-sourced aggregate); react to it, or ignore this warning",
                    event.name
                ),
            ));
        }
    }
}

fn aggregate_without_commands(model: &Model, found: &mut Vec<(String, String)>) {
    for aggregate in model.of_kind(ElementKind::Aggregate) {
        let changed = model.handlers().iter().any(|h| h.aggregate_key == aggregate.key);
        let commanded = model.of_kind(ElementKind::Command).any(|c| c.part_of == Some(aggregate.name));
        if !changed && !commanded {
            found.push((
                aggregate.name.to_owned(),
                format!(
                    "no command and no handler changes the aggregate `{}`: nothing in this domain creates one; \
                     add a `#[command(part_of = {0})]` and its handler, or remove it",
                    aggregate.name
                ),
            ));
        }
    }
}
