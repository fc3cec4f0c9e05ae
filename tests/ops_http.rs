//! The operations router (`protean::http`, feature `http`) over real HTTP on loopback,
//! on every store the build has: readiness follows the delivery lag bound both ways; a
//! dead letter listed, shown and redelivered over HTTP is delivered once; the read-only
//! router has no mutating route; unknown ids and bad input get JSON errors; a rebuild
//! started over HTTP reports its progress and switches.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use protean::forward_ports;
use protean::http::{ops_router, OpsRouter};
use protean::prelude::*;
use protean::runtime::{DeliveryMode, RetryPolicy, WorkerConfig};
use protean::store::ports::BoxFuture;
use protean::store::{
    Batch, Commit, OffsetDateTime, Outbox, OutboxStatus, Records, Scheduled, Store, StoreError, StreamId,
};
use reqwest::StatusCode;
use serde_json::Value;

#[path = "support/books.rs"]
#[allow(dead_code)]
mod books;
#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "support/relay.rs"]
#[allow(dead_code)]
mod relay;

use books::accounts::{Account, Charge};

/// A projection whose projector waits while `HOLD` is set: a rebuild caught mid-batch.
pub mod slow {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use protean::prelude::*;

    /// While set, the projector waits before applying an event.
    pub static HOLD: AtomicBool = AtomicBool::new(false);
    /// Set once the projector waited on `HOLD`.
    pub static HELD: AtomicBool = AtomicBool::new(false);

    #[aggregate]
    pub struct Tally {
        pub count: u32,
    }

    #[command(part_of = Tally)]
    pub struct Count {
        pub id: Identifier<Tally>,
    }

    #[event(part_of = Tally)]
    pub struct Counted {
        pub id: Identifier<Tally>,
        pub count: u32,
    }

    pub struct Tallies;

    #[handler(part_of = Tally)]
    impl Tallies {
        async fn count(ctx: &mut Context<Tally>, command: Count) -> Result<(), DomainError> {
            let id = command.id.clone();
            let mut tally = ctx.load_or_add(&id, || Ok(Tally::builder().id(id.clone()).count(0u32).build()?)).await?;
            tally.count += 1;
            let count = tally.count;
            tally.raise(Counted { id: command.id, count });
            Ok(())
        }
    }

    #[projection]
    pub struct TallyView {
        #[key]
        pub id: Identifier<Tally>,
        pub count: u32,
    }

    pub struct TallyViews;

    #[projector(projection = TallyView)]
    impl TallyViews {
        async fn counted(rows: &mut Rows<TallyView>, event: &Counted) -> Result<(), DomainError> {
            while HOLD.load(Ordering::SeqCst) {
                HELD.store(true, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            rows.put(TallyView { id: event.id.clone(), count: event.count }).await
        }
    }
}
use harness::StoreCase;
use relay::*;

const AUDIT: &str = "Auditing::audit";

/// A router served on 127.0.0.1 (a free port), and a client for it.
struct Served {
    base: String,
    client: reqwest::Client,
}

impl Served {
    async fn start(router: axum::Router) -> Served {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Served { base, client: reqwest::Client::new() }
    }

    /// `method path`: the status and the body, as JSON when it is JSON.
    async fn call(&self, method: reqwest::Method, path: &str) -> (StatusCode, Value) {
        let response = self.client.request(method, format!("{}{path}", self.base)).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path).await
    }

    async fn post(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path).await
    }
}

/// The relay model on `store`, delivering in the background (no workers unless started).
fn relay_domain(store: Arc<dyn Store>) -> Domain {
    let policy = RetryPolicy::default().max_attempts(2).initial_backoff(Duration::from_millis(1));
    Domain::builder()
        .module(module_path!().to_string() + "::relay")
        .shared_store(store)
        .delivery(DeliveryMode::Background)
        .retry_policy(policy)
        .build()
        .expect("the relay model is valid")
}

