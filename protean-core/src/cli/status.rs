//! `ops status`: the delivery status, the workers seen alive, the scheduled commands and
//! each projection's lag, as text or JSON.

use std::io::Write;

use crate::cli::{Exit, Outcome};
use crate::runtime::{DeliveryStatus, Domain, ProjectionStatus};

/// What `ops status --json` prints: [`DeliveryStatus`]'s fields, and `projections`.
#[derive(serde::Serialize)]
struct Status {
    #[serde(flatten)]
    delivery: DeliveryStatus,
    projections: Vec<ProjectionStatus>,
}

/// Prints [`Domain::delivery_status`] and [`Domain::projection_statuses`];
/// [`Exit::Attention`] when anything is dead or held.
pub(super) async fn run(domain: &Domain, json: bool, out: &mut impl Write) -> Outcome {
    let status = Status { delivery: domain.delivery_status().await?, projections: domain.projection_statuses().await? };
    let delivery = &status.delivery;
    if json {
        serde_json::to_writer_pretty(&mut *out, &status)?;
        writeln!(out)?;
    } else {
        writeln!(out, "lag: {:.3} s", delivery.lag.as_secs_f64())?;
        writeln!(out, "undelivered: {}", delivery.undelivered)?;
        writeln!(out, "retrying: {}, dead: {}, held: {}", delivery.retrying, delivery.dead, delivery.held)?;
        writeln!(out, "scheduled commands: {} pending, {} due", delivery.scheduled.pending, delivery.scheduled.due)?;
        writeln!(out, "workers seen alive: {}", delivery.workers.len())?;
        for worker in &delivery.workers {
            let seen = worker.seen_at.format(&time::format_description::well_known::Rfc3339)?;
            writeln!(out, "  {} on {} (pid {}), last seen {seen}", worker.id, worker.host, worker.pid)?;
        }
        writeln!(out, "{:<40} {:>10} {:>9} {:>6} {:>6}", "handler", "delivered", "retrying", "dead", "held")?;
        for handler in &delivery.handlers {
            writeln!(
                out,
                "{:<40} {:>10} {:>9} {:>6} {:>6}",
                handler.handler, handler.delivered, handler.retrying, handler.dead, handler.held
            )?;
        }
        if !status.projections.is_empty() {
            writeln!(out, "{:<40} {:>10} {:>10} {:>8}", "projection", "version", "checkpoint", "behind")?;
            for projection in &status.projections {
                let version = if projection.version == projection.declared_version {
                    projection.version.to_string()
                } else {
                    format!("{}->{}", projection.version, projection.declared_version)
                };
                writeln!(
                    out,
                    "{:<40} {:>10} {:>10} {:>8}",
                    projection.projection, version, projection.checkpoint, projection.lag
                )?;
            }
        }
    }
    Ok(if delivery.dead + delivery.held > 0 { Exit::Attention } else { Exit::Ok })
}
