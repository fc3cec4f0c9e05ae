//! The operations commands (`protean::cli`, feature `cli`), mounted in a binary's own
//! clap command line, against a domain with a dead letter: status, list, show, an
//! unknown id, redelivery that delivers once; projections' status, a stream's events;
//! and clap's usage error for bad arguments.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use protean::cli::{Exit, Ops};
use protean::prelude::*;
use protean::runtime::{DeliveryMode, RetryPolicy, WorkerConfig};
use protean::store::{MemoryStore, Store};

#[path = "support/books.rs"]
#[allow(dead_code)]
mod books;
#[path = "support/relay.rs"]
#[allow(dead_code)]
mod relay;
#[path = "support/shop.rs"]
#[allow(dead_code)]
mod shop;

use books::accounts::{Account, Charge};
use relay::*;

const AUDIT: &str = "Auditing::audit";

/// A service's own command line, with the operations commands under `ops`.
#[derive(Parser)]
enum Service {
    /// Operates the service.
    Ops(Ops),
}

async fn ops(domain: &Domain, args: &[&str]) -> (Exit, String) {
    let Service::Ops(ops) = Service::try_parse_from(["service", "ops"].iter().chain(args)).expect("valid arguments");
    let mut out = Vec::new();
    let exit = ops.run(domain, &mut out).await;
    (exit, String::from_utf8(out).expect("UTF-8 output"))
}

/// A domain whose auditor failed on one wallet's first deposit until it was dead-lettered.
async fn with_a_dead_letter() -> (Domain, Identifier<Wallet>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let policy = RetryPolicy::default().max_attempts(2).initial_backoff(Duration::from_millis(1));
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::relay")
        .shared_store(store)
        .delivery(DeliveryMode::Background)
        .retry_policy(policy)
        .build()
        .expect("the relay model is valid");
    let wallet = Identifier::generate();
    fail_audits(&wallet, u32::MAX);
    let _committed = domain.process(Deposit { id: wallet.clone(), amount: 1 }).await.unwrap();
    let handle = domain.workers(WorkerConfig::default()).start().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while domain.dead_letters().await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no dead letter in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    handle.shutdown().await;
    (domain, wallet)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_shown_and_redelivered_once() {
    let (domain, wallet) = with_a_dead_letter().await;

    let (exit, text) = ops(&domain, &["status"]).await;
    assert_eq!(exit, Exit::Attention, "a dead letter needs attention:\n{text}");
    assert!(text.contains("dead: 1"), "{text}");
    let (_, json) = ops(&domain, &["status", "--json"]).await;
    let status: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(status["dead"], 1, "{json}");
    assert_eq!(status["workers"], serde_json::json!([]), "the workers shut down: {json}");
    assert_eq!(status["scheduled"], serde_json::json!({ "pending": 0, "due": 0 }), "{json}");
    assert!(status["projections"].is_array(), "{json}");
    assert!(text.contains("workers seen alive: 0") && text.contains("scheduled commands: 0 pending, 0 due"), "{text}");

    let (exit, json) = ops(&domain, &["--json", "dead-letters", "list"]).await;
    assert_eq!(exit, Exit::Ok);
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    let letters = list.as_array().unwrap();
    assert_eq!(letters.len(), 1, "{json}");
    assert_eq!(letters[0]["handler"], AUDIT);
    assert_eq!(letters[0]["attempts"], 2);
    let failed_at = letters[0]["last_failed_at"].as_str().unwrap();
    assert!(
        failed_at.len() >= 20 && failed_at.as_bytes()[10] == b'T' && failed_at.ends_with('Z'),
        "an RFC 3339 time: {failed_at}"
    );
    assert_eq!(letters[0], domain.dead_letters().await.unwrap()[0].to_json(), "the same JSON as the API's");
    let event_id = letters[0]["event_id"].as_str().unwrap().to_owned();
    let (_, none) = ops(&domain, &["--json", "dead-letters", "list", "--handler", "Bookkeeping::book"]).await;
    assert_eq!(none.trim(), "[]");

    let (exit, text) = ops(&domain, &["dead-letters", "show", &event_id]).await;
    assert_eq!(exit, Exit::Ok);
    assert!(text.contains("attempts:  2") && text.contains("Wallet.Deposited"), "{text}");
    let (exit, same) = ops(&domain, &["dead-letters", "show", &event_id, "--handler", AUDIT]).await;
    assert_eq!((exit, &same), (Exit::Ok, &text));

    let unknown = Uuid::new_v4().to_string();
    let (exit, text) = ops(&domain, &["dead-letters", "show", &unknown]).await;
    assert_eq!(exit, Exit::NotFound);
    assert_eq!(text.trim(), format!("error: no dead letter for event {unknown}"));
    let (exit, text) = ops(&domain, &["dead-letters", "show", &event_id, "--handler", "Bookkeeping::book"]).await;
    assert_eq!(exit, Exit::NotFound);
    assert!(text.starts_with("error: no dead letter of `Bookkeeping::book`"), "{text}");
    let (_, json) = ops(&domain, &["--json", "dead-letters", "list", "--stream", &format!("Wallet/{wallet}")]).await;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap().as_array().map(Vec::len), Some(1), "{json}");
    let (_, json) = ops(&domain, &["--json", "dead-letters", "list", "--event-type", "Wallet.Withdrawn"]).await;
    assert_eq!(json.trim(), "[]");

    // Still failing: the redelivery fails again, and says so.
    let (exit, json) = ops(&domain, &["--json", "dead-letters", "redeliver", &event_id]).await;
    assert_eq!(exit, Exit::Attention, "{json}");
    let outcome: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(outcome["failed"][0]["attempts"], 3, "{json}");

    // Fixed: delivered once, and gone.
    fail_audits(&wallet, 0);
    let (exit, text) = ops(&domain, &["dead-letters", "replay", &event_id, "--handler", AUDIT]).await;
    assert_eq!(exit, Exit::Ok, "{text}");
    assert_eq!(text.trim(), format!("delivered: {AUDIT} {event_id}"));
    let (exit, _) = ops(&domain, &["dead-letters", "replay", &event_id]).await;
    assert_eq!(exit, Exit::NotFound);
    let (exit, text) = ops(&domain, &["status"]).await;
    assert_eq!(exit, Exit::Ok, "{text}");
}