/// Deposits into a new wallet whose auditor always fails, and runs workers until the
/// audit is dead-lettered.
async fn dead_letter(domain: &Domain) -> Identifier<Wallet> {
    let wallet = Identifier::generate();
    fail_audits(&wallet, u32::MAX);
    let before = domain.dead_letters().await.unwrap().len();
    let _committed = domain.process(Deposit { id: wallet.clone(), amount: 1 }).await.unwrap();
    let handle = domain.workers(WorkerConfig::default()).start().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while domain.dead_letters().await.unwrap().len() == before {
        assert!(tokio::time::Instant::now() < deadline, "no dead letter in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    handle.shutdown().await;
    wallet
}

async fn audited(domain: &Domain, wallet: &Identifier<Wallet>) -> Option<Vec<u64>> {
    domain.get(&wallet.cast::<Audit>()).await.unwrap().map(|a| a.numbers)
}

async fn readiness_follows_the_lag_bound(store: Arc<dyn Store>) {
    let domain = relay_domain(store);
    let ops = OpsRouter::new(domain.clone()).max_lag(Duration::from_millis(300)).into_router();
    let served = Served::start(ops).await;

    assert_eq!(served.get("/livez").await, (StatusCode::OK, Value::String("ok".into())));
    let (status, body) = served.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ready"], true);

    // Committed, not delivered (no workers): the lag grows past the bound.
    let _committed = domain.process(Deposit { id: Identifier::generate(), amount: 1 }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) = served.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["ready"], false);
    assert!(body["reason"].as_str().unwrap().contains("delivery lag"), "{body}");
    assert!(body["lag_seconds"].as_f64().unwrap() > 0.3, "{body}");

    // Delivered: ready again.
    let _delivered = domain.deliver_pending().await.unwrap();
    let (status, body) = served.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["lag_seconds"], 0.0);
}

/// A store whose outbox status answers, fails, or never answers, as `state` says
/// (`UP`, `FAILING`, `HANGING`): a database that went away, or hangs.
struct Unsteady {
    inner: Arc<dyn Store>,
    state: Arc<AtomicU8>,
}

const UP: u8 = 0;
const FAILING: u8 = 1;
const HANGING: u8 = 2;

impl Outbox for Unsteady {
    fn outbox_status(&self) -> BoxFuture<'_, Result<OutboxStatus, StoreError>> {
        match self.state.load(Ordering::SeqCst) {
            FAILING => Box::pin(std::future::ready(Err(StoreError::Unsupported("connection refused".into())))),
            HANGING => Box::pin(std::future::pending()),
            _ => self.inner.outbox_status(),
        }
    }

    forward_ports!(self.inner: claim_undelivered, renew_claims, release_claims, mark_delivered, outbox_signal,
        beat_worker, worker_beats);
}

forward_ports!(impl for Unsteady, to inner: Records, Deliveries, Projections, Schedule);

async fn readiness_fails_while_the_store_fails_or_hangs(store: Arc<dyn Store>) {
    let state = Arc::new(AtomicU8::new(UP));
    let domain = relay_domain(Arc::new(Unsteady { inner: store, state: Arc::clone(&state) }));
    let ops = OpsRouter::new(domain.clone()).store_timeout(Duration::from_millis(200));
    let full = Served::start(ops.clone().into_router()).await;
    let probes = Served::start(ops.probes()).await;
    for served in [&full, &probes] {
        assert_eq!(served.get("/readyz").await.0, StatusCode::OK);
    }
    // The probes' router has the probes only.
    assert_eq!(probes.get("/api/status").await.0, StatusCode::NOT_FOUND);
    assert_eq!(probes.get("/livez").await.0, StatusCode::OK);

    state.store(FAILING, Ordering::SeqCst);
    for served in [&full, &probes] {
        let (status, body) = served.get("/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body["reason"].as_str().unwrap().contains("unreachable: connection refused"), "{body}");
        // Alive all the same: the process answers.
        assert_eq!(served.get("/livez").await.0, StatusCode::OK);
    }
    let (status, body) = full.get("/api/status").await;
    assert_eq!((status, &body["error"]), (StatusCode::INTERNAL_SERVER_ERROR, &"internal".into()), "{body}");

    state.store(HANGING, Ordering::SeqCst);
    let (status, body) = full.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["reason"].as_str().unwrap().contains("did not answer within 0.2 s"), "{body}");

    state.store(UP, Ordering::SeqCst);
    assert_eq!(full.get("/readyz").await.0, StatusCode::OK);
}

