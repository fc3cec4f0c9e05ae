//! The HTTP face of the e-commerce domain: the routes, and how a refusal becomes a
//! status code. `main.rs` serves it; `tests/http_shop.rs` serves the same router and
//! calls it over real HTTP.
//!
//! | route | does |
//! |---|---|
//! | `POST /commands/Order.PlaceOrder` | processes a [`PlaceOrder`] given as JSON |
//! | `POST /commands/Inventory.Restock` | processes a [`Restock`] given as JSON |
//! | `GET /orders/{id}` | the [`Order`], as JSON |
//! | `GET /inventory/{sku}` | the [`Inventory`] of a SKU, as JSON |
//! | `GET /loyalty/{customer_id}` | the [`CustomerLoyalty`] of a customer, as JSON |
//! | `/ops`, `/ops/livez`, `/ops/readyz`, `/ops/api/...` | the operations page and API of `protean::http` (no authentication here: see docs/operations-http.md) |
//!
//! A command's path is its stable type name (`Command::TYPE_NAME`). A command that
//! commits answers **201 Created** with a `Location` when it created its aggregate
//! (the aggregate's first version), **200 OK** otherwise, with the body
//! `{"command_id", "reply", "committed": [{"aggregate", "id", "version", "location"}],
//! "events": [type names], "failed_reactions": [..]}`. The command is committed even
//! when a reaction to its events failed: the failure is listed, and kept by the domain
//! for `Domain::retry_failed`.
//!
//! Every refusal has the body `{"error": code, "message": text, "fields": [{"path",
//! "message"}]}` (`fields` only for `validation`):
//!
//! | refusal | status | `error` |
//! |---|---|---|
//! | invalid fields or a broken invariant (`DomainError::Validation`), every path listed | 422 | `validation` |
//! | a business rule (`DomainError::Rule`: "order … was already placed") | 409 | `rule` |
//! | an unknown id (`DomainError::NotFound`, or a `GET` that finds nothing) | 404 | `not_found` |
//! | a version conflict still there after the retries (`ProcessError::Conflict`) | 409 | `conflict` |
//! | a body that is not the command's JSON (axum's `Json` extractor) | 400 (syntax), 422 (shape), 415 (no JSON content type) | `malformed_request` |
//! | an unknown route or command | 404 | `not_found` |
//! | the store failed, or anything else the client cannot fix | 500 | `internal` |
//!
//! A broken rule is 409 rather than 422 because the rules of this domain refuse a
//! request for the state the aggregate is in ("only draft orders can be placed", "order
//! … was already placed"), not for its shape: 422 says "fix the request", 409 "the
//! request is fine, but not now".

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use protean::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};

use crate::model::{CustomerLoyalty, Inventory, Order, PlaceOrder, Restock};

// The paths outside `protean::prelude`, in one place.
pub use protean::store::{SqliteStore, Store};

/// The e-commerce domain of `model` on `store`.
pub fn domain(store: impl Store) -> Result<Domain, Box<dyn std::error::Error + Send + Sync>> {
    let model = concat!(env!("CARGO_CRATE_NAME"), "::model");
    Ok(Domain::builder().module(model).store(store).build()?)
}

/// The shop's routes over `domain`.
pub fn router(domain: Domain) -> Router {
    Routes::default()
        .command::<PlaceOrder>()
        .command::<Restock>()
        .aggregate::<Order>("/orders")
        .aggregate::<Inventory>("/inventory")
        .aggregate::<CustomerLoyalty>("/loyalty")
        .into_router(domain.clone())
        .nest("/ops", protean::http::ops_router(domain))
}

/// What every handler shares: the domain, and where each aggregate is read.
struct Shop {
    domain: Domain,
    /// Aggregate name (`"Order"`) → the collection it is read from (`"/orders"`).
    collections: HashMap<&'static str, &'static str>,
}

/// The router being built, with the collections its `GET` routes serve.
#[derive(Default)]
struct Routes {
    router: Router<Arc<Shop>>,
    collections: HashMap<&'static str, &'static str>,
}

impl Routes {
    /// `POST /commands/{C::TYPE_NAME}` processes a `C`.
    fn command<C>(mut self) -> Self
    where
        C: Command,
        C::Reply: Serialize,
    {
        self.router = self.router.route(&format!("/commands/{}", C::TYPE_NAME), post(process::<C>));
        self
    }

    /// `GET {collection}/{id}` reads an `A`.
    fn aggregate<A: Aggregate>(mut self, collection: &'static str) -> Self {
        self.router = self.router.route(&format!("{collection}/{{id}}"), get(read::<A>));
        self.collections.insert(A::NAME, collection);
        self
    }