#[test]
fn bad_arguments_are_clap_usage_errors() {
    let bad = [
        vec!["service", "ops", "dead-letters", "show", "not-a-uuid"],
        vec!["service", "ops", "dead-letters", "replay"],
        vec!["service", "ops", "dead-letters", "replay", "--all", "0190a000-0000-7000-8000-000000000000"],
        vec!["service", "ops", "events", "read", "Account/x", "--as-of", "yesterday"],
        vec!["service", "ops", "model", "export", "--format", "png"],
        vec!["service", "ops", "no-such-command"],
    ];
    for args in bad {
        let error = Service::try_parse_from(&args).err().unwrap_or_else(|| panic!("{args:?} parsed"));
        assert_eq!(error.exit_code(), 2, "{args:?}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_status_and_a_streams_events() {
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::books")
        .store(MemoryStore::new())
        .build()
        .expect("the books model is valid");
    let account: Identifier<Account> = Identifier::generate();
    for cents in [5, 7] {
        let processed = domain.process(Charge { id: account.clone(), owner: "ann".into(), cents }).await.unwrap();
        processed.all_delivered().unwrap();
    }

    let (exit, json) = ops(&domain, &["--json", "projections", "status"]).await;
    assert_eq!(exit, Exit::Ok, "{json}");
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|p| p["projection"].as_str().unwrap()).collect();
    assert_eq!(names, ["AccountView", "OwnerTotal"], "{json}");
    assert!(list.as_array().unwrap().iter().all(|p| p["lag"] == 0 && p["rebuilding"].is_null()), "{json}");
    let (_, text) = ops(&domain, &["projections", "status"]).await;
    assert!(text.lines().any(|l| l.starts_with("AccountView")), "{text}");

    let stream = format!("Account/{account}");
    let (exit, json) = ops(&domain, &["--json", "events", "read", &stream]).await;
    assert_eq!(exit, Exit::Ok, "{json}");
    let events: serde_json::Value = serde_json::from_str(&json).unwrap();
    let cents: Vec<i64> = events.as_array().unwrap().iter().map(|e| e["payload"]["cents"].as_i64().unwrap()).collect();
    assert_eq!(cents, [5, 7], "{json}");
    let (_, text) = ops(&domain, &["events", "read", &stream, "--from", "2"]).await;
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("#2 Account.Charged"), "{text}");

    let (exit, text) = ops(&domain, &["events", "read", "Account/nobody"]).await;
    assert_eq!(exit, Exit::NotFound);
    assert_eq!(text.trim(), "error: no events in stream `Account/nobody`");
    let (exit, _) = ops(&domain, &["events", "read", "no-slash"]).await;
    assert_eq!(exit, Exit::NotFound);
}

/// A model whose one event is dead for two handlers when `FAIL` is set; with an event
/// nothing takes, an aggregate nothing changes, and a handler of an event from outside
/// the domain, for `check`.
mod twice {
    use std::sync::atomic::{AtomicBool, Ordering};

    use protean::prelude::*;

    pub static FAIL: AtomicBool = AtomicBool::new(true);

