//! Metrics (docs/metrics.md): after a known workload, the Prometheus text scraped from a
//! `metrics-exporter-prometheus` recorder holds the expected counts, on every store the
//! build has; and the `GET /metrics` route of `examples/http_shop` serves them over HTTP.
//!
//! Each test builds its domain inside `metrics::with_local_recorder` with a recorder of
//! its own: the domain registers its metric handles when it is built, so what it records
//! later, on any thread, goes to that recorder, and the tests run side by side.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};
use protean::prelude::*;
use protean::runtime::{DeliveryMode, RetryPolicy, WhenDead, WorkerConfig};
use protean::store::Store;

#[path = "support/contended.rs"]
mod contended;
#[path = "support/shop.rs"]
#[allow(dead_code)]
mod flow_shop;
#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "../examples/http_shop/metrics.rs"]
mod shop_metrics;

use contended::Contended;
use harness::StoreCase;

/// A counter that events are tallied from, and an alarm that fails on demand.
pub mod model {
    use protean::prelude::*;

    #[aggregate]
    pub struct Meter {
        pub total: u64,
    }

    /// Adds `by` (at least 1) to a meter, opening it on the first.
    #[command(part_of = Meter)]
    pub struct Add {
        pub id: Identifier<Meter>,
        #[field(min = 1)]
        pub by: u64,
    }

    #[event(part_of = Meter)]
    pub struct Added {
        pub id: Identifier<Meter>,
        pub by: u64,
    }

    pub struct Meters;

    #[handler(part_of = Meter)]
    impl Meters {
        async fn add(ctx: &mut Context<Meter>, command: Add) -> Result<(), DomainError> {
            let id = command.id.clone();
            let mut meter = ctx.load_or_add(&id, || Ok(Meter::builder().id(id.clone()).total(0u64).build()?)).await?;
            meter.total += command.by;
            meter.raise(Added { id: command.id, by: command.by });
            Ok(())
        }
    }

    /// The sum of every meter's additions.
    #[aggregate]
    pub struct Tally {
        pub total: u64,
    }

    pub struct Tallies;

    #[handler(part_of = Tally)]
    impl Tallies {
        async fn tally(ctx: &mut Context<Tally>, event: &Added) -> Result<(), DomainError> {
            let id = event.id.cast::<Tally>();
            let mut tally = ctx.load_or_add(&id, || Ok(Tally::builder().id(id.clone()).total(0u64).build()?)).await?;
            tally.total += event.by;
            Ok(())
        }
    }

    /// Rings on every addition; an addition of 13 breaks it.
    #[aggregate]
    pub struct Alarm {
        pub rings: u64,
    }

    pub struct Alarms;

    #[handler(part_of = Alarm)]
    impl Alarms {
        async fn ring(ctx: &mut Context<Alarm>, event: &Added) -> Result<(), DomainError> {
            if event.by == 13 {
                return Err(DomainError::rule("the alarm does not ring for 13"));
            }
            let id = event.id.cast::<Alarm>();
            let mut alarm = ctx.load_or_add(&id, || Ok(Alarm::builder().id(id.clone()).rings(0u64).build()?)).await?;
            alarm.rings += 1;
            Ok(())
        }
    }
}

/// A projection to rebuild.
pub mod rebuilt {
    use protean::prelude::*;

    #[aggregate]
    pub struct Note {
        pub text: String,
    }

    #[command(part_of = Note)]
    pub struct Write {
        pub id: Identifier<Note>,
        pub text: String,
    }

    #[event(part_of = Note)]
    pub struct Written {
        pub id: Identifier<Note>,
        pub text: String,
    }

    pub struct Notes;

    #[handler(part_of = Note)]
    impl Notes {
        async fn write(ctx: &mut Context<Note>, command: Write) -> Result<(), DomainError> {
            let note = Note::builder().id(command.id.clone()).text(command.text.clone()).build()?;
            ctx.add(note)?.raise(Written { id: command.id, text: command.text });
            Ok(())
        }
    }

    /// The length of each note.
    #[projection]
    pub struct NoteLength {
        #[key]
        pub id: Identifier<Note>,
        pub length: u64,
    }

    pub struct Lengths;

    #[projector(projection = NoteLength)]
    impl Lengths {
        async fn written(rows: &mut Rows<NoteLength>, event: &Written) -> Result<(), DomainError> {
            rows.put(NoteLength { id: event.id.clone(), length: event.text.len() as u64 }).await
        }
    }
}

use model::{Add, Meter};

const ADD: &str = "Meter.Add";
const TALLY: &str = "Tallies::tally";
const RING: &str = "Alarms::ring";