async fn a_dead_letter_redelivered_over_http_is_delivered_once(store: Arc<dyn Store>) {
    let domain = relay_domain(store);
    let first = dead_letter(&domain).await;
    let second = dead_letter(&domain).await;
    let served = Served::start(ops_router(domain.clone())).await;

    let (status, body) = served.get("/api/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["delivery"]["dead"], 2, "{body}");
    let audit = body["delivery"]["handlers"].as_array().unwrap().iter().find(|h| h["handler"] == AUDIT).unwrap();
    assert_eq!(audit["dead"], 2, "{body}");

    // Listed with filters, and paged.
    let (status, body) = served.get("/api/dead-letters").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let letters = body["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 2, "{body}");
    assert_eq!((&letters[0]["handler"], &letters[0]["event_type"]), (&AUDIT.into(), &"Wallet.Deposited".into()));
    assert_eq!(body["next_offset"], Value::Null);
    let stream = letters[0]["stream"].as_str().unwrap().to_owned();
    assert_eq!(stream, format!("Wallet/{first}"));
    let event_id = letters[0]["event_id"].as_str().unwrap().to_owned();

    let (_, page) = served.get("/api/dead-letters?limit=1").await;
    assert_eq!((page["dead_letters"].as_array().unwrap().len(), &page["next_offset"]), (1, &1.into()), "{page}");
    let (_, page) = served.get("/api/dead-letters?limit=1&offset=1").await;
    assert_eq!(page["dead_letters"][0]["stream"], format!("Wallet/{second}"), "{page}");
    assert_eq!(page["next_offset"], Value::Null, "{page}");
    let (_, page) = served.get(&format!("/api/dead-letters?stream={stream}")).await;
    assert_eq!(page["dead_letters"].as_array().unwrap().len(), 1, "{page}");
    let (_, page) = served.get("/api/dead-letters?handler=Bookkeeping::book").await;
    assert_eq!(page["dead_letters"], Value::Array(vec![]), "{page}");
    let (_, page) = served.get("/api/dead-letters?event_type=Wallet.Deposited&limit=5").await;
    assert_eq!(page["dead_letters"].as_array().unwrap().len(), 2, "{page}");
    let (_, page) = served.get("/api/dead-letters?event_type=Wallet.Withdrawn").await;
    assert_eq!(page["dead_letters"], Value::Array(vec![]), "{page}");

    let letter_path = format!("/api/dead-letters/{AUDIT}/{event_id}");
    let (status, letter) = served.get(&letter_path).await;
    assert_eq!(status, StatusCode::OK, "{letter}");
    assert_eq!((&letter["attempts"], &letter["status"]), (&2.into(), &"dead".into()), "{letter}");

    // Still failing: redelivered, failed again, and said so.
    let (status, outcome) = served.post(&format!("{letter_path}/redeliver")).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["failed"][0]["attempts"], 3, "{outcome}");
    assert_eq!(audited(&domain, &first).await, None);

    // Fixed. A browser's request from another site is refused, and changes nothing.
    fail_audits(&first, 0);
    for site in ["cross-site", "same-site"] {
        let url = format!("{}{letter_path}/redeliver", served.base);
        let response = served.client.post(url).header("sec-fetch-site", site).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "forbidden", "{body}");
    }
    assert_eq!(audited(&domain, &first).await, None);
    // Delivered once, and gone.
    let (status, outcome) = served.post(&format!("{letter_path}/redeliver")).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["delivered"][0]["event_id"], event_id.as_str(), "{outcome}");
    assert_eq!(outcome["failed"], Value::Array(vec![]));
    let (status, again) = served.post(&format!("{letter_path}/redeliver")).await;
    assert_eq!((status, &again["error"]), (StatusCode::NOT_FOUND, &"not_found".into()), "{again}");
    assert_eq!(audited(&domain, &first).await, Some(vec![1]));

    // Discarded: never delivered, and gone.
    let (_, list) = served.get("/api/dead-letters").await;
    let other = list["dead_letters"][0]["event_id"].as_str().unwrap().to_owned();
    let (status, outcome) = served.post(&format!("/api/dead-letters/{AUDIT}/{other}/discard")).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    let (_, list) = served.get("/api/dead-letters").await;
    assert_eq!(list["dead_letters"], Value::Array(vec![]), "{list}");
    assert_eq!(audited(&domain, &second).await, None);
    let (_, body) = served.get("/api/status").await;
    assert_eq!(body["delivery"]["dead"], 0, "{body}");
}

