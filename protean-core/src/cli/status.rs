//! `ops status`: the delivery status, as text or JSON.

use std::io::Write;

use crate::cli::{Exit, Outcome};
use crate::runtime::Domain;

/// Prints [`Domain::delivery_status`]; [`Exit::Attention`] when anything is dead or held.
pub(super) async fn run(domain: &Domain, json: bool, out: &mut impl Write) -> Outcome {
    let status = domain.delivery_status().await?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &status)?;
        writeln!(out)?;
    } else {
        writeln!(out, "lag: {:.3} s", status.lag.as_secs_f64())?;
        writeln!(out, "undelivered: {}", status.undelivered)?;
        writeln!(out, "retrying: {}, dead: {}, held: {}", status.retrying, status.dead, status.held)?;
        writeln!(out, "{:<40} {:>10} {:>9} {:>6} {:>6}", "handler", "delivered", "retrying", "dead", "held")?;
        for handler in &status.handlers {
            writeln!(
                out,
                "{:<40} {:>10} {:>9} {:>6} {:>6}",
                handler.handler, handler.delivered, handler.retrying, handler.dead, handler.held
            )?;
        }
    }
    Ok(if status.dead + status.held > 0 { Exit::Attention } else { Exit::Ok })
}
