//! `ops check --format sarif`: the diagnostics as a SARIF 2.1.0 log, the format code
//! scanning services and editors read. Written with `serde_json`, by hand: the document
//! is small, and its shape is checked against the official schema in the tests.
//!
//! Every rule of [`RULES`] is listed in `tool.driver.rules`, in their order, so a
//! result's `ruleIndex` is stable from one build to the next. The registry knows no file
//! or line of an element, only its module path, so a result's location is a logical
//! one: the element's name and its fully qualified name (`examples::shop::OrderPlaced`).

use serde_json::{json, Value};

use crate::registry::{Diagnostic, Model, Rule, Severity, RULES};

/// The SARIF version written.
pub const SARIF_VERSION: &str = "2.1.0";

/// Where the schema of [`SARIF_VERSION`] is published, written as the log's `$schema`.
const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// `found`, the diagnostics of `model`, as one SARIF 2.1.0 log with one run: the tool
/// `protean` with every rule of [`RULES`], and one result per diagnostic.
pub fn to_sarif(model: &Model, found: &[Diagnostic]) -> Value {
    let rules: Vec<Value> = RULES.iter().map(rule).collect();
    let results: Vec<Value> = found.iter().map(|d| result(model, d)).collect();
    json!({
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {
                "driver": {
                    "name": "protean",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://docs.rs/protean",
                    "rules": rules,
                }
            },
            "results": results,
        }]
    })
}

/// SARIF's word for a severity.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Note => "note",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

/// A `reportingDescriptor`: the rule's code, name, summary and default level.
fn rule(rule: &Rule) -> Value {
    json!({
        "id": rule.code,
        "name": rule.rule,
        "shortDescription": { "text": rule.summary },
        "defaultConfiguration": { "level": level(rule.severity) },
    })
}

/// A `result`: the diagnostic's rule, level, text (what is wrong, then the fix) and
/// logical location.
fn result(model: &Model, d: &Diagnostic) -> Value {
    let mut result = json!({
        "ruleId": d.code,
        "level": level(d.severity),
        "message": { "text": format!("{}: {}. Fix: {}", d.element, d.message, d.fix) },
        "locations": [{
            "logicalLocations": [{
                "name": d.element,
                "fullyQualifiedName": qualified_name(model, &d.element),
                "kind": "type",
            }]
        }],
    });
    if let Some(rule) = Rule::by_code(d.code) {
        result["ruleIndex"] = json!(rule.index());
    }
    result
}

/// The element's key (`module::path::Name`), or for a handler method
/// `module::path::Handler::method`; the name itself when the model has neither (a
/// stored type name).
fn qualified_name(model: &Model, element: &str) -> String {
    if let Some(d) = model.element(element) {
        return d.key.to_owned();
    }
    match model.handlers().iter().find(|h| h.name() == element) {
        Some(h) => format!("{}::{}", h.module_path, h.name()),
        None => element.to_owned(),
    }
}