    /// The routes over `domain`, with a JSON 404 for everything else.
    fn into_router(self, domain: Domain) -> Router {
        let shop = Shop { domain, collections: self.collections };
        self.router.fallback(unknown_route).with_state(Arc::new(shop))
    }
}

/// Processes the command in the body and answers what it committed.
async fn process<C>(State(shop): State<Arc<Shop>>, body: Result<Json<C>, JsonRejection>) -> Result<Response, AppError>
where
    C: Command,
    C::Reply: Serialize,
{
    let Json(command) = body?;
    let processed = shop.domain.process(command).await?;
    let committed: Vec<_> = processed
        .committed
        .iter()
        .map(|c| {
            (c, shop.collections.get(&*c.stream.aggregate).map(|path| format!("{path}/{}", segment(&c.stream.id))))
        })
        .collect();
    // The command created its aggregate when it wrote the first version of it.
    let location = committed.first().filter(|(c, _)| c.version == 1).and_then(|(_, location)| location.clone());
    let body = json!({
        "command_id": processed.command_id,
        "reply": processed.reply,
        "committed": committed.iter().map(|(c, location)| json!({
            "aggregate": c.stream.aggregate, "id": c.stream.id, "version": c.version, "location": location,
        })).collect::<Vec<_>>(),
        "events": processed.event_types(),
        "failed_reactions": processed.failures.iter().map(ToString::to_string).collect::<Vec<_>>(),
    });
    Ok(match location {
        Some(location) => (StatusCode::CREATED, [(header::LOCATION, location)], Json(body)).into_response(),
        None => (StatusCode::OK, Json(body)).into_response(),
    })
}

/// `text` as one path segment: every byte but the unreserved ones percent-encoded, so an
/// identity with a `/`, a `?` or a space makes a working (and valid) `Location`.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The aggregate with the identity in the path, or 404.
async fn read<A: Aggregate>(State(shop): State<Arc<Shop>>, Path(id): Path<String>) -> Result<Json<A>, AppError> {
    let not_found = || ProcessError::Rejected {
        type_name: A::NAME,
        error: DomainError::NotFound { kind: A::NAME, id: id.clone() },
    };
    // Text that cannot be an identity (blank, padded, too long) names nothing stored.
    let identity = Identifier::<A>::parse(&id).map_err(|_| not_found())?;
    Ok(Json(shop.domain.get(&identity).await?.ok_or_else(not_found)?))
}

/// A JSON 404 naming the method and path nothing is served at.
async fn unknown_route(method: Method, uri: Uri) -> AppError {
    AppError::UnknownRoute(format!("no route for {method} {}", uri.path()))
}

/// Why a request was refused; its [`IntoResponse`] is the status-code mapping of the
/// module documentation.
#[derive(Debug)]
pub enum AppError {
    /// The domain refused or failed.
    Process(ProcessError),
    /// The body is not the command's JSON.
    Body(JsonRejection),
    /// Nothing is served at this method and path.
    UnknownRoute(String),
}

impl From<ProcessError> for AppError {
    fn from(error: ProcessError) -> Self {
        AppError::Process(error)
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        AppError::Body(rejection)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            AppError::Body(rejection) => (rejection.status(), "malformed_request", rejection.body_text()),
            AppError::UnknownRoute(message) => (StatusCode::NOT_FOUND, "not_found", message.clone()),
            AppError::Process(error @ ProcessError::Conflict(_)) => {
                (StatusCode::CONFLICT, "conflict", format!("{error}, on every retry: try again"))
            }
            AppError::Process(error) => match error.rejection() {
                Some(DomainError::Validation(invalid)) => {
                    let fields: Vec<Value> = invalid
                        .fields()
                        .iter()
                        .flat_map(|f| f.messages.iter().map(|m| json!({"path": f.path, "message": m})))
                        .collect();
                    let body = json!({"error": "validation", "message": invalid.to_string(), "fields": fields});
                    return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
                }
                Some(rule @ DomainError::Rule(_)) => (StatusCode::CONFLICT, "rule", rule.to_string()),
                Some(missing @ DomainError::NotFound { .. }) => {
                    (StatusCode::NOT_FOUND, "not_found", missing.to_string())
                }
                // The store, a missing handler, reactions: nothing the client can fix,
                // and nothing of the server's insides to show it.
                _ => {
                    eprintln!("internal error: {error}");
                    (StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server failed; it is logged".to_string())
                }
            },
        };
        (status, Json(json!({"error": code, "message": message}))).into_response()
    }
}
