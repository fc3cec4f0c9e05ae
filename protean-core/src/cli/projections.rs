//! `ops projections ...`: where each projection stands, and its rebuild.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::cli::{Exit, Outcome, Stop};
use crate::runtime::{Domain, ProcessError, QueryError, RebuildEnd, RebuildProgress};

/// The projection commands.
#[derive(Debug, Subcommand)]
pub enum Projections {
    /// Every projection: the serving copy's version (and the declared one), its
    /// checkpoint, how many events it is behind, and a rebuild under way.
    Status,
    /// Rebuilds a projection blue/green: the serving copy keeps answering until the new
    /// one switches in. Progress goes to stderr: a bar (done/total, events/s, ETA) on a
    /// terminal, a line per batch otherwise. Ctrl-C stops it cleanly (exit 4): the
    /// serving copy stays, and the next rebuild resumes the copy filled so far.
    Rebuild {
        /// The projection's name (as `projections status` prints it).
        name: String,
        /// Says what the rebuild would do (from where, how many events, whether another
        /// builder is at work), changing nothing.
        #[arg(long)]
        dry_run: bool,
        /// Applies only the events stored after this log position (the rows the earlier
        /// events made are not rebuilt: for a projector fixed from a known point on).
        #[arg(long)]
        from_position: Option<u64>,
    },
}

impl Projections {
    /// Runs the command; see [`Ops::run`](crate::cli::Ops::run).
    pub(super) async fn run(self, domain: &Domain, json: bool, out: &mut impl Write, stop: Stop<'_>) -> Outcome {
        match self {
            Projections::Rebuild { name, dry_run, from_position } => {
                rebuild(domain, &name, dry_run, from_position, json, out, stop).await
            }
            Projections::Status => {
                let statuses = domain.projection_statuses().await?;
                if json {
                    let list: Vec<Value> = statuses
                        .iter()
                        .map(|s| {
                            json!({
                                "projection": s.projection,
                                "version": s.version,
                                "declared_version": s.declared_version,
                                "generation": s.generation,
                                "checkpoint": s.checkpoint,
                                "lag": s.lag,
                                "rebuilding": s.build.as_ref().map(|b| json!({
                                    "version": b.version,
                                    "position": b.position,
                                })),
                            })
                        })
                        .collect();
                    writeln!(out, "{}", Value::Array(list))?;
                } else {
                    writeln!(
                        out,
                        "{:<32} {:>8} {:>11} {:>8} rebuild",
                        "projection", "version", "checkpoint", "behind"
                    )?;
                    for s in &statuses {
                        let version = if s.version == s.declared_version {
                            s.version.to_string()
                        } else {
                            format!("{}->{}", s.version, s.declared_version)
                        };
                        let rebuild =
                            s.build.as_ref().map_or("-".to_owned(), |b| format!("v{} at {}", b.version, b.position));
                        writeln!(
                            out,
                            "{:<32} {:>8} {:>11} {:>8} {rebuild}",
                            s.projection, version, s.checkpoint, s.lag
                        )?;
                    }
                }
                let outdated = statuses.iter().any(|s| s.version != s.declared_version || s.build.is_some());
                Ok(if outdated { Exit::Attention } else { Exit::Ok })
            }
        }
    }
}

/// `projections rebuild`.
async fn rebuild(
    domain: &Domain,
    name: &str,
    dry_run: bool,
    from_position: Option<u64>,
    json: bool,
    out: &mut impl Write,
    stop: Stop<'_>,
) -> Outcome {
    let mut rebuild = match domain.rebuild_by_name(name) {
        Ok(rebuild) => rebuild,
        Err(error @ ProcessError::Query(QueryError::UnknownProjection { .. })) => {
            super::say(out, json, &error.to_string())?;
            return Ok(Exit::NotFound);
        }
        Err(error) => return Err(error.into()),
    };
    if let Some(position) = from_position {
        rebuild = rebuild.from_position(position);
    }
    if dry_run {
        let plan = rebuild.dry_run().await?;
        if json {
            writeln!(out, "{}", json!(plan))?;
        } else {
            let serving = plan.serving_version.map_or("none".to_owned(), |v| format!("v{v}"));
            writeln!(
                out,
                "{}: would rebuild v{} from log position {}: {} event(s); serving copy {} (generation {}) stays until the switch",
                plan.projection, plan.declared_version, plan.from_position, plan.events, serving, plan.serving_generation
            )?;
            if let Some(build) = &plan.resumes {
                writeln!(out, "  resumes the unfinished rebuild at position {}", build.position)?;
            }
            if plan.busy {
                writeln!(out, "  another builder is at work: a rebuild now would do nothing")?;
            }
        }
        return Ok(if plan.busy { Exit::Attention } else { Exit::Ok });
    }
    let progress = Progress::new();
    let reporter = progress.clone();
    let rebuild = rebuild.on_progress(move |p| reporter.report(p));
    let end = rebuild.run_until(stop).await;
    progress.finish();
    let end = end?;
    if json {
        writeln!(out, "{}", json!(end))?;
    } else {
        match &end {
            RebuildEnd::Switched(report) => writeln!(
                out,
                "{}: rebuilt from {} event(s) in {:.3} s ({:.0} events/s); generation {} serves reads",
                report.projection,
                report.events,
                report.elapsed.as_secs_f64(),
                report.rate,
                report.generation
            )?,
            RebuildEnd::Busy => writeln!(out, "{name}: another builder is at work; nothing done")?,
            RebuildEnd::Cancelled(at) => writeln!(
                out,
                "{}: cancelled after {} of {} event(s); the serving copy stays, and the next rebuild resumes",
                at.projection, at.done, at.total
            )?,
        }
    }
    Ok(match end {
        RebuildEnd::Switched(_) => Exit::Ok,
        RebuildEnd::Busy | RebuildEnd::Cancelled(_) => Exit::Attention,
    })
}

/// Where a rebuild's progress goes: a bar on a terminal, lines otherwise (both on
/// stderr, so that stdout holds only the result).
#[derive(Clone)]
enum Progress {
    Bar(ProgressBar),
    Lines,
}

impl Progress {
    fn new() -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress::Lines;
        }
        let bar = ProgressBar::new(0);
        let template = "{msg} [{bar:40}] {pos}/{len} events, {per_sec}, ETA {eta}";
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress::Bar(bar)
    }

    fn report(&self, progress: &RebuildProgress) {
        match self {
            Progress::Bar(bar) => {
                bar.set_message(progress.projection);
                bar.set_length(progress.total.max(progress.done));
                bar.set_position(progress.done);
            }
            Progress::Lines => {
                let eta = progress.eta().map_or("-".to_owned(), |eta| format!("{:.1} s", eta.as_secs_f64()));
                eprintln!(
                    "rebuild {}: {}/{} events, {:.0} events/s, ETA {eta}",
                    progress.projection, progress.done, progress.total, progress.rate
                );
            }
        }
    }

    fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
