//! `examples/http_shop` over real HTTP: each test serves the example's own router on
//! 127.0.0.1 (a free port), on SQLite in a fresh file, and calls it with reqwest.

#[path = "../examples/ecommerce/model.rs"]
pub mod model;

#[path = "../examples/http_shop/app.rs"]
pub mod app;

#[path = "support/contended.rs"]
mod contended;

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use protean::prelude::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

use app::{SqliteStore, Store};
use contended::Contended;

/// The example served on 127.0.0.1, and a client for it. The database file goes when
/// it is dropped.
struct Shop {
    base: String,
    client: reqwest::Client,
    database: PathBuf,
}

impl Shop {
    /// The shop on a new SQLite file.
    async fn start() -> Shop {
        let database = temp_database();
        Shop::serve(SqliteStore::open(&database).unwrap(), database).await
    }

    async fn serve(store: impl Store, database: PathBuf) -> Shop {
        let domain = app::domain(store).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app::router(domain)).await });
        Shop { base, client: reqwest::Client::new(), database }
    }

    /// `POST /commands/{command}` with a JSON body: the status, the `Location`, and the body.
    async fn command(&self, command: &str, body: Value) -> (StatusCode, Option<String>, Value) {
        let response = self.client.post(format!("{}/commands/{command}", self.base)).json(&body).send().await.unwrap();
        let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
        (response.status(), location, response.json().await.unwrap())
    }

    /// `GET path`: the status and the JSON body.
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    /// A `POST` of `body` as it is, with `content_type` if given.
    async fn post_raw(&self, path: &str, content_type: Option<&str>, body: &'static str) -> (StatusCode, Value) {
        let mut request = self.client.post(format!("{}{path}", self.base)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.database.display()));
        }
    }
}

fn temp_database() -> PathBuf {
    std::env::temp_dir().join(format!("http_shop_test_{}.db", Uuid::new_v4()))
}

fn restock(sku: &str, quantity: i64) -> Value {
    json!({"sku": sku, "quantity": quantity})
}

fn place_order(order_id: &str, sku: &str, quantity: i64) -> Value {
    json!({
        "order_id": order_id,
        "customer_id": "ada",
        "customer_name": "Ada",
        "customer_email": "ada@example.com",
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": {"cents": 1250, "currency": "EUR"}}],
    })
}

