//! [`Model::diagnose`] and [`Model::diagnose_with`]: whole-model diagnostics, each a rule
//! with a stable code, a severity, the element it is about and a fix.
//!
//! Building a [`Domain`](crate::runtime::Domain) already refuses a model that cannot run
//! (a command with no handler, a projection without projector, ...: see
//! [`ModelError`](super::ModelError) and [`REFUSALS`](super::REFUSALS)). The rules here
//! look at a model that runs, for what is likely a mistake all the same. Each rule has a
//! code that never changes meaning, so that scripts and CI can match on it; new rules
//! take new codes. [`RULES`] lists every rule, also those whose findings are computed
//! outside the registry and handed in through [`CheckConfig::extra`].

mod rules;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::Model;

/// How much a [`Diagnostic`] matters, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; most likely fine.
    Note,
    /// Likely a mistake; the model still runs as written.
    Warning,
    /// The model does not do what it says: something it declares can never happen.
    Error,
}

impl Severity {
    /// `"note"`, `"warning"` or `"error"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The severity a rule is configured to report at, or [`Off`](Level::Off): see
/// [`CheckConfig::severity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The rule reports nothing.
    Off,
    /// Its findings are [`Severity::Note`]s.
    Note,
    /// Its findings are [`Severity::Warning`]s.
    Warning,
    /// Its findings are [`Severity::Error`]s.
    Error,
}

impl Level {
    /// The severity findings get at this level; `None` for [`Off`](Level::Off).
    pub const fn severity(self) -> Option<Severity> {
        match self {
            Level::Off => None,
            Level::Note => Some(Severity::Note),
            Level::Warning => Some(Severity::Warning),
            Level::Error => Some(Severity::Error),
        }
    }
}

impl From<Severity> for Level {
    fn from(severity: Severity) -> Self {
        match severity {
            Severity::Note => Level::Note,
            Severity::Warning => Level::Warning,
            Severity::Error => Level::Error,
        }
    }
}

/// A word that is not a [`Level`]: `Level::from_str` takes `off`, `note`, `warning` or
/// `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a level: use off, note, warning or error")]
pub struct UnknownLevel(pub String);

impl FromStr for Level {
    type Err = UnknownLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Level::Off),
            "note" => Ok(Level::Note),
            "warning" => Ok(Level::Warning),
            "error" => Ok(Level::Error),
            other => Err(UnknownLevel(other.to_owned())),
        }
    }
}

/// One finding of [`Model::diagnose_with`]: a [`Rule`]'s code and name, how much it
/// matters, the element, what is wrong and what to do. Made by [`Rule::finding`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Diagnostic {
    /// The rule's stable code (`"E001"`); see [`RULES`].
    pub code: &'static str,
    /// The rule's stable name (`"handler-takes-unknown-event"`).
    pub rule: &'static str,
    /// How much it matters: the rule's default, or what [`CheckConfig::severity`] set.
    pub severity: Severity,
    /// The element or handler method it is about (`"OrderPlaced"`, `"Strays::on"`); for
    /// a finding about stored data that no element of the build names, the stored type
    /// name (`"Order.CancelOrder"`).
    pub element: String,
    /// What is wrong, in a sentence.
    pub message: String,
    /// What to do about it, in a sentence.
    pub fix: String,
}

/// Where a rule's findings come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSource {
    /// The registry: [`Model::diagnose_with`] finds them by itself.
    Registry,
    /// The store's contents: found only when [`CheckConfig::store_facts`] gives them
    /// (`ops check --store`).
    Store,
    /// Computed elsewhere (the contract lock, for one) and handed in through
    /// [`CheckConfig::extra`]; the registry has no check of its own for them.
    External,
}

/// The findings a rule's check pushes: element, message, fix.
type Found = Vec<(String, String, String)>;

/// A diagnostic rule: its code, name and default severity, and what it looks for.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The stable code: `E…` for a model that does not do what it says, `W…` for a
    /// likely mistake (its default severity may be lower, see `severity`).
    pub code: &'static str,
    /// The stable name.
    pub rule: &'static str,
    /// How much a finding matters unless [`CheckConfig::severity`] says otherwise.
    pub severity: Severity,
    /// What the rule finds, in a sentence.
    pub summary: &'static str,
    /// Where its findings come from.
    pub source: RuleSource,
    check: Option<fn(&Model, &CheckConfig, &mut Found)>,
}