/// A Prometheus recorder of the test's own, with the example's histogram buckets.
fn recorder() -> PrometheusRecorder {
    shop_metrics::builder().build_recorder()
}

/// The domain of `model` on `store`, delivering in `mode`, with its metrics registered
/// with `recorder`. No version conflict is retried; a failing delivery is tried twice.
fn domain(store: Arc<dyn Store>, mode: DeliveryMode, recorder: &PrometheusRecorder) -> Domain {
    let builder = Domain::builder()
        .module(module_path!().to_string() + "::model")
        .shared_store(store)
        .delivery(mode)
        .conflict_retries(0)
        .retry_policy(
            RetryPolicy::default()
                .max_attempts(2)
                .initial_backoff(Duration::from_millis(1))
                .max_backoff(Duration::from_millis(2))
                .when_dead(WhenDead::Continue),
        );
    metrics::with_local_recorder(recorder, || builder.build()).expect("the model is valid")
}

/// The samples of a Prometheus text, by name and labels as written (`name{a="b"}`).
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of `series` in `handle`'s text, failing with the text when it is missing.
fn value(handle: &PrometheusHandle, series: &str) -> f64 {
    let text = handle.render();
    *samples(&text).get(series).unwrap_or_else(|| panic!("no `{series}` in the scrape:\n{text}"))
}

/// The workload: six additions processed (five to one meter, one of 13 to another), one
/// refused by validation, one meeting a version conflict the store raises once.
async fn workload(domain: &Domain, tally: &Arc<contended::Tally>) {
    let (one, two) = (Identifier::<Meter>::generate(), Identifier::<Meter>::generate());
    assert!(domain.process(Add { id: one.clone(), by: 1 }).await.expect("opens the meter").failures.is_empty());
    tally.to_refuse.store(1, std::sync::atomic::Ordering::SeqCst);
    let conflict = domain.process(Add { id: one.clone(), by: 1 }).await.unwrap_err();
    assert!(matches!(conflict, ProcessError::Conflict(_)), "{conflict}");
    for _ in 0..4 {
        assert!(domain.process(Add { id: one.clone(), by: 1 }).await.expect("adds").failures.is_empty());
    }
    let refused = domain.process(Add { id: one.clone(), by: 0 }).await.unwrap_err();
    assert!(matches!(refused, ProcessError::Rejected { .. }), "{refused}");
    let _ = domain.process(Add { id: two, by: 13 }).await.expect("the command commits; its reaction fails");
}

/// What the workload leaves in the metrics, in either delivery mode.
fn assert_workload(handle: &PrometheusHandle, failures: f64) {
    let command =
        |outcome: &str| value(handle, &format!("protean_commands_total{{command=\"{ADD}\",outcome=\"{outcome}\"}}"));
    assert_eq!(command("processed"), 6.0);
    assert_eq!(command("rejected"), 1.0);
    assert_eq!(command("conflicted"), 1.0);
    assert_eq!(command("failed"), 0.0);
    assert_eq!(value(handle, &format!("protean_command_duration_seconds_count{{command=\"{ADD}\"}}")), 8.0);
    let of = |metric: &str, handler: &str| value(handle, &format!("{metric}{{handler=\"{handler}\"}}"));
    assert_eq!(of("protean_deliveries_total", TALLY), 6.0);
    assert_eq!(of("protean_deliveries_total", RING), 5.0);
    assert_eq!(of("protean_delivery_failures_total", TALLY), 0.0);
    assert_eq!(of("protean_delivery_failures_total", RING), failures);
    assert_eq!(of("protean_reaction_latency_seconds_count", TALLY), 6.0);
    assert_eq!(of("protean_reaction_latency_seconds_count", RING), 5.0);
    // Every reaction took well under the largest bucket's bound.
    assert_eq!(
        value(handle, &format!("protean_reaction_latency_seconds_bucket{{handler=\"{TALLY}\",le=\"10\"}}")),
        6.0
    );
}

fn cases() -> Vec<(&'static str, StoreCase)> {
    vec![
        ("background_workload_counts_commands_deliveries_and_dead_letters", |store| {
            Box::pin(background_workload(store))
        }),
        ("inline_workload_counts_commands_and_deliveries", |store| Box::pin(inline_workload(store))),
        ("a_domain_built_before_the_recorder_records_nothing_in_it", |store| Box::pin(built_before(store))),
        ("a_rebuild_sets_its_progress_gauges", |store| Box::pin(rebuild_progress(store))),
        ("commands_a_process_manager_sent_are_counted_fired", |store| Box::pin(fired(store))),
        ("running_workers_refresh_the_gauges", |store| Box::pin(workers_refresh_gauges(store))),
    ]
}