#[tokio::test]
async fn a_placed_order_is_201_with_its_location_and_reads_back_as_json() {
    let shop = Shop::start().await;
    let (status, location, body) = shop.command("Inventory.Restock", restock("BOOK-1", 5)).await;
    assert_eq!((status, location.as_deref()), (StatusCode::CREATED, Some("/inventory/BOOK-1")), "{body}");
    // A command that changes an aggregate it did not create is 200.
    let (status, location, body) = shop.command("Inventory.Restock", restock("BOOK-1", 1)).await;
    assert_eq!((status, location), (StatusCode::OK, None), "{body}");
    assert_eq!(
        body["committed"],
        json!([{"aggregate": "Inventory", "id": "BOOK-1", "version": 2, "location": "/inventory/BOOK-1"}])
    );

    let (status, location, body) = shop.command("Order.PlaceOrder", place_order("o-1", "BOOK-1", 2)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(location.as_deref(), Some("/orders/o-1"));
    assert_eq!(body["reply"], Value::Null);
    assert_eq!(body["committed"][0]["id"], "o-1");
    assert_eq!(
        body["events"],
        json!(["Order.OrderPlaced", "Inventory.StockReserved", "CustomerLoyalty.LoyaltyPointsAdded"])
    );
    assert_eq!(body["failed_reactions"], json!([]));
    assert!(body["command_id"].as_str().is_some_and(|id| id.parse::<Uuid>().is_ok()), "{body}");

    let (status, order) = shop.get("/orders/o-1").await;
    assert_eq!(status, StatusCode::OK);
    // Its stock reserved, the fulfilment flow confirmed it before the answer too.
    assert_eq!(order["status"], "Confirmed");
    assert_eq!(order["total"], json!({"cents": 2500, "currency": "EUR"}));
    assert_eq!(order["items"][0]["sku"], "BOOK-1");
    assert_eq!(order["items"][0]["quantity"], 2);
    // The reactions ran in their own transactions before the answer.
    assert_eq!(
        shop.get("/inventory/BOOK-1").await,
        (StatusCode::OK, json!({"id": "BOOK-1", "available": 6, "reserved": 2, "waiting": []}))
    );
    assert_eq!(shop.get("/loyalty/ada").await.1["points"], 25);
}

#[tokio::test]
async fn an_identity_with_a_slash_or_a_space_gets_a_location_that_reads_it_back() {
    let shop = Shop::start().await;
    let (status, location, body) = shop.command("Inventory.Restock", restock("BOOK 1/ü?2", 3)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(location.as_deref(), Some("/inventory/BOOK%201%2F%C3%BC%3F2"));
    let (status, stock) = shop.get(&location.unwrap()).await;
    let expected = json!({"id": "BOOK 1/ü?2", "available": 3, "reserved": 0, "waiting": []});
    assert_eq!((status, stock), (StatusCode::OK, expected));
}

#[tokio::test]
async fn a_failed_reaction_is_listed_beside_the_committed_command() {
    let shop = Shop::start().await;
    // No stock of NOPE exists: the order is placed, reserving its stock fails.
    let (status, _, body) = shop.command("Order.PlaceOrder", place_order("o-2", "NOPE", 1)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let failures = body["failed_reactions"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{body}");
    assert!(failures[0].as_str().unwrap().contains("Inventory `NOPE` was not found"), "{body}");
    assert_eq!(shop.get("/orders/o-2").await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_id_is_404() {
    let shop = Shop::start().await;
    let (status, body) = shop.get(&format!("/orders/{}", Uuid::now_v7())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    assert!(body["message"].as_str().unwrap().starts_with("Order `"), "{body}");
    assert_eq!(shop.get("/inventory/PEN-1").await.1["message"], "Inventory `PEN-1` was not found");
    // Text that cannot be an identity names nothing either.
    assert_eq!(shop.get("/loyalty/%20ada").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_invalid_command_is_422_with_every_bad_field_path() {
    let shop = Shop::start().await;
    let command = json!({
        "order_id": "o-3",
        "customer_id": "ada",
        "customer_name": "",
        "customer_email": "a",
        "lines": [
            {"sku": "BOOK-1", "quantity": 1, "unit_price": {"cents": 100, "currency": "EUR"}},
            {"sku": "", "quantity": 0, "unit_price": {"cents": -1, "currency": "EURO"}},
        ],
    });
    let (status, location, body) = shop.command("Order.PlaceOrder", command).await;
    assert_eq!((status, location), (StatusCode::UNPROCESSABLE_ENTITY, None));
    assert_eq!(body["error"], "validation");
    let fields: Vec<(&str, &str)> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        [
            ("customer_name", "must have at least 1 character, has 0"),
            ("customer_email", "must have at least 3 characters, has 1"),
            ("lines[1].sku", "must have at least 1 character, has 0"),
            ("lines[1].quantity", "must be at least 1"),
            ("lines[1].unit_price.cents", "must be at least 0"),
            ("lines[1].unit_price.currency", "must have exactly 3 characters, has 4"),
        ]
    );
    // Nothing was written.
    assert_eq!(shop.get("/orders/o-3").await.0, StatusCode::NOT_FOUND);

    let (status, _, body) = shop.command("Inventory.Restock", restock("BOOK-1", 0)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["fields"], json!([{"path": "quantity", "message": "must be at least 1"}]));
}

#[tokio::test]
async fn a_broken_business_rule_is_409() {
    let shop = Shop::start().await;
    shop.command("Inventory.Restock", restock("BOOK-1", 5)).await;
    assert_eq!(shop.command("Order.PlaceOrder", place_order("o-4", "BOOK-1", 1)).await.0, StatusCode::CREATED);

    let (status, _, body) = shop.command("Order.PlaceOrder", place_order("o-4", "BOOK-1", 3)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body, json!({"error": "rule", "message": "order o-4 was already placed"}));
    // The order is as the first command left it.
    assert_eq!(shop.get("/orders/o-4").await.1["items"][0]["quantity"], 1);
}

#[tokio::test]
async fn a_body_that_is_not_the_commands_json_is_refused_by_the_extractor() {
    let shop = Shop::start().await;
    let path = "/commands/Order.PlaceOrder";
    let (status, body) = shop.post_raw(path, Some("application/json"), r#"{"order_id": "#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "malformed_request");

    let (status, body) = shop.post_raw(path, Some("application/json"), r#"{"order_id": 3}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], "malformed_request");
    assert!(body["message"].as_str().unwrap().contains("order_id: invalid type"), "{body}");

    // An identity that cannot be one is refused while the JSON is read.
    let (status, body) =
        shop.post_raw("/commands/Inventory.Restock", Some("application/json"), r#"{"sku": "", "quantity": 1}"#).await;
    assert_eq!((status, &body["error"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("malformed_request")), "{body}");

    let (status, body) = shop.post_raw(path, None, "{}").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["error"], "malformed_request");
}

#[tokio::test]
async fn an_unknown_route_or_command_is_404() {
    let shop = Shop::start().await;
    let (status, _, body) = shop.command("Order.CancelOrder", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"error": "not_found", "message": "no route for POST /commands/Order.CancelOrder"}));
    let (status, body) = shop.get("/customers/ada").await;
    assert_eq!((status, &body["error"]), (StatusCode::NOT_FOUND, &json!("not_found")));
}

#[tokio::test]
async fn the_operations_router_is_mounted_under_ops() {
    let shop = Shop::start().await;
    let (status, body) = shop.get("/ops/readyz").await;
    assert_eq!((status, &body["ready"]), (StatusCode::OK, &json!(true)), "{body}");
    let (status, body) = shop.get("/ops/api/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["delivery"]["handlers"].as_array().is_some_and(|h| !h.is_empty()), "{body}");
}

#[tokio::test]
async fn a_version_conflict_that_outlasts_the_retries_is_409() {
    let database = temp_database();
    // Every commit of an existing `Inventory` meets a conflict; creating one does not.
    let store = Contended::new(SqliteStore::open(&database).unwrap(), "Inventory", u32::MAX);
    let tally = store.tally();
    let shop = Shop::serve(store, database).await;
    assert_eq!(shop.command("Inventory.Restock", restock("BOOK-1", 5)).await.0, StatusCode::CREATED);

    let (status, _, body) = shop.command("Inventory.Restock", restock("BOOK-1", 1)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "conflict");
    assert!(body["message"].as_str().unwrap().starts_with("version conflict on Inventory/BOOK-1"), "{body}");
    assert_eq!(tally.refused.load(Ordering::SeqCst), 4, "the first attempt and the 3 retries");
    assert_eq!(shop.get("/inventory/BOOK-1").await.1["available"], 5, "nothing written");
}
