//! `ops migrate [--check]`: the store's schema, brought up to date or only checked.

use std::io::Write;

use serde_json::json;

use crate::cli::{Exit, Outcome};
use crate::runtime::Domain;
use crate::store::{connect, schema_status, SchemaStatus};

/// `migrate` or `migrate --check` against the store at `url`, opened here.
pub(super) async fn on_url(url: &str, check: bool, json: bool, out: &mut impl Write) -> Outcome {
    let before = schema_status(url).await?;
    if check {
        print(out, json, &before, None)?;
        return Ok(if before.is_current() { Exit::Ok } else { Exit::SchemaMismatch });
    }
    if before.is_ahead() {
        print(out, json, &before, None)?;
        return Ok(Exit::SchemaMismatch);
    }
    // Connecting creates or upgrades the schema; then the store is closed again.
    let store = connect(url).await?;
    store.close().await?;
    let after = schema_status(url).await?;
    print(out, json, &after, Some(before))?;
    Ok(if after.is_current() { Exit::Ok } else { Exit::SchemaMismatch })
}

/// `migrate` against a domain's store; `--check` is refused (see `Ops::run`).
pub(super) async fn on_domain(domain: &Domain, check: bool, json: bool, out: &mut impl Write) -> Outcome {
    if check {
        let message = "`migrate --check` reads the schema of a store that is not opened: \
                       run it with `Ops::run_with` and the store's URL";
        super::say(out, json, message)?;
        return Ok(Exit::Failed);
    }
    domain.store().migrate().await?;
    if json {
        writeln!(out, "{}", json!({ "migrated": true }))?;
    } else {
        writeln!(out, "the schema is up to date")?;
    }
    Ok(Exit::Ok)
}

/// Where the schema stands (and stood before migrating, when it did).
fn print(out: &mut impl Write, json: bool, status: &SchemaStatus, before: Option<SchemaStatus>) -> std::io::Result<()> {
    let state = if status.is_current() {
        "current"
    } else if status.is_behind() {
        "behind"
    } else {
        "ahead"
    };
    if json {
        let migrated_from = before.filter(|b| b.found != status.found).map(|b| b.found.0);
        let document = json!({
            "backend": status.backend,
            "found": status.found.0,
            "supported": status.supported.0,
            "state": state,
            "migrated_from": migrated_from,
        });
        return writeln!(out, "{document}");
    }
    if let Some(before) = before.filter(|b| b.found != status.found) {
        writeln!(out, "{}: migrated the schema from version {} to {}", status.backend, before.found, status.found)?;
    }
    match state {
        "current" if status.backend == "memory" => writeln!(out, "memory: no schema, always current"),
        "current" => writeln!(out, "{}: schema version {}, current", status.backend, status.found),
        "behind" => writeln!(
            out,
            "{}: schema version {}, behind this build's {}: run `ops migrate`",
            status.backend, status.found, status.supported
        ),
        _ => writeln!(
            out,
            "{}: schema version {}, ahead of this build's {}: this build is older than the database",
            status.backend, status.found, status.supported
        ),
    }
}
