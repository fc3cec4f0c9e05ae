//! The operations API and page, an axum [`Router`] to mount in your own app (feature
//! `http`): liveness and readiness probes, the delivery status, dead letters (list,
//! show, redeliver, discard), projections (status, rebuild and its progress) and the
//! commands process managers scheduled, as JSON; and one HTML page showing it all, with
//! buttons for the changes.
//!
//! ```
//! # extern crate protean_core as protean;
//! use std::time::Duration;
//!
//! use protean::http::OpsRouter;
//! use protean::runtime::Domain;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let domain = Domain::builder().build()?;
//! // Not ready while an event has waited more than 10 s for delivery.
//! let ops = OpsRouter::new(domain).max_lag(Duration::from_secs(10)).into_router();
//! let app: axum::Router = axum::Router::new().nest("/ops", ops);
//!
//! // Served as usual (`axum::serve(listener, app)`); here, one request by hand.
//! use tower::ServiceExt;
//! let request = axum::http::Request::get("/ops/readyz").body(axum::body::Body::empty())?;
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! # Ok::<_, Box<dyn std::error::Error>>(()) })?;
//! # Ok(()) }
//! ```
//!
//! The router does no authentication of its own: mount it behind yours
//! (docs/operations-http.md shows a bearer-token middleware), or mount the
//! [`read_only`](OpsRouter::read_only) variant, which has no route that changes anything.
//!
//! # Routes
//!
//! Paths are relative to where the router is mounted. Every answer of the `/api` routes
//! is JSON; an error is `{"error": KIND, "message": TEXT}` with the status code below.
//!
//! | route | answers |
//! | --- | --- |
//! | `GET /` | the operations page (HTML) |
//! | `GET /livez` | 200 `ok` while the process serves requests |
//! | `GET /readyz` | 200 `{"ready": true, "lag_seconds": ..}`; 503 `{"ready": false, "reason": .., ..}` when the delivery lag passes [`max_lag`](OpsRouter::max_lag) or the store does not answer within [`store_timeout`](OpsRouter::store_timeout) |
//! | `GET /api/status` | `{"delivery": ..., "projections": [...]}`: [`Domain::delivery_status`] and [`Domain::projection_statuses`] |
//! | `GET /api/dead-letters?handler=&event_type=&stream=&limit=&offset=` | `{"dead_letters": [...], "offset", "limit", "next_offset"}`, oldest event first; `stream` is `Aggregate/id`; `limit` 50 unless given (at most 1,000); `offset + limit` at most 10,000; `event_type` is matched among the first 10,000 dead letters the other filters leave |
//! | `GET /api/dead-letters/{handler}/{event_id}` | one dead letter (any failed delivery, whatever its status); 404 when there is none |
//! | `POST /api/dead-letters/{handler}/{event_id}/redeliver` | [`Domain::redeliver`]: `{"delivered": [...], "failed": [...]}`; 404 when there is no such dead letter |
//! | `POST /api/dead-letters/{handler}/{event_id}/discard` | [`Domain::discard`], answered the same way |
//! | `GET /api/projections` | [`Domain::projection_statuses`], with the rebuild this router runs of each |
//! | `POST /api/projections/{name}/rebuild` | 202: starts a blue/green rebuild ([`Domain::rebuild_by_name`]) in a task of its own; `?from_position=N` applies only the events after log position `N`; `?dry_run=true` answers 200 with the [`RebuildPlan`](crate::runtime::RebuildPlan) and starts nothing; 404 for an unknown projection, 409 while this router runs one of it |
//! | `GET /api/projections/{name}/rebuild` | the progress of the rebuild this router started last (`state`: `running`, `switched`, `cancelled`, `busy` or `failed`; `done`, `total`, `rate`, `eta_seconds`); 404 when it started none |
//! | `POST /api/projections/{name}/rebuild/cancel` | 202: the rebuild stops between batches and the old copy keeps serving reads; 404 when none started here is running |
//! | `GET /api/scheduled?limit=` | `{"scheduled": [...]}`: [`Domain::scheduled_commands`], earliest due first (100 unless given, at most 1,000) |
//! | `POST /api/scheduled/{id}/cancel` | [`Domain::cancel_scheduled`]: 200 `{"cancelled": id}`; 404 when no such command is pending |
//!
//! The routes that change something refuse a browser's request made by a page of
//! another site (its `Sec-Fetch-Site` header says `cross-site` or `same-site`) with 403:
//! a page elsewhere cannot make a signed-in operator's browser press the buttons
//! (cross-site request forgery). Clients other than browsers send no such header.
//!
//! Status codes: 400 for a malformed id, filter or paging; 403 for a cross-site browser
//! request to a route that changes something; 404 for what does not exist
//! (an unknown route too); 405 for a known path with another method (a mutating route
//! of the read-only router among them); 409 for a rebuild already running; 500 when the
//! store fails (the message says why); 503 from `/readyz` when not ready.

