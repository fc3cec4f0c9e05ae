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

    let (exit, json) = ops(&domain, &["--json", "dead-letters", "list"]).await;
    assert_eq!(exit, Exit::Ok);
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    let letters = list.as_array().unwrap();
    assert_eq!(letters.len(), 1, "{json}");
    assert_eq!(letters[0]["handler"], AUDIT);
    assert_eq!(letters[0]["attempts"], 2);
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
