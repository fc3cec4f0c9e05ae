//! The workers' sign of life: a beat in the store as they start and every third of a
//! lease (at most every 10 s) while they run, and a last beat marked stopped when they
//! stop gracefully. [`Domain::delivery_status`](crate::runtime::Domain::delivery_status)
//! lists the worker sets whose last beat is less than three beats old.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Counts, Shared};
use crate::store::WorkerBeat;

/// How often a worker set leased for `lease` beats.
pub(super) fn interval(lease: Duration) -> Duration {
    (lease / 3).clamp(Duration::from_millis(10), Duration::from_secs(10))
}

/// The first beat of a new worker set of this process.
pub(super) fn first(lease: Duration) -> WorkerBeat {
    let now = OffsetDateTime::now_utc();
    WorkerBeat {
        id: Uuid::now_v7(),
        host: host(),
        pid: std::process::id(),
        started_at: now,
        seen_at: now,
        every_ms: u64::try_from(interval(lease).as_millis()).unwrap_or(u64::MAX),
        stopped: false,
    }
}

/// The host's name: `HOSTNAME`, else `/etc/hostname`, else empty.
fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

/// Beats until the workers stop.
pub(super) async fn beat_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(interval(shared.config.lease));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => beat(&shared, false).await,
            _ = shared.stop.wait() => return,
        }
    }
}

/// Writes a beat now; `stopped` for the last one.
pub(super) async fn beat(shared: &Shared, stopped: bool) {
    let beat = WorkerBeat { seen_at: OffsetDateTime::now_utc(), stopped, ..shared.beat.clone() };
    if let Err(error) = shared.engine.store.beat_worker(beat).await {
        Counts::add(&shared.counts.store_errors, 1);
        tracing::warn!(error = &error as &dyn std::error::Error, "could not record the workers' beat");
    }
}