impl Rule {
    /// The rule with this code, if [`RULES`] has one.
    pub fn by_code(code: &str) -> Option<&'static Rule> {
        RULES.iter().find(|r| r.code == code)
    }

    /// A finding of this rule about `element`, at its default severity: what is wrong
    /// (`message`) and what to do (`fix`). This is how a check computed outside the
    /// registry makes the findings it hands to [`CheckConfig::extra`].
    pub fn finding(
        &self,
        element: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            code: self.code,
            rule: self.rule,
            severity: self.severity,
            element: element.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// Where this rule stands in [`RULES`]: SARIF's `ruleIndex`.
    pub fn index(&self) -> usize {
        RULES.iter().position(|r| r.code == self.code).unwrap_or(RULES.len())
    }
}

/// `E002`: an event at version N that has no path of upcasters from an older version
/// still stored (found by the contract lock, handed in through [`CheckConfig::extra`]).
pub const UPCASTER_GAP: Rule = Rule {
    code: "E002",
    rule: "upcaster-gap",
    severity: Severity::Error,
    summary: "an event's version has no path of upcasters from an older version the store may still hold",
    source: RuleSource::External,
    check: None,
};

/// `E003`: a change to a stored event that old events can no longer be read through
/// (found by the contract lock, handed in through [`CheckConfig::extra`]).
pub const CONTRACT_BREAKING: Rule = Rule {
    code: "E003",
    rule: "contract-breaking",
    severity: Severity::Error,
    summary: "a change to a stored event or a command that the contract lock says breaks what is stored or sent",
    source: RuleSource::External,
    check: None,
};

/// `W005`: a process manager none of whose steps ends its flow: no step's body calls
/// `.end()` (as the macros record it; a call inside a helper function is not seen).
pub const PROCESS_MANAGER_NEVER_ENDS: Rule = Rule {
    code: "W005",
    rule: "process-manager-never-ends",
    severity: Severity::Warning,
    summary: "a process manager none of whose steps ends its flow, so its flows are kept forever",
    source: RuleSource::Registry,
    check: Some(rules::process_manager_never_ends),
};

/// `W006`: the contract lock no longer matches the model, by a change that breaks
/// nothing (found by the contract lock, handed in through [`CheckConfig::extra`]).
pub const CONTRACT_LOCK_STALE: Rule = Rule {
    code: "W006",
    rule: "contract-lock-stale",
    severity: Severity::Warning,
    summary: "the contract lock differs from the model by safe changes only: update it",
    source: RuleSource::External,
    check: None,
};

/// Every rule, in code order (errors first): what [`Model::diagnose_with`] applies, and
/// what SARIF's `driver.rules` lists, in this order.
pub const RULES: &[Rule] = &[
    Rule {
        code: "E001",
        rule: "handler-takes-unknown-event",
        severity: Severity::Error,
        summary: "a handler, projector or process manager step takes an event that is not in this domain",
        source: RuleSource::Registry,
        check: Some(rules::handler_takes_unknown_event),
    },
    UPCASTER_GAP,
    CONTRACT_BREAKING,
    Rule {
        code: "E004",
        rule: "scheduled-command-without-handler",
        severity: Severity::Error,
        summary: "the store holds scheduled commands of a type no command of this build has, so they never fire",
        source: RuleSource::Store,
        check: Some(rules::scheduled_command_without_handler),
    },
    Rule {
        code: "W001",
        rule: "event-without-reaction",
        severity: Severity::Warning,
        summary: "an event no handler, projector or process manager step takes",
        source: RuleSource::Registry,
        check: Some(rules::event_without_reaction),
    },
    Rule {
        code: "W002",
        rule: "aggregate-without-commands",
        severity: Severity::Warning,
        summary: "an aggregate no command changes",
        source: RuleSource::Registry,
        check: Some(rules::aggregate_without_commands),
    },
    Rule {
        code: "W003",
        rule: "event-never-stored",
        severity: Severity::Note,
        summary: "an event of the model of which the store holds none: nothing raised it yet",
        source: RuleSource::Store,
        check: Some(rules::event_never_stored),
    },
    Rule {
        code: "W004",
        rule: "projection-fed-by-no-event",
        severity: Severity::Warning,
        summary: "a projection whose projector methods take only events that are not in this domain",
        source: RuleSource::Registry,
        check: Some(rules::projection_fed_by_no_event),
    },
    PROCESS_MANAGER_NEVER_ENDS,
    CONTRACT_LOCK_STALE,
    Rule {
        code: "W007",
        rule: "aggregate-too-large",
        severity: Severity::Warning,
        summary: "an aggregate past the configured bounds of root fields, entities or events",
        source: RuleSource::Registry,
        check: Some(rules::aggregate_too_large),
    },
];