    fn outcome(who: &str) -> Result<(), DomainError> {
        if FAIL.load(Ordering::SeqCst) {
            Err(DomainError::rule(format!("{who} is down")))
        } else {
            Ok(())
        }
    }

    #[aggregate]
    pub struct Gauge {
        pub level: u64,
    }

    #[command(part_of = Gauge)]
    pub struct Bump {
        pub id: Identifier<Gauge>,
    }

    #[event(part_of = Gauge)]
    pub struct Bumped {
        pub id: Identifier<Gauge>,
    }

    /// Raised by nothing here, taken by nothing: `check`'s W001.
    #[event(part_of = Gauge)]
    pub struct Dropped {
        pub id: Identifier<Gauge>,
    }

    pub struct Gauges;

    #[handler(part_of = Gauge)]
    impl Gauges {
        async fn bump(ctx: &mut Context<Gauge>, command: Bump) -> Result<(), DomainError> {
            let id = command.id.clone();
            let mut gauge = ctx.load_or_add(&id, || Ok(Gauge::builder().id(id.clone()).level(0u64).build()?)).await?;
            gauge.level += 1;
            gauge.raise(Bumped { id: command.id });
            Ok(())
        }
    }

    #[aggregate]
    pub struct Echo {
        pub seen: u64,
    }

    /// Nothing changes it: `check`'s W002.
    #[aggregate]
    pub struct Idle {
        pub never: u64,
    }

    pub struct First;

    #[handler(part_of = Echo)]
    impl First {
        async fn on(_ctx: &mut Context<Echo>, _event: &Bumped) -> Result<(), DomainError> {
            outcome("first")
        }
    }

    pub struct Second;

    #[handler(part_of = Echo)]
    impl Second {
        async fn on(_ctx: &mut Context<Echo>, _event: &Bumped) -> Result<(), DomainError> {
            outcome("second")
        }
    }

    pub struct Strays;

    /// Takes an event of a module the domain does not include: `check`'s E001.
    #[handler(part_of = Echo)]
    impl Strays {
        async fn on(_ctx: &mut Context<Echo>, _event: &super::elsewhere::Pinged) -> Result<(), DomainError> {
            Ok(())
        }
    }
}

/// A module the `twice` domain does not include.
mod elsewhere {
    use protean::prelude::*;

    #[aggregate]
    pub struct Pinger {
        pub pings: u64,
    }

    #[event(part_of = Pinger)]
    pub struct Pinged {
        pub id: Identifier<Pinger>,
    }
}

