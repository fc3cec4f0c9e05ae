//! What the operations router keeps: the domain, its options, and the rebuilds it started.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::runtime::{Domain, RebuildProgress, RebuildReport};

/// The router's state, shared by its handlers.
pub(super) struct Ops {
    pub(super) domain: Domain,
    pub(super) max_lag: Duration,
    pub(super) store_timeout: Duration,
    pub(super) read_only: bool,
    /// The rebuild this router started last of each projection, by name.
    rebuilds: Mutex<HashMap<&'static str, Tracked>>,
}

/// A rebuild started over HTTP: when, and where it stands.
#[derive(Debug, Clone)]
pub(super) struct Tracked {
    pub(super) started_at: OffsetDateTime,
    pub(super) stage: Stage,
    /// Notified to cancel it.
    pub(super) cancel: Arc<Notify>,
}

/// Where a rebuild started over HTTP stands.
#[derive(Debug, Clone)]
pub(super) enum Stage {
    /// Under way; the progress after its last batch, if one was written.
    Running(Option<RebuildProgress>),
    /// Finished: the new copy serves reads.
    Switched(RebuildReport),
    /// Another builder was at work on the projection: this one did nothing.
    Busy,
    /// Cancelled before the switch: the old copy still serves reads.
    Cancelled(RebuildProgress),
    /// It stopped on an error (the serving copy is unchanged).
    Failed(String),
}

impl Ops {
    pub(super) fn new(domain: Domain, max_lag: Duration, store_timeout: Duration, read_only: bool) -> Self {
        Ops { domain, max_lag, store_timeout, read_only, rebuilds: Mutex::new(HashMap::new()) }
    }

    /// The rebuild of `projection` this router started last.
    pub(super) fn rebuild(&self, projection: &str) -> Option<Tracked> {
        self.rebuilds.lock().unwrap_or_else(PoisonError::into_inner).get(projection).cloned()
    }

    /// Every rebuild this router started, by projection.
    pub(super) fn rebuilds(&self) -> HashMap<&'static str, Tracked> {
        self.rebuilds.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Records that a rebuild of `projection` starts, and returns what cancels it;
    /// `None` while one this router started is still running.
    pub(super) fn start(&self, projection: &'static str) -> Option<Arc<Notify>> {
        let mut rebuilds = self.rebuilds.lock().unwrap_or_else(PoisonError::into_inner);
        if rebuilds.get(projection).is_some_and(Tracked::running) {
            return None;
        }
        let cancel = Arc::new(Notify::new());
        let tracked =
            Tracked { started_at: OffsetDateTime::now_utc(), stage: Stage::Running(None), cancel: Arc::clone(&cancel) };
        rebuilds.insert(projection, tracked);
        Some(cancel)
    }

    /// Records where the rebuild of `projection` stands now.
    pub(super) fn advance(&self, projection: &'static str, stage: Stage) {
        let mut rebuilds = self.rebuilds.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tracked) = rebuilds.get_mut(projection) {
            tracked.stage = stage;
        }
    }
}

impl Tracked {
    /// Whether it is still under way.
    pub(super) fn running(&self) -> bool {
        matches!(self.stage, Stage::Running(_))
    }

    /// As JSON: `state` (`running`, `switched`, `cancelled`, `busy`, `failed`), when it started, and
    /// the progress (`done`, `total`, `rate` in events/s, `elapsed_seconds`,
    /// `eta_seconds`) or the outcome.
    pub(super) fn to_json(&self, projection: &str) -> Value {
        let started_at = rfc3339(self.started_at);
        match &self.stage {
            Stage::Running(progress) => {
                let (done, total, rate, elapsed) =
                    progress.as_ref().map_or((0, 0, 0.0, 0.0), |p| (p.done, p.total, p.rate, p.elapsed.as_secs_f64()));
                let eta = progress.as_ref().and_then(RebuildProgress::eta).map(|eta| eta.as_secs_f64());
                json!({
                    "projection": projection, "state": "running", "started_at": started_at,
                    "done": done, "total": total, "rate": rate, "elapsed_seconds": elapsed, "eta_seconds": eta,
                })
            }
            Stage::Switched(report) => json!({
                "projection": projection, "state": "switched", "started_at": started_at,
                "done": report.events, "total": report.events, "rate": report.rate,
                "elapsed_seconds": report.elapsed.as_secs_f64(), "generation": report.generation,
            }),
            Stage::Cancelled(p) => json!({
                "projection": projection, "state": "cancelled", "started_at": started_at,
                "done": p.done, "total": p.total, "rate": p.rate, "elapsed_seconds": p.elapsed.as_secs_f64(),
                "message": "cancelled before the switch: the old copy still serves reads",
            }),
            Stage::Busy => json!({
                "projection": projection, "state": "busy", "started_at": started_at,
                "message": "another builder is rebuilding this projection: this rebuild did nothing",
            }),
            Stage::Failed(error) => json!({
                "projection": projection, "state": "failed", "started_at": started_at, "message": error,
            }),
        }
    }
}

/// A time as RFC 3339 text.
pub(super) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| at.to_string())
}