/// The bounds of `W007 aggregate-too-large`, per aggregate cluster: an aggregate past
/// any of them is reported. The defaults are 30 root fields, 10 entities and 40 events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    /// The most fields the aggregate root may declare (its identity included).
    pub fields: usize,
    /// The most entities the aggregate may hold (nested ones included).
    pub entities: usize,
    /// The most events that may be `part_of` the aggregate.
    pub events: usize,
}

impl Default for SizeLimits {
    fn default() -> Self {
        SizeLimits { fields: 30, entities: 10, events: 40 }
    }
}

/// What the store holds, for the rules that read it (`W003`, `E004`):
/// [`Domain::store_facts`](crate::runtime::Domain::store_facts) reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreFacts {
    /// How many events of each of the model's event type names the store holds (a type
    /// name missing here counts as none).
    pub events: BTreeMap<String, u64>,
    /// How many pending scheduled commands of each type name the store holds.
    pub scheduled: BTreeMap<String, u64>,
}

/// How [`Model::diagnose_with`] checks: severities per code, the bounds of
/// `aggregate-too-large`, what the store holds, and findings computed elsewhere. Its
/// [`Default`] is what [`Model::diagnose`] uses.
///
/// ```
/// # extern crate protean_core as protean;
/// use protean::registry::{CheckConfig, Level};
///
/// let config = CheckConfig::default()
///     .severity("W001", Level::Off)
///     .severity("W007", Level::Error)
///     .max_fields(20);
/// assert_eq!(config.level("W001"), Some(Level::Off));
/// assert_eq!(config.limits().fields, 20);
/// ```
#[derive(Debug, Clone, Default)]
pub struct CheckConfig {
    severities: BTreeMap<String, Level>,
    limits: SizeLimits,
    extra: Vec<Diagnostic>,
    store: Option<StoreFacts>,
    lock: Option<std::path::PathBuf>,
}

impl CheckConfig {
    /// The defaults: every rule at its default severity, the default [`SizeLimits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports rule `code`'s findings at `level` instead of the rule's default
    /// severity; [`Level::Off`] drops them. A code no rule has changes nothing.
    pub fn severity(mut self, code: impl Into<String>, level: Level) -> Self {
        self.severities.insert(code.into(), level);
        self
    }

    /// The level set for `code`, if one was.
    pub fn level(&self, code: &str) -> Option<Level> {
        self.severities.get(code).copied()
    }

    /// The bounds of `aggregate-too-large`.
    pub fn limits(&self) -> SizeLimits {
        self.limits
    }