mod api;
mod page;
mod state;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;

use crate::runtime::Domain;

use state::Ops;

/// The operations router over `domain`, with the default options (see [`OpsRouter`]).
pub fn ops_router(domain: Domain) -> Router {
    OpsRouter::new(domain).into_router()
}

/// Options of the operations router; [`into_router`](Self::into_router) builds it.
#[derive(Debug, Clone)]
pub struct OpsRouter {
    domain: Domain,
    max_lag: Duration,
    store_timeout: Duration,
    read_only: bool,
}

impl OpsRouter {
    /// The router over `domain`: not ready past 60 s of delivery lag or when the store
    /// takes more than 5 s to answer; with the mutating routes.
    pub fn new(domain: Domain) -> Self {
        OpsRouter { domain, max_lag: Duration::from_secs(60), store_timeout: Duration::from_secs(5), read_only: false }
    }

    /// `GET /readyz` answers 503 while the oldest undelivered event has waited longer
    /// than `lag` (60 s unless given).
    pub fn max_lag(mut self, lag: Duration) -> Self {
        self.max_lag = lag;
        self
    }

    /// `GET /readyz` answers 503 when the store takes longer than `wait` to report the
    /// delivery status (5 s unless given).
    pub fn store_timeout(mut self, wait: Duration) -> Self {
        self.store_timeout = wait;
        self
    }

    /// Without the routes that change anything (redeliver, discard, rebuild and its
    /// cancel, cancelling a scheduled command):
    /// they answer 405 (or 404), and the page shows no buttons.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Only `GET /livez` and `GET /readyz`, to mount where the orchestrator's probes
    /// reach them without credentials while the rest sits behind your auth layer.
    pub fn probes(self) -> Router {
        let ops = Arc::new(Ops::new(self.domain, self.max_lag, self.store_timeout, true));
        Router::new()
            .route("/livez", get(api::livez))
            .route("/readyz", get(api::readyz))
            .fallback(api::unknown_route)
            .with_state(ops)
    }

    /// The router, to [`nest`](Router::nest) in your app (or serve as it is).
    pub fn into_router(self) -> Router {
        let read_only = self.read_only;
        let ops = Arc::new(Ops::new(self.domain, self.max_lag, self.store_timeout, read_only));
        let mut router = Router::new()
            .route("/", get(page::page))
            .route("/livez", get(api::livez))
            .route("/readyz", get(api::readyz))
            .route("/api/status", get(api::status))
            .route("/api/dead-letters", get(api::dead_letters))
            .route("/api/dead-letters/{handler}/{event_id}", get(api::dead_letter))
            .route("/api/projections", get(api::projections))
            .route("/api/projections/{name}/rebuild", get(api::rebuild_progress))
            .route("/api/scheduled", get(api::scheduled));
        if !read_only {
            router = router
                .route("/api/dead-letters/{handler}/{event_id}/redeliver", post(api::redeliver))
                .route("/api/dead-letters/{handler}/{event_id}/discard", post(api::discard))
                .route("/api/projections/{name}/rebuild", post(api::start_rebuild))
                .route("/api/projections/{name}/rebuild/cancel", post(api::cancel_rebuild))
                .route("/api/scheduled/{id}/cancel", post(api::cancel_scheduled));
        }
        router.fallback(api::unknown_route).with_state(ops)
    }
}