/// The `twice` domain, with `Bumped` dead for `First::on` and `Second::on`.
async fn dead_twice() -> (Domain, Uuid) {
    let policy = RetryPolicy::default().max_attempts(1).initial_backoff(Duration::from_millis(1));
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::twice")
        .store(MemoryStore::new())
        .delivery(DeliveryMode::Background)
        .retry_policy(policy)
        .build()
        .expect("the twice model runs");
    let processed = domain.process(twice::Bump { id: Identifier::generate() }).await.unwrap();
    let correlation = processed.events[0].correlation_id;
    let handle = domain.workers(WorkerConfig::default()).start().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while domain.dead_letters().await.unwrap().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no dead letters in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    handle.shutdown().await;
    (domain, correlation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_dead_for_two_handlers_needs_one_named_and_replay_all_filters() {
    let (domain, correlation) = dead_twice().await;
    let (_, json) = ops(&domain, &["--json", "dead-letters", "list"]).await;
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    let event_id = list[0]["event_id"].as_str().unwrap().to_owned();
    assert_eq!(list[1]["event_id"].as_str(), Some(event_id.as_str()), "{json}");

    let (exit, text) = ops(&domain, &["dead-letters", "show", &event_id]).await;
    assert_eq!(exit, Exit::NotFound);
    assert_eq!(
        text.trim(),
        format!("error: event {event_id} is dead for 2 handlers (First::on, Second::on): name one with --handler")
    );
    let (exit, text) = ops(&domain, &["dead-letters", "show", &event_id, "--handler", "Second::on"]).await;
    assert_eq!(exit, Exit::Ok);
    assert!(text.contains("last:") && text.contains("second is down"), "{text}");

    // Fixed: --all with a handler replays that handler's only.
    twice::FAIL.store(false, std::sync::atomic::Ordering::SeqCst);
    let (exit, json) = ops(&domain, &["--json", "dead-letters", "replay", "--all", "--handler", "First::on"]).await;
    assert_eq!(exit, Exit::Ok, "{json}");
    let done: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(done["delivered"], serde_json::json!([{ "handler": "First::on", "event_id": event_id }]));
    // Now the event is dead for one handler: its id alone names it.
    let (exit, text) = ops(&domain, &["dead-letters", "replay", &event_id]).await;
    assert_eq!(exit, Exit::Ok, "{text}");
    assert_eq!(text.trim(), format!("delivered: Second::on {event_id}"));
    let (exit, _) = ops(&domain, &["status"]).await;
    assert_eq!(exit, Exit::Ok);

    // The conversation: the command and its one event.
    let (exit, text) = ops(&domain, &["events", "trace", &correlation.to_string()]).await;
    assert_eq!(exit, Exit::Ok);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], format!("command {correlation}"));
    assert!(lines[1].starts_with("  Gauge.Bumped Gauge/") && lines[1].ends_with(&event_id), "{text}");

    // The log from its start, one event, as JSON.
    let (exit, json) = ops(&domain, &["--json", "events", "tail", "--from", "0", "--limit", "1"]).await;
    assert_eq!(exit, Exit::Ok);
    let tailed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!((tailed["position"].as_u64(), tailed["event_id"].as_str()), (Some(1), Some(event_id.as_str())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_each_rule_by_its_code() {
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::twice")
        .store(MemoryStore::new())
        .build()
        .expect("the twice model runs");
    let (exit, json) = ops(&domain, &["--json", "check"]).await;
    assert_eq!(exit, Exit::Attention, "an error: {json}");
    let found: serde_json::Value = serde_json::from_str(&json).unwrap();
    let found: Vec<(&str, &str, &str)> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["code"].as_str().unwrap(), d["severity"].as_str().unwrap(), d["element"].as_str().unwrap()))
        .collect();
    assert_eq!(found, [("E001", "error", "Strays::on"), ("W001", "warning", "Dropped"), ("W002", "warning", "Idle")]);
    let (_, text) = ops(&domain, &["check"]).await;
    assert!(text.starts_with("E001 error Strays::on: `Strays::on` takes the event `Pinged`"), "{text}");
    assert!(text.ends_with("3 finding(s), 1 error(s)\n"), "{text}");

    let (exit, mermaid) = ops(&domain, &["model", "export", "--format", "mermaid"]).await;
    assert_eq!((exit, mermaid.as_str()), (Exit::Ok, domain.model().to_mermaid().as_str()));
    let (_, dot) = ops(&domain, &["model", "export", "--format", "dot"]).await;
    assert_eq!(dot, domain.model().to_dot());
}

/// The `twice` domain, for `check`: E001 on `Strays::on`, W001 on `Dropped`, W002 on `Idle`.
fn checked_twice() -> Domain {
    Domain::builder()
        .module(module_path!().to_string() + "::twice")
        .store(MemoryStore::new())
        .build()
        .expect("the twice model runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_severities_are_configurable_and_decide_the_exit_code() {
    let domain = checked_twice();
    let (exit, by_flag) = ops(&domain, &["check", "--format", "json"]).await;
    assert_eq!(exit, Exit::Attention);
    let (_, by_alias) = ops(&domain, &["--json", "check"]).await;
    assert_eq!(by_flag, by_alias, "--json is --format json");
    let found: serde_json::Value = serde_json::from_str(&by_flag).unwrap();
    assert_eq!(found[0]["fix"], "include the module of `Pinged` in the domain, or remove the method", "{by_flag}");
    assert_eq!(found[0]["rule"], "handler-takes-unknown-event", "{by_flag}");

    // The error lowered to a warning: warnings alone exit 0, unless they are denied.
    let (exit, text) = ops(&domain, &["check", "--severity", "E001=warning"]).await;
    assert_eq!(exit, Exit::Ok, "{text}");
    assert!(text.starts_with("E001 warning Strays::on: "), "{text}");
    assert!(text.ends_with("3 finding(s), 0 error(s)\n"), "{text}");
    let (exit, _) = ops(&domain, &["check", "--severity", "E001=warning", "--deny-warnings"]).await;
    assert_eq!(exit, Exit::Attention, "--deny-warnings fails on a warning");
    // Notes never fail, not even under --deny-warnings.
    let notes =
        ["check", "--deny-warnings", "--severity", "E001=note", "--severity", "W001=note", "--severity", "W002=note"];
    let (exit, text) = ops(&domain, &notes).await;
    assert_eq!(exit, Exit::Ok, "{text}");
    // Turned off, a rule reports nothing.
    let off =
        ["check", "--deny-warnings", "--severity", "E001=off", "--severity", "W001=off", "--severity", "W002=off"];
    let (exit, text) = ops(&domain, &off).await;
    assert_eq!((exit, text.as_str()), (Exit::Ok, "no findings\n"));
    // A warning raised to an error fails.
    let (exit, text) = ops(&domain, &["check", "--severity", "E001=off", "--severity", "W002=error"]).await;
    assert_eq!(exit, Exit::Attention, "{text}");
    assert!(text.contains("W002 error Idle: "), "{text}");

    for bad in ["W999=off", "W001=loud", "W001"] {
        let parsed = Service::try_parse_from(["service", "ops", "check", "--severity", bad]);
        assert!(parsed.is_err(), "--severity {bad} is a usage error");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_writes_github_annotations_one_per_line() {
    let domain = checked_twice();
    let (exit, lines) = ops(&domain, &["check", "--format", "github", "--severity", "W002=note"]).await;
    assert_eq!(exit, Exit::Attention);
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(
        lines,
        [
            "::error title=E001 handler-takes-unknown-event::Strays::on: `Strays::on` takes the event `Pinged`, \
             which is not in this domain, so it never runs. Fix: include the module of `Pinged` in the domain, or \
             remove the method",
            "::warning title=W001 event-without-reaction::Dropped: no handler, projector or process manager step \
             takes the event `Dropped`: it is only stored (and applied, in an event-sourced aggregate). Fix: react \
             to it, or ignore this warning",
            "::notice title=W002 aggregate-without-commands::Idle: no command and no handler changes the aggregate \
             `Idle`: nothing in this domain creates one. Fix: add a `#[command(part_of = Idle)]` and its handler, \
             or remove it",
        ]
    );
}

/// The SARIF 2.1.0 schema, compiled: the official file, vendored (tests/data/README.md).
fn sarif_schema() -> (boon::Schemas, boon::SchemaIndex) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sarif-schema-2.1.0.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    compiler.add_resource("sarif-schema-2.1.0.json", schema).unwrap();
    let index = compiler.compile("sarif-schema-2.1.0.json", &mut schemas).unwrap();
    (schemas, index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_writes_sarif_valid_against_the_2_1_0_schema() {
    let domain = checked_twice();
    let (exit, sarif) = ops(&domain, &["check", "--format", "sarif", "--severity", "W002=note"]).await;
    assert_eq!(exit, Exit::Attention);
    let log: serde_json::Value = serde_json::from_str(&sarif).unwrap();
    let (schemas, schema) = sarif_schema();
    if let Err(error) = schemas.validate(&log, schema) {
        panic!("not valid SARIF 2.1.0: {error:#}\n{sarif}");
    }

    let run = &log["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let codes: Vec<&str> = protean::registry::RULES.iter().map(|r| r.code).collect();
    assert_eq!(ids, codes, "every rule, in the order of RULES");
    assert_eq!(run["tool"]["driver"]["name"], "protean");
    let results: Vec<(&str, u64, &str, &str, &str)> = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let place = &r["locations"][0]["logicalLocations"][0];
            (
                r["ruleId"].as_str().unwrap(),
                r["ruleIndex"].as_u64().unwrap(),
                r["level"].as_str().unwrap(),
                place["name"].as_str().unwrap(),
                place["fullyQualifiedName"].as_str().unwrap(),
            )
        })
        .collect();
    let index = |code: &str| codes.iter().position(|c| *c == code).unwrap() as u64;
    let module = module_path!();
    assert_eq!(
        results,
        [
            ("E001", index("E001"), "error", "Strays::on", format!("{module}::twice::Strays::on").as_str()),
            ("W001", index("W001"), "warning", "Dropped", format!("{module}::twice::Dropped").as_str()),
            ("W002", index("W002"), "note", "Idle", format!("{module}::twice::Idle").as_str()),
        ]
    );
    let text = run["results"][0]["message"]["text"].as_str().unwrap();
    assert!(text.ends_with("Fix: include the module of `Pinged` in the domain, or remove the method"), "{text}");

    // The schema is not vacuous: a level SARIF does not have is refused.
    let mut broken = log.clone();
    broken["runs"][0]["results"][0]["level"] = "fatal".into();
    assert!(schemas.validate(&broken, schema).is_err(), "the schema refuses a level that is not SARIF's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_with_store_reports_events_the_store_never_held() {
    let domain = checked_twice();
    let (exit, json) = ops(&domain, &["--json", "check", "--store", "--severity", "E001=off"]).await;
    assert_eq!(exit, Exit::Ok, "notes and warnings only: {json}");
    // The elements of the W003 findings in a JSON list of diagnostics.
    let never_stored = |json: &str| -> Vec<String> {
        let found: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
        found.iter().filter(|d| d["code"] == "W003").map(|d| d["element"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(never_stored(&json), ["Bumped", "Dropped"], "{json}");
    let _ = domain.process(twice::Bump { id: Identifier::generate() }).await;
    let (_, json) = ops(&domain, &["--json", "check", "--store"]).await;
    assert_eq!(never_stored(&json), ["Dropped"], "`Bumped` is stored now: {json}");
    let (_, without) = ops(&domain, &["--json", "check"]).await;
    assert!(!without.contains("W003"), "without --store the store is not read: {without}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streams_events_as_of_a_time() {
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::books")
        .store(MemoryStore::new())
        .build()
        .expect("the books model is valid");
    let account: Identifier<Account> = Identifier::generate();
    let _ = domain.process(Charge { id: account.clone(), owner: "ann".into(), cents: 5 }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = protean::store::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _ = domain.process(Charge { id: account.clone(), owner: "ann".into(), cents: 7 }).await.unwrap();
    let t = between;
    let at = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    );
    let (exit, json) = ops(&domain, &["--json", "events", "read", &format!("Account/{account}"), "--as-of", &at]).await;
    assert_eq!(exit, Exit::Ok);
    let events: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(events.as_array().unwrap().len(), 1, "{json}");
    assert_eq!(events[0]["payload"]["cents"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_check_needs_the_url_and_reads_a_file_without_creating_it() {
    let domain = Domain::builder().store(MemoryStore::new()).build().unwrap();
    let (exit, text) = ops(&domain, &["migrate", "--check"]).await;
    assert_eq!(exit, Exit::Failed);
    assert!(text.contains("Ops::run_with"), "{text}");
    let Service::Ops(check) = Service::try_parse_from(["service", "ops", "migrate", "--check"]).unwrap();
    assert!(!check.needs_domain());
    let mut out = Vec::new();
    let never = || async { Err::<Domain, _>("a domain is not needed") };
    assert_eq!(check.run_with("memory:", never, &mut out).await, Exit::Ok);
    assert_eq!(String::from_utf8(out).unwrap(), "memory: no schema, always current\n");

    #[cfg(feature = "sqlite")]
    {
        let dir = std::env::temp_dir().join(format!("protean-ops-cli-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("missing.db");
        let url = format!("sqlite:{}", file.display());
        let status = protean::store::schema_status(&url).await.unwrap();
        assert!(status.is_behind() && status.found.0 == 0, "{status:?}");
        assert!(!file.exists(), "a check creates no file");
        let Service::Ops(check) = Service::try_parse_from(["service", "ops", "migrate", "--check"]).unwrap();
        let mut out = Vec::new();
        assert_eq!(check.run_with(&url, never, &mut out).await, Exit::SchemaMismatch);
        assert!(!file.exists(), "a check creates no file");
        let _ = std::fs::remove_dir_all(&dir);
    }
    // A command that needs the domain reports the builder's failure.
    let Service::Ops(status) = Service::try_parse_from(["service", "ops", "status"]).unwrap();
    let mut out = Vec::new();
    assert_eq!(status.run_with("memory:", never, &mut out).await, Exit::Failed);
    assert_eq!(String::from_utf8(out).unwrap(), "error: a domain is not needed\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_deadline_is_listed_traced_and_cancelled() {
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::shop")
        .store(MemoryStore::new())
        .build()
        .expect("the shop model is valid");
    let order = Identifier::generate();
    let place = shop::PlaceOrder { order_id: order, customer: Identifier::generate(), sku: Identifier::generate() };
    let processed = domain.process(place).await.unwrap();
    processed.all_delivered().unwrap();
    let correlation = processed.events[0].correlation_id.to_string();

    let (exit, json) = ops(&domain, &["--json", "scheduled", "list"]).await;
    assert_eq!(exit, Exit::Ok);
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!((list[0]["name"].as_str(), list[0]["owner"].as_str()), (Some("restock"), Some("Fulfilment")));
    let id = list[0]["id"].as_str().unwrap().to_owned();

    // The deadline hangs under the event whose step scheduled it.
    let (_, text) = ops(&domain, &["events", "trace", &correlation]).await;
    let at = text.lines().position(|l| l.contains("ReservationFailed")).unwrap_or_else(|| panic!("{text}"));
    let next = text.lines().nth(at + 1).unwrap();
    assert!(
        next.trim_start().starts_with(&format!("scheduled Order.CancelOrder {id} `restock` by Fulfilment")),
        "{text}"
    );

    let (exit, text) = ops(&domain, &["scheduled", "cancel", &id]).await;
    assert_eq!((exit, text.trim()), (Exit::Ok, format!("cancelled: {id}").as_str()));
    let (_, text) = ops(&domain, &["scheduled", "list"]).await;
    assert_eq!(text.trim(), "no scheduled commands");
    let (exit, text) = ops(&domain, &["scheduled", "cancel", &id]).await;
    assert_eq!(exit, Exit::NotFound);
    assert!(text.starts_with(&format!("error: no pending scheduled command {id}")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_rebuilt_by_name_dry_run_and_from_a_position() {
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::books")
        .store(MemoryStore::new())
        .build()
        .expect("the books model is valid");
    let account: Identifier<Account> = Identifier::generate();
    for cents in [5, 7, 11] {
        let processed = domain.process(Charge { id: account.clone(), owner: "ann".into(), cents }).await.unwrap();
        processed.all_delivered().unwrap();
    }
    let generation = |json: &str| -> serde_json::Value {
        let list: serde_json::Value = serde_json::from_str(json).unwrap();
        list.as_array().unwrap().iter().find(|p| p["projection"] == "OwnerTotal").unwrap()["generation"].clone()
    };
    let (_, before) = ops(&domain, &["--json", "projections", "status"]).await;

    let (exit, json) = ops(&domain, &["--json", "projections", "rebuild", "OwnerTotal", "--dry-run"]).await;
    assert_eq!(exit, Exit::Ok, "{json}");
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!((plan["events"].as_u64(), plan["busy"].as_bool()), (Some(3), Some(false)), "{json}");
    let (_, json) =
        ops(&domain, &["--json", "projections", "rebuild", "OwnerTotal", "--dry-run", "--from-position", "2"]).await;
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(plan["events"].as_u64(), Some(1), "{json}");
    let (_, after_dry) = ops(&domain, &["--json", "projections", "status"]).await;
    assert_eq!(after_dry, before, "a dry run changes nothing");

    let (exit, json) = ops(&domain, &["--json", "projections", "rebuild", "OwnerTotal"]).await;
    assert_eq!(exit, Exit::Ok, "{json}");
    let end: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!((end["outcome"].as_str(), end["events"].as_u64()), (Some("switched"), Some(3)), "{json}");
    let (_, after) = ops(&domain, &["--json", "projections", "status"]).await;
    assert_ne!(generation(&after), generation(&before), "the new copy serves");

    let (exit, text) = ops(&domain, &["projections", "rebuild", "Nothing"]).await;
    assert_eq!(exit, Exit::NotFound);
    assert!(text.starts_with("error: ") && text.contains("OwnerTotal"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_rebuild_leaves_the_serving_copy_and_a_stopped_tail_ends() {
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::books")
        .store(MemoryStore::new())
        .build()
        .expect("the books model is valid");
    let account: Identifier<Account> = Identifier::generate();
    let processed = domain.process(Charge { id: account, owner: "ann".into(), cents: 5 }).await.unwrap();
    processed.all_delivered().unwrap();
    let (_, before) = ops(&domain, &["--json", "projections", "status"]).await;

    // What Ctrl-C does to `ops projections rebuild`, with a stop that has come already
    // (before the rebuild counted its events).
    let Service::Ops(rebuild) =
        Service::try_parse_from(["service", "ops", "projections", "rebuild", "OwnerTotal"]).unwrap();
    let mut out = Vec::new();
    let exit = rebuild.run_until(&domain, &mut out, std::future::ready(())).await;
    let text = String::from_utf8(out).unwrap();
    assert_eq!(exit, Exit::Attention, "{text}");
    assert_eq!(
        text.trim(),
        "OwnerTotal: cancelled after 0 of 0 event(s); the serving copy stays, and the next rebuild resumes"
    );
    let (_, after) = ops(&domain, &["--json", "projections", "status"]).await;
    let serving = |json: &str| -> Vec<(serde_json::Value, serde_json::Value)> {
        let list: serde_json::Value = serde_json::from_str(json).unwrap();
        list.as_array().unwrap().iter().map(|p| (p["projection"].clone(), p["generation"].clone())).collect()
    };
    assert_eq!(serving(&after), serving(&before), "the serving copies stay");
    let total = domain.projection::<books::views::OwnerTotal>(&"ann".to_string()).await.unwrap();
    assert_eq!(total.map(|t| t.total), Some(5), "the serving copy answers");

    // `events tail` with nothing new to print ends when stopped, and says nothing.
    let Service::Ops(tail) = Service::try_parse_from(["service", "ops", "events", "tail"]).unwrap();
    let mut out = Vec::new();
    let exit = tail.run_until(&domain, &mut out, tokio::time::sleep(Duration::from_millis(50))).await;
    assert_eq!((exit, out.len()), (Exit::Ok, 0));
}

/// `ops schema ...` on a lock in a directory of its own: missing, written, up to date,
/// drifted (a field's stored type changed in the lock), forced, a removed event retired,
/// and JSON Schema exported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_checks_diffs_updates_retires_and_exports_the_contract() {
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::shop")
        .store(MemoryStore::new())
        .build()
        .expect("the shop model is valid");
    let dir = std::env::temp_dir().join(format!("protean-ops-schema-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let lock = dir.join("protean.lock");
    let lock_arg = lock.to_str().unwrap();

    let (exit, text) = ops(&domain, &["schema", "check", "--lock", lock_arg]).await;
    assert_eq!(exit, Exit::NotFound, "{text}");
    assert!(text.contains("no contract lock at") && text.contains("PROTEAN_UPDATE_LOCK=1"), "{text}");
    assert!(!lock.exists(), "check writes nothing");
    let (exit, text) = ops(&domain, &["schema", "update", "--lock", lock_arg]).await;
    assert_eq!(exit, Exit::Ok, "{text}");
    let written = std::fs::read_to_string(&lock).unwrap();
    assert!(written.contains("[event Order.OrderPlaced v1]\naggregate Order\nupcast none\n"), "{written}");
    let (exit, text) = ops(&domain, &["schema", "check", "--lock", lock_arg, "--strict"]).await;
    assert_eq!((exit, text.trim_end()), (Exit::Ok, format!("{lock_arg}: up to date").as_str()));

    // The lock says `sku` was stored as an integer: the model's text breaks it.
    let drifted = written.replace(
        "[event Order.OrderPlaced v1]\naggregate Order\nupcast none\nfield customer identifier(Customer) required\nfield order_id identifier(Order) required\nfield sku identifier(Stock) required",
        "[event Order.OrderPlaced v1]\naggregate Order\nupcast none\nfield customer identifier(Customer) required\nfield order_id identifier(Order) required\nfield sku int64 required",
    );
    assert_ne!(drifted, written, "the lock has the block as expected:\n{written}");
    std::fs::write(&lock, &drifted).unwrap();
    let (exit, text) = ops(&domain, &["schema", "check", "--lock", lock_arg]).await;
    assert_eq!(exit, Exit::Attention, "{text}");
    assert!(
        text.contains("`OrderPlaced.sku` changed from integer to an identifier of Stock: bump `#[event(version = 2)]`"),
        "{text}"
    );
    let (exit, json) = ops(&domain, &["schema", "diff", "--lock", lock_arg, "--json"]).await;
    assert_eq!(exit, Exit::Attention);
    let diff: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(diff["breaking"], true, "{json}");
    assert_eq!(diff["changes"][0]["rule"], "type-changed", "{json}");
    assert_eq!(diff["changes"][0]["verdict"], "NONE", "{json}");
    assert_eq!(diff["changes"][0]["path"], "sku", "{json}");
    assert_eq!(
        diff["lines"],
        serde_json::json!([
            "- [event Order.OrderPlaced v1] field sku int64 required",
            "+ [event Order.OrderPlaced v1] field sku identifier(Stock) required"
        ]),
        "{json}"
    );
    let (exit, _) = ops(&domain, &["schema", "update", "--lock", lock_arg]).await;
    assert_eq!(exit, Exit::Attention, "a breaking change is not written without --force");
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), drifted);
    let (exit, text) = ops(&domain, &["schema", "update", "--lock", lock_arg, "--force"]).await;
    assert_eq!(exit, Exit::Ok, "{text}");
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), written);

    // An event the lock holds and the model no longer has, until it is retired.
    let gone =
        "\n[event Order.OrderRefunded v1]\naggregate Order\nupcast none\nfield order_id identifier(Order) required\n";
    std::fs::write(&lock, format!("{written}{gone}")).unwrap();
    let (exit, text) = ops(&domain, &["schema", "check", "--lock", lock_arg]).await;
    assert_eq!(exit, Exit::Attention, "{text}");
    assert!(text.contains("`Order.OrderRefunded` is in the lock but no longer in the domain"), "{text}");
    let (exit, text) = ops(&domain, &["schema", "retire", "Order.OrderRefunded", "--lock", lock_arg]).await;
    assert_eq!(exit, Exit::Ok, "{text}");
    let (exit, text) = ops(&domain, &["schema", "check", "--lock", lock_arg]).await;
    assert_eq!((exit, text.trim_end()), (Exit::Ok, format!("{lock_arg}: up to date").as_str()));
    let (exit, _) = ops(&domain, &["schema", "retire", "Order.Unknown", "--lock", lock_arg]).await;
    assert_eq!(exit, Exit::NotFound);

    let (exit, json) = ops(&domain, &["schema", "export", "Order.OrderPlaced"]).await;
    assert_eq!(exit, Exit::Ok);
    let schema: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(schema["$id"], "urn:protean:Order.OrderPlaced:v1");
    assert_eq!(schema["required"], serde_json::json!(["customer", "order_id", "sku"]));
    let (_, json) = ops(&domain, &["schema", "export"]).await;
    let all: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(
        all.len(),
        domain.model().of_kind(protean::model::ElementKind::Event).count() + 6,
        "events and commands"
    );
    let (exit, _) = ops(&domain, &["schema", "export", "Order.Nothing"]).await;
    assert_eq!(exit, Exit::NotFound);
    std::fs::remove_dir_all(&dir).unwrap();
}