async fn the_read_only_router_has_no_mutating_route(store: Arc<dyn Store>) {
    let domain = relay_domain(store);
    let wallet = dead_letter(&domain).await;
    let event_id = domain.dead_letters().await.unwrap()[0].event.id;
    let served = Served::start(OpsRouter::new(domain.clone()).read_only().into_router()).await;

    let letter = format!("/api/dead-letters/{AUDIT}/{event_id}");
    for path in [format!("{letter}/redeliver"), format!("{letter}/discard"), "/api/projections/X/rebuild".into()] {
        let (status, body) = served.post(&path).await;
        assert!(
            status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::NOT_FOUND,
            "POST {path}: {status} {body}"
        );
    }
    let (status, body) = served.call(reqwest::Method::DELETE, &letter).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    // Nothing changed; reading still works, and the page shows no button.
    fail_audits(&wallet, 0);
    assert_eq!(audited(&domain, &wallet).await, None);
    assert_eq!(served.get(&letter).await.0, StatusCode::OK);
    let (status, page) = served.get("/").await;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_str().unwrap();
    assert!(page.contains("data-event-id") && !page.contains("<button"), "{page}");
}

async fn unknown_ids_and_bad_input_get_json_errors(store: Arc<dyn Store>) {
    let domain = relay_domain(store);
    let served = Served::start(ops_router(domain)).await;
    let unknown = Uuid::new_v4();
    let not_found = [
        (reqwest::Method::GET, format!("/api/dead-letters/{AUDIT}/{unknown}")),
        (reqwest::Method::POST, format!("/api/dead-letters/{AUDIT}/{unknown}/redeliver")),
        (reqwest::Method::POST, format!("/api/dead-letters/{AUDIT}/{unknown}/discard")),
        (reqwest::Method::POST, "/api/projections/NoSuchView/rebuild".into()),
        (reqwest::Method::GET, "/api/projections/NoSuchView/rebuild".into()),
        (reqwest::Method::GET, "/no/such/route".into()),
    ];
    for (method, path) in not_found {
        let (status, body) = served.call(method.clone(), &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(body["error"], "not_found", "{method} {path}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
    let bad = [
        (reqwest::Method::GET, format!("/api/dead-letters/{AUDIT}/not-a-uuid")),
        (reqwest::Method::POST, format!("/api/dead-letters/{AUDIT}/not-a-uuid/redeliver")),
        (reqwest::Method::GET, "/api/dead-letters?limit=0".into()),
        (reqwest::Method::GET, "/api/dead-letters?limit=many".into()),
        (reqwest::Method::GET, "/api/dead-letters?offset=9999&limit=50".into()),
        (reqwest::Method::GET, "/api/dead-letters?stream=no-slash".into()),
    ];
    for (method, path) in bad {
        let (status, body) = served.call(method.clone(), &path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {body}");
        assert_eq!(body["error"], "bad_request", "{method} {path}: {body}");
    }
}

async fn a_rebuild_started_over_http_reports_progress_and_switches(store: Arc<dyn Store>) {
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::books")
        .shared_store(store)
        .build()
        .expect("the books model is valid");
    for n in 0..5 {
        let id = Identifier::<Account>::generate();
        let _charged = domain.process(Charge { id, owner: format!("owner-{}", n % 2), cents: 100 }).await.unwrap();
    }
    let served = Served::start(ops_router(domain.clone())).await;
    let (status, list) = served.get("/api/projections").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let view = list.as_array().unwrap().iter().find(|p| p["projection"] == "AccountView").expect("listed");
    let generation = view["generation"].as_u64().unwrap();
    assert_eq!(view["rebuild"], Value::Null);
    let (status, _) = served.get("/api/projections/AccountView/rebuild").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A dry run says what a rebuild would do, and starts nothing.
    let (status, plan) = served.post("/api/projections/AccountView/rebuild?dry_run=true").await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(
        (&plan["events"], &plan["busy"], &plan["from_position"]),
        (&5.into(), &false.into(), &0.into()),
        "{plan}"
    );
    let (_, plan) = served.post("/api/projections/AccountView/rebuild?dry_run=true&from_position=3").await;
    assert_eq!((&plan["events"], &plan["from_position"]), (&2.into(), &3.into()), "{plan}");
    assert_eq!(served.get("/api/projections/AccountView/rebuild").await.0, StatusCode::NOT_FOUND);
    let (status, body) = served.post("/api/projections/AccountView/rebuild?from_position=x").await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"bad_request".into()), "{body}");
    let (status, _) = served.post("/api/projections/AccountView/rebuild/cancel").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing to cancel");

    let (status, started) = served.post("/api/projections/AccountView/rebuild").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let progress = loop {
        let (status, progress) = served.get("/api/projections/AccountView/rebuild").await;
        assert_eq!(status, StatusCode::OK, "{progress}");
        if progress["state"] != "running" {
            break progress;
        }
        assert!(tokio::time::Instant::now() < deadline, "not rebuilt in time: {progress}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(progress["state"], "switched", "{progress}");
    assert_eq!((&progress["done"], &progress["total"]), (&5.into(), &5.into()), "{progress}");
    let (_, list) = served.get("/api/projections").await;
    let view = list.as_array().unwrap().iter().find(|p| p["projection"] == "AccountView").unwrap();
    assert!(view["generation"].as_u64().unwrap() > generation, "{view}");
    assert_eq!(view["rebuild"]["state"], "switched", "{view}");
    let rows = domain.query::<books::views::AccountView>().fetch().await.unwrap();
    assert_eq!(rows.len(), 5);
}

/// A command process manager `Fulfilment`'s instance `key` scheduled, due `hours` from now.
fn deadline(key: &str, hours: i64) -> Scheduled {
    let id = Uuid::now_v7();
    Scheduled {
        id,
        owner: "Fulfilment".into(),
        owner_key: key.to_owned(),
        name: Some("<timeout>".to_owned()),
        due_at: (OffsetDateTime::now_utc() + time_hours(hours)).replace_nanosecond(0).unwrap(),
        type_name: "Order.CancelOrder".into(),
        payload: Arc::from(format!(r#"{{"id":"{key}"}}"#)),
        correlation_id: Uuid::now_v7(),
        causation_id: id,
    }
}

fn time_hours(hours: i64) -> Duration {
    Duration::from_secs(hours.unsigned_abs() * 3600)
}

async fn scheduled_commands_are_listed_and_cancelled(store: Arc<dyn Store>) {
    let (later, sooner) = (deadline("k1", 48), deadline("k2", 24));
    let flow = Commit {
        stream: StreamId::new("Fulfilment", "k1"),
        expected_version: 0,
        advance: 1,
        state: Some(Arc::from("{}")),
        events: vec![],
        snapshot: None,
    };
    let batch = Batch { commits: vec![flow], schedule: vec![later.clone(), sooner.clone()], ..Batch::default() };
    store.commit(batch).await.unwrap();
    let domain = relay_domain(store);
    let served = Served::start(ops_router(domain.clone())).await;

    let (status, body) = served.get("/api/scheduled").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed = body["scheduled"].as_array().unwrap();
    let ids: Vec<&str> = listed.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [sooner.id.to_string(), later.id.to_string()], "earliest due first: {body}");
    assert_eq!((&listed[0]["type_name"], &listed[0]["payload"]["id"]), (&"Order.CancelOrder".into(), &"k2".into()));
    let (_, one) = served.get("/api/scheduled?limit=1").await;
    assert_eq!(one["scheduled"].as_array().unwrap().len(), 1, "{one}");
    let (_, page) = served.get("/").await;
    let page = page.as_str().unwrap();
    assert!(page.contains(&format!("data-id=\"{}\"", later.id)) && page.contains("&lt;timeout&gt;"), "{page}");
    assert!(!page.contains("<timeout>"), "the deadline's name is escaped");

    let cancel = format!("/api/scheduled/{}/cancel", sooner.id);
    let (status, body) = served.post(&cancel).await;
    assert_eq!((status, &body["cancelled"]), (StatusCode::OK, &sooner.id.to_string().into()), "{body}");
    let (status, body) = served.post(&cancel).await;
    assert_eq!((status, &body["error"]), (StatusCode::NOT_FOUND, &"not_found".into()), "{body}");
    assert_eq!(domain.scheduled_commands(10).await.unwrap(), std::slice::from_ref(&later));
    let (status, body) = served.post("/api/scheduled/not-a-uuid/cancel").await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &"bad_request".into()), "{body}");
    let (status, _) = served.get("/api/scheduled?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let read_only = Served::start(OpsRouter::new(domain.clone()).read_only().into_router()).await;
    let (status, _) = read_only.post(&format!("/api/scheduled/{}/cancel", later.id)).await;
    assert!(status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED, "{status}");
    assert_eq!(domain.scheduled_commands(10).await.unwrap(), [later]);
}

/// On the memory store only: the projector's gate is shared by the whole binary.
async fn a_running_rebuild_is_cancelled_over_http() {
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::slow")
        .store(protean::store::MemoryStore::new())
        .build()
        .expect("the slow model is valid");
    let id = Identifier::<slow::Tally>::generate();
    for _ in 0..3 {
        domain.process(slow::Count { id: id.clone() }).await.unwrap().all_delivered().unwrap();
    }
    let generation = domain.projection_status::<slow::TallyView>().await.unwrap().generation;
    let served = Served::start(ops_router(domain.clone())).await;

    slow::HOLD.store(true, Ordering::SeqCst);
    let (status, started) = served.post("/api/projections/TallyView/rebuild").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !slow::HELD.load(Ordering::SeqCst) {
        assert!(tokio::time::Instant::now() < deadline, "the rebuild did not reach the projector");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Mid-batch: running, and a second start is refused.
    let (_, progress) = served.get("/api/projections/TallyView/rebuild").await;
    assert_eq!(progress["state"], "running", "{progress}");
    let (status, body) = served.post("/api/projections/TallyView/rebuild").await;
    assert_eq!((status, &body["error"]), (StatusCode::CONFLICT, &"conflict".into()), "{body}");
    let (_, page) = served.get("/").await;
    assert!(page.as_str().unwrap().contains("class=\"cancel-rebuild\""), "{page}");

    let (status, body) = served.post("/api/projections/TallyView/rebuild/cancel").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    slow::HOLD.store(false, Ordering::SeqCst);
    let progress = loop {
        let (_, progress) = served.get("/api/projections/TallyView/rebuild").await;
        if progress["state"] != "running" {
            break progress;
        }
        assert!(tokio::time::Instant::now() < deadline, "not cancelled in time: {progress}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!((&progress["state"], &progress["done"]), (&"cancelled".into(), &3.into()), "{progress}");
    // The old copy still serves.
    let status = domain.projection_status::<slow::TallyView>().await.unwrap();
    assert_eq!(status.generation, generation);
    let view = domain.projection::<slow::TallyView>(&id).await.unwrap().unwrap();
    assert_eq!(view.count, 3);
}

fn cases() -> Vec<(&'static str, StoreCase)> {
    vec![
        ("readiness_follows_the_lag_bound", |s| Box::pin(readiness_follows_the_lag_bound(s))),
        ("a_dead_letter_redelivered_over_http_is_delivered_once", |s| {
            Box::pin(a_dead_letter_redelivered_over_http_is_delivered_once(s))
        }),
        ("readiness_fails_while_the_store_fails_or_hangs", |s| {
            Box::pin(readiness_fails_while_the_store_fails_or_hangs(s))
        }),
        ("scheduled_commands_are_listed_and_cancelled", |s| Box::pin(scheduled_commands_are_listed_and_cancelled(s))),
        ("the_read_only_router_has_no_mutating_route", |s| Box::pin(the_read_only_router_has_no_mutating_route(s))),
        ("unknown_ids_and_bad_input_get_json_errors", |s| Box::pin(unknown_ids_and_bad_input_get_json_errors(s))),
        ("a_rebuild_started_over_http_reports_progress_and_switches", |s| {
            Box::pin(a_rebuild_started_over_http_reports_progress_and_switches(s))
        }),
    ]
}

fn main() -> ExitCode {
    // The cases dead-letter deliveries on purpose: keep the failures off stderr.
    tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default()).unwrap();
    let mut trials = harness::every_store("ops-http", cases, 8);
    trials.push(harness::test(
        "memory::a_running_rebuild_is_cancelled_over_http",
        a_running_rebuild_is_cancelled_over_http,
    ));
    harness::run(trials)
}
