//! `GET /metrics`: the domain's metrics (docs/metrics.md) as Prometheus text, rendered
//! by `metrics-exporter-prometheus` from the recorder `main.rs` installs before it builds
//! the domain. `tests/metrics.rs` scrapes it over HTTP.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The bucket bounds of protean's latency histograms, in seconds: from 100 µs to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// A Prometheus recorder whose `_seconds` metrics are histograms with
/// [`LATENCY_BUCKETS`] (without buckets the exporter renders them as summaries), to
/// install with `install_recorder` (or to build, for a test's local recorder).
pub fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .expect("the bucket list is not empty")
}

/// `GET /metrics`, rendering what `handle`'s recorder holds.
pub fn router<S: Clone + Send + Sync + 'static>(handle: PrometheusHandle) -> Router<S> {
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response() }
        }),
    )
}