/// Background delivery: the workers deliver, retry the alarm and dead-letter it; the
/// gauges follow `delivery_status`.
async fn background_workload(store: Arc<dyn Store>) {
    let contended = Contended::new(store, "Meter", 0);
    let tally = contended.tally();
    let recorder = recorder();
    let handle = recorder.handle();
    let domain = domain(Arc::new(contended), DeliveryMode::Background, &recorder);
    workload(&domain, &tally).await;
    // Nothing is delivered yet: the gauges say so once the status is read.
    let status = domain.delivery_status().await.unwrap();
    assert_eq!(status.undelivered, 6);
    assert_eq!(value(&handle, "protean_undelivered_events"), 6.0);
    assert!(value(&handle, "protean_delivery_lag_seconds") >= 0.0);

    let workers = domain.workers(WorkerConfig::default().poll_interval(Duration::from_millis(20))).start().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = domain.delivery_status().await.unwrap();
        if status.undelivered == 0 && status.dead == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not settled in time: {status:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    workers.shutdown().await;

    assert_workload(&handle, 2.0);
    assert_eq!(value(&handle, &format!("protean_dead_letters_total{{handler=\"{RING}\"}}")), 1.0);
    assert_eq!(value(&handle, &format!("protean_dead_letters_total{{handler=\"{TALLY}\"}}")), 0.0);
    assert_eq!(value(&handle, &format!("protean_dead_letters_waiting{{handler=\"{RING}\"}}")), 1.0);
    assert_eq!(value(&handle, "protean_undelivered_events"), 0.0);
    assert_eq!(value(&handle, "protean_delivery_lag_seconds"), 0.0);

    // Redelivered once the alarm is "fixed" (here: it still fails, one more attempt),
    // the dead letter stays and no new one is counted.
    let dead = domain.dead_letters().await.unwrap();
    let again = domain.redeliver(RING, dead[0].event.id).await.unwrap();
    assert_eq!(again.failed.len(), 1);
    assert_eq!(value(&handle, &format!("protean_delivery_failures_total{{handler=\"{RING}\"}}")), 3.0);
    assert_eq!(value(&handle, &format!("protean_dead_letters_total{{handler=\"{RING}\"}}")), 1.0);
}

/// Inline delivery: reactions run in `process`; the alarm's failure is kept for
/// `retry_failed`, not dead-lettered.
async fn inline_workload(store: Arc<dyn Store>) {
    let contended = Contended::new(store, "Meter", 0);
    let tally = contended.tally();
    let recorder = recorder();
    let handle = recorder.handle();
    let domain = domain(Arc::new(contended), DeliveryMode::Inline, &recorder);
    workload(&domain, &tally).await;
    assert_workload(&handle, 1.0);
    assert_eq!(value(&handle, &format!("protean_dead_letters_total{{handler=\"{RING}\"}}")), 0.0);
    let retried = domain.retry_failed().await;
    assert_eq!(retried.failures.len(), 1);
    assert_eq!(value(&handle, &format!("protean_delivery_failures_total{{handler=\"{RING}\"}}")), 2.0);
}

/// The handles are taken when the domain is built: a recorder that was not in place
/// then gets nothing from it (docs/metrics.md says to install it first).
async fn built_before(store: Arc<dyn Store>) {
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::model")
        .shared_store(store)
        .build()
        .expect("the model is valid");
    let recorder = recorder();
    let handle = recorder.handle();
    let processed = {
        let _local = metrics::set_default_local_recorder(&recorder);
        domain.process(Add { id: Identifier::generate(), by: 2 }).await
    };
    processed.unwrap().all_delivered().unwrap();
    assert!(!handle.render().contains("protean_"), "{}", handle.render());
}

/// A rebuild sets the done and total gauges of its projection: both the number of
/// events of its types once it switched.
async fn rebuild_progress(store: Arc<dyn Store>) {
    let recorder = recorder();
    let handle = recorder.handle();
    let builder = Domain::builder().module(module_path!().to_string() + "::rebuilt").shared_store(store);
    let domain = metrics::with_local_recorder(&recorder, || builder.build()).expect("the model is valid");
    for n in 0..7 {
        let write = rebuilt::Write { id: Identifier::generate(), text: "x".repeat(n) };
        domain.process(write).await.unwrap().all_delivered().unwrap();
    }
    let report = domain.rebuild::<rebuilt::NoteLength>().batch(3).run().await.unwrap().expect("not busy");
    assert_eq!(report.events, 7);
    assert_eq!(value(&handle, "protean_rebuild_events_done{projection=\"NoteLength\"}"), 7.0);
    assert_eq!(value(&handle, "protean_rebuild_events_total{projection=\"NoteLength\"}"), 7.0);
}

/// Running workers set the lag and undelivered gauges on their own, every 5 seconds:
/// once everything is delivered the gauges fall to zero without a `delivery_status` call.
async fn workers_refresh_gauges(store: Arc<dyn Store>) {
    let recorder = recorder();
    let handle = recorder.handle();
    let domain = domain(store, DeliveryMode::Background, &recorder);
    let id = Identifier::<Meter>::generate();
    for _ in 0..3 {
        assert!(domain.process(Add { id: id.clone(), by: 1 }).await.unwrap().failures.is_empty());
    }
    assert_eq!(domain.delivery_status().await.unwrap().undelivered, 3);
    assert_eq!(value(&handle, "protean_undelivered_events"), 3.0);
    let workers = domain.workers(WorkerConfig::default().poll_interval(Duration::from_millis(20))).start().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while value(&handle, "protean_undelivered_events") != 0.0 {
        assert!(tokio::time::Instant::now() < deadline, "the workers did not refresh the gauges");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(value(&handle, "protean_delivery_lag_seconds"), 0.0);
    let tally = domain.get(&id.cast::<model::Tally>()).await.unwrap().expect("tallied");
    assert_eq!(tally.total, 3);
    workers.shutdown().await;
}

/// The fulfilment flow of tests/support/shop.rs, in stock: the process manager sends
/// `ReserveStock`, then `ConfirmOrder`, each fired once.
async fn fired(store: Arc<dyn Store>) {
    use flow_shop::{PlaceOrder, Restock};
    let recorder = recorder();
    let handle = recorder.handle();
    let builder = Domain::builder().module(module_path!().to_string() + "::flow_shop").shared_store(store);
    let domain = metrics::with_local_recorder(&recorder, || builder.build()).expect("the model is valid");
    let (order_id, customer, sku) = (Identifier::generate(), Identifier::generate(), Identifier::generate());
    domain.process(Restock { sku: sku.clone(), quantity: 1 }).await.unwrap().all_delivered().unwrap();
    domain.process(PlaceOrder { order_id, customer, sku }).await.unwrap().all_delivered().unwrap();
    let scheduled = |command: &str, outcome: &str| {
        value(&handle, &format!("protean_scheduled_commands_total{{command=\"{command}\",outcome=\"{outcome}\"}}"))
    };
    assert_eq!(scheduled("Stock.ReserveStock", "fired"), 1.0);
    assert_eq!(scheduled("Order.ConfirmOrder", "fired"), 1.0);
    assert_eq!(scheduled("Order.ConfirmOrder", "refused"), 0.0);
    assert_eq!(scheduled("Order.ConfirmOrder", "failed"), 0.0);
    // Fired commands are not counted as given to `process`.
    let given = "protean_commands_total{command=\"Order.ConfirmOrder\",outcome=\"processed\"}";
    assert_eq!(value(&handle, given), 0.0);
}

/// `GET /metrics` of `examples/http_shop`, over real HTTP: the counts of a workload.
fn over_http() -> harness::Trial {
    harness::test("memory::http_shop_serves_the_counts_at_get_metrics", || async {
        let recorder = recorder();
        let store: Arc<dyn Store> = Arc::new(protean::store::MemoryStore::new());
        let domain = domain(store, DeliveryMode::Inline, &recorder);
        for _ in 0..3 {
            domain.process(Add { id: Identifier::generate(), by: 2 }).await.unwrap().all_delivered().unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router: axum::Router = shop_metrics::router(recorder.handle());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let text = response.text().await.unwrap();
        let samples = samples(&text);
        let processed = format!("protean_commands_total{{command=\"{ADD}\",outcome=\"processed\"}}");
        assert_eq!(samples.get(&processed), Some(&3.0), "{text}");
        assert_eq!(samples.get(&format!("protean_deliveries_total{{handler=\"{TALLY}\"}}")), Some(&3.0), "{text}");
        // A histogram, with the example's buckets, and its help line.
        assert!(text.contains("# TYPE protean_reaction_latency_seconds histogram"), "{text}");
        assert!(text.contains("# HELP protean_commands_total "), "{text}");
    })
}

fn main() -> ExitCode {
    let mut trials = harness::every_store("metrics", cases, 4);
    trials.push(over_http());
    harness::run(trials)
}