    /// Replaces the bounds of `aggregate-too-large`.
    pub fn with_limits(mut self, limits: SizeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The most fields an aggregate root may declare (default 30).
    pub fn max_fields(mut self, fields: usize) -> Self {
        self.limits.fields = fields;
        self
    }

    /// The most entities an aggregate may hold (default 10).
    pub fn max_entities(mut self, entities: usize) -> Self {
        self.limits.entities = entities;
        self
    }

    /// The most events an aggregate may have (default 40).
    pub fn max_events(mut self, events: usize) -> Self {
        self.limits.events = events;
        self
    }

    /// Adds findings computed outside the registry (made with [`Rule::finding`]): they
    /// are reported with the registry's own, at the severity
    /// [`severity`](Self::severity) sets for their code, or their own.
    pub fn extra(mut self, findings: impl IntoIterator<Item = Diagnostic>) -> Self {
        self.extra.extend(findings);
        self
    }

    /// What the store holds: without it, the rules that read the store (`W003`,
    /// `E004`) report nothing.
    pub fn store_facts(mut self, facts: StoreFacts) -> Self {
        self.store = Some(facts);
        self
    }

    /// The store facts given, if any.
    pub fn facts(&self) -> Option<&StoreFacts> {
        self.store.as_ref()
    }

    /// Checks the model against the contract lock at `path` too
    /// ([`Domain::check`](crate::runtime::Domain::check) reads it): `E002 upcaster-gap`
    /// for a version the lock holds that no upcaster reads, `E003 contract-breaking` for
    /// the other breaking changes, `W006 contract-lock-stale` for the safe ones (or a
    /// lock that is missing). Without a lock, `E002` is an event at version N whose
    /// upcasters do not reach back to version 1.
    pub fn lock(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.lock = Some(path.into());
        self
    }

    /// The contract lock given, if any.
    pub fn lock_path(&self) -> Option<&std::path::Path> {
        self.lock.as_deref()
    }

    /// The severity a finding of `code` gets: the level set for it, or `default`;
    /// `None` when it is off.
    fn severity_of(&self, code: &str, default: Severity) -> Option<Severity> {
        self.level(code).unwrap_or(Level::from(default)).severity()
    }
}

impl Model {
    /// Applies every rule of [`RULES`] at its default severity: the same as
    /// [`diagnose_with`](Self::diagnose_with) with [`CheckConfig::default`]. An empty
    /// list is a clean model.
    pub fn diagnose(&self) -> Vec<Diagnostic> {
        self.diagnose_with(&CheckConfig::default())
    }

    /// Applies every rule of [`RULES`] that has a check of its own, adds
    /// `config`'s [extra](CheckConfig::extra) findings, and sets each finding's
    /// severity as `config` says (dropping those turned off): the findings in the
    /// order of [`RULES`] (an extra finding whose code is not there, last), then by
    /// element and message.
    pub fn diagnose_with(&self, config: &CheckConfig) -> Vec<Diagnostic> {
        let mut found = Vec::new();
        for rule in RULES {
            let Some(check) = rule.check else { continue };
            let mut findings = Vec::new();
            check(self, config, &mut findings);
            found.extend(findings.into_iter().map(|(element, message, fix)| rule.finding(element, message, fix)));
        }
        found.extend(config.extra.iter().cloned());
        found.retain_mut(|d| match config.severity_of(d.code, d.severity) {
            Some(severity) => {
                d.severity = severity;
                true
            }
            None => false,
        });
        found.sort_by(|a, b| {
            let order = |d: &Diagnostic| Rule::by_code(d.code).map_or(RULES.len(), Rule::index);
            (order(a), &a.element, &a.message).cmp(&(order(b), &b.element, &b.message))
        });
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_have_unique_codes_and_names_in_code_order() {
        let codes: Vec<_> = RULES.iter().map(|r| r.code).collect();
        let mut sorted = codes.clone();
        sorted.sort_by_key(|c| (!c.starts_with('E'), *c));
        assert_eq!(codes, sorted, "errors first, then by code");
        sorted.dedup();
        assert_eq!(sorted.len(), RULES.len(), "codes are unique");
        let mut names: Vec<_> = RULES.iter().map(|r| r.rule).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RULES.len(), "names are unique");
        for (i, rule) in RULES.iter().enumerate() {
            assert_eq!(rule.index(), i);
            assert_eq!(rule.check.is_none(), rule.source == RuleSource::External, "{}", rule.code);
        }
    }

    #[test]
    fn the_reserved_codes_keep_their_names() {
        let reserved = [
            ("E002", "upcaster-gap"),
            ("E003", "contract-breaking"),
            ("W005", "process-manager-never-ends"),
            ("W006", "contract-lock-stale"),
        ];
        for (code, name) in reserved {
            assert_eq!(Rule::by_code(code).map(|r| r.rule), Some(name));
        }
    }

    #[test]
    fn levels_parse_from_their_names_only() {
        assert_eq!("off".parse(), Ok(Level::Off));
        assert_eq!("note".parse(), Ok(Level::Note));
        assert_eq!("warning".parse(), Ok(Level::Warning));
        assert_eq!("error".parse(), Ok(Level::Error));
        assert_eq!("Error".parse::<Level>(), Err(UnknownLevel("Error".into())));
        assert!(Severity::Note < Severity::Warning && Severity::Warning < Severity::Error);
    }
}
