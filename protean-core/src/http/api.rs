//! The JSON routes and the probes.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::http::state::{rfc3339, Ops, Stage, Tracked};
use crate::model::StreamId;
use crate::runtime::{ProcessError, ProjectionStatus, QueryError, Rebuild, RebuildEnd, Redelivered};
use crate::store::{FailedDelivery, FailureQuery, FailureStatus, Scheduled};

/// Dead letters listed per page unless `limit` says otherwise.
const DEFAULT_PAGE: usize = 50;
/// The most a page holds.
const MAX_PAGE: usize = 1_000;
/// Scheduled commands listed unless `limit` says otherwise.
const DEFAULT_SCHEDULED: usize = 100;
/// How far paging reaches: `offset + limit` at most.
const MAX_SCAN: usize = 10_000;

/// Why an operations route did not do what was asked: answered as
/// `{"error": KIND, "message": TEXT}` with its status code.
#[derive(Debug, thiserror::Error)]
pub(super) enum OpsError {
    /// A malformed id, filter or paging: 400.
    #[error("{0}")]
    BadRequest(String),
    /// No such dead letter, projection, rebuild or route: 404.
    #[error("{0}")]
    NotFound(String),
    /// A browser's request from another site to a route that changes something: 403.
    #[error("{0}")]
    Forbidden(String),
    /// A rebuild of the projection is already running: 409.
    #[error("{0}")]
    Conflict(String),
    /// The domain or its store failed: 500.
    #[error(transparent)]
    Process(#[from] ProcessError),
}

impl OpsError {
    fn kind(&self) -> (StatusCode, &'static str) {
        match self {
            OpsError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            OpsError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            OpsError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            OpsError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            OpsError::Process(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for OpsError {
    fn into_response(self) -> Response {
        let (status, kind) = self.kind();
        if status.is_server_error() {
            tracing::error!(error = %self, "operations route failed");
        }
        (status, Json(json!({ "error": kind, "message": self.to_string() }))).into_response()
    }
}

impl From<PathRejection> for OpsError {
    fn from(rejection: PathRejection) -> Self {
        OpsError::BadRequest(rejection.body_text())
    }
}

impl From<QueryRejection> for OpsError {
    fn from(rejection: QueryRejection) -> Self {
        OpsError::BadRequest(rejection.body_text())
    }
}

type Answer = Result<Response, OpsError>;

/// Refuses a browser's request made by a page of another site (cross-site request
/// forgery: a page elsewhere making a signed-in operator's browser redeliver or discard),
/// told by the `Sec-Fetch-Site` header browsers send. Clients that are not browsers send
/// none, and pass.
fn same_origin(headers: &HeaderMap) -> Result<(), OpsError> {
    match headers.get("sec-fetch-site").map(|site| site.to_str()) {
        None | Some(Ok("same-origin" | "none")) => Ok(()),
        Some(site) => Err(OpsError::Forbidden(format!(
            "a browser's request from another site (Sec-Fetch-Site: {}) may not change anything",
            site.unwrap_or("?")
        ))),
    }
}

/// `GET /livez`: the process answers.
pub(super) async fn livez() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 while the delivery lag is within the bound and the store answers
/// in time, else 503 with the reason.
pub(super) async fn readyz(State(ops): State<Arc<Ops>>) -> Response {
    let unready = |reason: String, extra: Value| {
        let mut body = json!({ "ready": false, "reason": reason });
        if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
            body.extend(extra);
        }
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    };
    let status = match tokio::time::timeout(ops.store_timeout, ops.domain.delivery_status()).await {
        Err(_) => {
            let wait = ops.store_timeout.as_secs_f64();
            return unready(format!("the store did not answer within {wait} s"), json!({}));
        }
        Ok(Err(error)) => return unready(format!("the store is unreachable: {error}"), json!({})),
        Ok(Ok(status)) => status,
    };
    let (lag, bound) = (status.lag.as_secs_f64(), ops.max_lag.as_secs_f64());
    let numbers = json!({ "lag_seconds": lag, "max_lag_seconds": bound, "undelivered": status.undelivered });
    if status.lag > ops.max_lag {
        return unready(format!("the delivery lag, {lag:.3} s, is over the bound of {bound} s"), numbers);
    }
    let mut body = json!({ "ready": true });
    if let (Value::Object(body), Value::Object(numbers)) = (&mut body, numbers) {
        body.extend(numbers);
    }
    Json(body).into_response()
}

/// `GET /api/status`: the delivery status and every projection's.
pub(super) async fn status(State(ops): State<Arc<Ops>>) -> Answer {
    let delivery = ops.domain.delivery_status().await?;
    let projections = projections_json(&ops).await?;
    Ok(Json(json!({ "delivery": delivery, "projections": projections })).into_response())
}

/// The filters and paging of `GET /api/dead-letters`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct LetterFilter {
    pub(super) handler: Option<String>,
    pub(super) event_type: Option<String>,
    pub(super) stream: Option<String>,
    pub(super) limit: Option<usize>,
    pub(super) offset: Option<usize>,
}

/// One page of dead letters, and the offset of the next page when there is one.
pub(super) struct LetterPage {
    pub(super) letters: Vec<FailedDelivery>,
    pub(super) offset: usize,
    pub(super) limit: usize,
    pub(super) next_offset: Option<usize>,
}

/// The page of dead letters `filter` asks for, oldest event first.
pub(super) async fn letter_page(ops: &Ops, filter: LetterFilter) -> Result<LetterPage, OpsError> {
    let limit = filter.limit.unwrap_or(DEFAULT_PAGE);
    let offset = filter.offset.unwrap_or(0);
    if limit == 0 || limit > MAX_PAGE {
        return Err(OpsError::BadRequest(format!("limit must be from 1 to {MAX_PAGE}, not {limit}")));
    }
    if offset.saturating_add(limit) > MAX_SCAN {
        return Err(OpsError::BadRequest(format!("offset + limit reaches {MAX_SCAN} dead letters at most")));
    }
    let stream = match filter.stream.as_deref() {
        None | Some("") => None,
        Some(text) => match text.split_once('/') {
            Some((aggregate, id)) if !aggregate.is_empty() && !id.is_empty() => {
                Some(StreamId::new(aggregate.to_owned(), id))
            }
            _ => return Err(OpsError::BadRequest(format!("stream `{text}` is not `Aggregate/id`"))),
        },
    };
    let event_type = filter.event_type.filter(|t| !t.is_empty());
    // The store filters by handler, stream and status; the event type is filtered here,
    // over as many as paging can reach.
    let window = if event_type.is_some() { MAX_SCAN } else { offset + limit + 1 };
    let handler = filter.handler.filter(|h| !h.is_empty());
    let query = FailureQuery { handler, stream, status: Some(FailureStatus::Dead), limit: window };
    let mut letters = ops.domain.delivery_failures(query).await?;
    if let Some(event_type) = event_type {
        letters.retain(|letter| letter.event.type_name == event_type);
    }
    let more = letters.len() > offset + limit;
    let letters: Vec<FailedDelivery> = letters.into_iter().skip(offset).take(limit).collect();
    Ok(LetterPage { letters, offset, limit, next_offset: more.then_some(offset + limit) })
}

/// `GET /api/dead-letters`.
pub(super) async fn dead_letters(
    State(ops): State<Arc<Ops>>,
    filter: Result<Query<LetterFilter>, QueryRejection>,
) -> Answer {
    let page = letter_page(&ops, filter?.0).await?;
    let list: Vec<Value> = page.letters.iter().map(FailedDelivery::to_json).collect();
    let body = json!({
        "dead_letters": list, "offset": page.offset, "limit": page.limit, "next_offset": page.next_offset,
    });
    Ok(Json(body).into_response())
}

/// `GET /api/dead-letters/{handler}/{event_id}`.
pub(super) async fn dead_letter(
    State(ops): State<Arc<Ops>>,
    key: Result<Path<(String, Uuid)>, PathRejection>,
) -> Answer {
    let Path((handler, event_id)) = key?;
    match ops.domain.dead_letter(&handler, event_id).await? {
        Some(letter) => Ok(Json(letter.to_json()).into_response()),
        None => Err(no_dead_letter(&handler, event_id)),
    }
}

/// `POST /api/dead-letters/{handler}/{event_id}/redeliver`.
pub(super) async fn redeliver(
    State(ops): State<Arc<Ops>>,
    headers: HeaderMap,
    key: Result<Path<(String, Uuid)>, PathRejection>,
) -> Answer {
    same_origin(&headers)?;
    let Path((handler, event_id)) = key?;
    settled(ops.domain.redeliver(&handler, event_id).await, &handler, event_id)
}

/// `POST /api/dead-letters/{handler}/{event_id}/discard`.
pub(super) async fn discard(
    State(ops): State<Arc<Ops>>,
    headers: HeaderMap,
    key: Result<Path<(String, Uuid)>, PathRejection>,
) -> Answer {
    same_origin(&headers)?;
    let Path((handler, event_id)) = key?;
    settled(ops.domain.discard(&handler, event_id).await, &handler, event_id)
}

/// What a redelivery or a discard did, or 404 when there was no such dead letter.
fn settled(outcome: Result<Redelivered, ProcessError>, handler: &str, event_id: Uuid) -> Answer {
    let done = match outcome {
        Err(ProcessError::NoDeadLetter { .. }) => return Err(no_dead_letter(handler, event_id)),
        other => other?,
    };
    let delivered: Vec<Value> = done.delivered.iter().map(|(h, id)| json!({ "handler": h, "event_id": id })).collect();
    let failed: Vec<Value> = done.failed.iter().map(FailedDelivery::to_json).collect();
    Ok(Json(json!({ "delivered": delivered, "failed": failed })).into_response())
}

fn no_dead_letter(handler: &str, event_id: Uuid) -> OpsError {
    OpsError::NotFound(format!("no dead letter of `{handler}` for event {event_id}"))
}

/// `GET /api/projections`.
pub(super) async fn projections(State(ops): State<Arc<Ops>>) -> Answer {
    Ok(Json(projections_json(&ops).await?).into_response())
}

/// Every projection's status, with the rebuild this router started last of it.
async fn projections_json(ops: &Ops) -> Result<Value, OpsError> {
    let statuses = ops.domain.projection_statuses().await?;
    let rebuilds = ops.rebuilds();
    let list = statuses.iter().map(|s| projection_json(s, rebuilds.get(s.projection))).collect();
    Ok(Value::Array(list))
}

fn projection_json(status: &ProjectionStatus, rebuild: Option<&Tracked>) -> Value {
    json!({
        "projection": status.projection,
        "version": status.version,
        "declared_version": status.declared_version,
        "generation": status.generation,
        "checkpoint": status.checkpoint,
        "lag": status.lag,
        "building": status.build.as_ref().map(|b| json!({
            "generation": b.generation,
            "version": b.version,
            "position": b.position,
            "heartbeat": rfc3339(b.heartbeat),
        })),
        "rebuild": rebuild.map(|r| r.to_json(status.projection)),
    })
}

/// The options of `POST /api/projections/{name}/rebuild`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RebuildOptions {
    /// Apply only the events after this log position ([`Rebuild::from_position`]).
    from_position: Option<u64>,
    /// Say what it would do ([`Rebuild::dry_run`]), changing nothing.
    #[serde(default)]
    dry_run: bool,
}

/// The rebuild of projection `name`, or 404 when the domain has none of that name.
fn rebuild_of(ops: &Ops, name: &str) -> Result<Rebuild, OpsError> {
    match ops.domain.rebuild_by_name(name) {
        Err(error @ ProcessError::Query(QueryError::UnknownProjection { .. })) => {
            Err(OpsError::NotFound(error.to_string()))
        }
        other => Ok(other?),
    }
}

/// `POST /api/projections/{name}/rebuild[?from_position=N][&dry_run=true]`: 202 and the
/// progress so far, the rebuild running in a task of its own; with `dry_run`, 200 and
/// the plan ([`RebuildPlan`](crate::runtime::RebuildPlan)), nothing started.
pub(super) async fn start_rebuild(
    State(ops): State<Arc<Ops>>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    options: Result<Query<RebuildOptions>, QueryRejection>,
) -> Answer {
    same_origin(&headers)?;
    let (Path(name), Query(options)) = (name?, options?);
    let mut rebuild = rebuild_of(&ops, &name)?;
    if let Some(position) = options.from_position {
        rebuild = rebuild.from_position(position);
    }
    if options.dry_run {
        return Ok(Json(rebuild.dry_run().await?).into_response());
    }
    let projection = rebuild.projection();
    let Some(cancel) = ops.start(projection) else {
        return Err(OpsError::Conflict(format!("a rebuild of `{projection}` started here is running")));
    };
    let watcher = Arc::clone(&ops);
    let rebuild =
        rebuild.on_progress(move |progress| watcher.advance(projection, Stage::Running(Some(progress.clone()))));
    let runner = Arc::clone(&ops);
    tokio::spawn(async move {
        let stage = match rebuild.run_until(async move { cancel.notified().await }).await {
            Ok(RebuildEnd::Switched(report)) => Stage::Switched(report),
            Ok(RebuildEnd::Cancelled(progress)) => Stage::Cancelled(progress),
            Ok(RebuildEnd::Busy) => Stage::Busy,
            Err(error) => Stage::Failed(error.to_string()),
        };
        runner.advance(projection, stage);
    });
    let tracked = ops.rebuild(projection).map(|t| t.to_json(projection)).unwrap_or(Value::Null);
    Ok((StatusCode::ACCEPTED, Json(tracked)).into_response())
}

/// `POST /api/projections/{name}/rebuild/cancel`: 202; the rebuild stops before its next
/// batch, and the old copy keeps serving reads. 404 when no rebuild of it started here
/// is running.
pub(super) async fn cancel_rebuild(
    State(ops): State<Arc<Ops>>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Answer {
    same_origin(&headers)?;
    let Path(name) = name?;
    match ops.rebuild(&name) {
        Some(tracked) if tracked.running() => {
            tracked.cancel.notify_one();
            Ok((StatusCode::ACCEPTED, Json(tracked.to_json(&name))).into_response())
        }
        _ => Err(OpsError::NotFound(format!("no rebuild of `{name}` started here is running"))),
    }
}

/// `GET /api/projections/{name}/rebuild`.
pub(super) async fn rebuild_progress(State(ops): State<Arc<Ops>>, name: Result<Path<String>, PathRejection>) -> Answer {
    let Path(name) = name?;
    match ops.rebuild(&name) {
        Some(tracked) => Ok(Json(tracked.to_json(&name)).into_response()),
        None => {
            rebuild_of(&ops, &name)?;
            Err(OpsError::NotFound(format!("no rebuild of `{name}` was started here")))
        }
    }
}

/// The paging of `GET /api/scheduled`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ScheduledPage {
    limit: Option<usize>,
}

/// `GET /api/scheduled[?limit=N]`: the commands process managers sent or scheduled that
/// have not fired, earliest due first (100 unless `limit` says otherwise, at most 1,000).
pub(super) async fn scheduled(
    State(ops): State<Arc<Ops>>,
    page: Result<Query<ScheduledPage>, QueryRejection>,
) -> Answer {
    let limit = page?.0.limit.unwrap_or(DEFAULT_SCHEDULED);
    if limit == 0 || limit > MAX_PAGE {
        return Err(OpsError::BadRequest(format!("limit must be from 1 to {MAX_PAGE}, not {limit}")));
    }
    let list = ops.domain.scheduled_commands(limit).await?;
    Ok(Json(json!({ "scheduled": list.iter().map(scheduled_json).collect::<Vec<_>>() })).into_response())
}

/// `POST /api/scheduled/{id}/cancel`: 200 when it was cancelled, 404 when there is no
/// such pending command (fired, cancelled, or never scheduled).
pub(super) async fn cancel_scheduled(
    State(ops): State<Arc<Ops>>,
    headers: HeaderMap,
    id: Result<Path<Uuid>, PathRejection>,
) -> Answer {
    same_origin(&headers)?;
    let Path(id) = id?;
    if ops.domain.cancel_scheduled(id).await? {
        Ok(Json(json!({ "cancelled": id })).into_response())
    } else {
        Err(OpsError::NotFound(format!("no pending scheduled command {id}")))
    }
}

/// A scheduled command as JSON, its payload parsed.
pub(super) fn scheduled_json(command: &Scheduled) -> Value {
    let mut value = serde_json::to_value(command).unwrap_or(Value::Null);
    if let Some(payload) = value.get_mut("payload") {
        *payload = serde_json::from_str(&command.payload).unwrap_or(Value::Null);
    }
    value
}

/// Any other route: 404, as JSON.
pub(super) async fn unknown_route(method: Method, uri: Uri) -> OpsError {
    OpsError::NotFound(format!("no route for {method} {}", uri.path()))
}
