//! The e-commerce example's `ops` commands run as real processes (the example's
//! binary, built next to this test by `cargo test --workspace`), against SQLite (a file in a
//! temporary folder) and PostgreSQL (a new database; ignored, with the reason, when
//! `PROTEAN_POSTGRES_URL` is not set, and failing without it when
//! `PROTEAN_REQUIRE_POSTGRES=1`).
//!
//! One scenario per store: `migrate` and `migrate --check` on a schema set back by hand;
//! a run whose loyalty handler fails (`ECOMMERCE_FAIL_POINTS`) until its events are
//! dead-lettered; list, show, replay (delivered once), `replay --all`; a projection
//! rebuilt with `--dry-run` (nothing changes) and for real (progress lines, the same
//! rows); the fulfilment chain in `events trace`; `events tail` stopped by a real Ctrl-C
//! (SIGINT); `--json` that parses; clap's usage error; unknown ids.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use libtest_mimic::{Arguments, Completion, Trial};
use serde_json::Value;

#[path = "../examples/ecommerce/model.rs"]
#[allow(dead_code)]
mod model;

const AWARD: &str = "LoyaltyReactions::award_points";

/// The example's binary: `target/<profile>/examples/ecommerce`, beside this test's
/// `target/<profile>/deps/`.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let profile = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps/<test>");
    let binary = profile.join("examples").join(format!("ecommerce{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: `cargo test --workspace` builds it with the examples' package (a run of this test alone does \
         not: `cargo build -p protean-examples --example ecommerce` first, with `--features postgres` for PostgreSQL)",
        binary.display()
    );
    binary
}

/// What a run of the example printed, and how it ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn of(output: Output) -> Run {
        let run = Run {
            code: output.status.code().expect("exited, not killed"),
            stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
        };
        assert!(!run.stderr.contains("panicked"), "a panic:\n{}", run.stderr);
        run
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }

    fn expect(self, code: i32) -> Run {
        assert_eq!(self.code, code, "exit code\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// `ecommerce --database URL ops ARGS`, without the fault switch.
fn ops(url: &str, args: &[&str]) -> Run {
    let output = Command::new(binary())
        .args(["--database", url, "ops"])
        .args(args)
        .env_remove(model::FAIL_POINTS)
        .output()
        .expect("the example runs");
    Run::of(output)
}

/// The whole scenario against the store at `url`; `set_back` sets the stored schema
/// version one back.
fn scenario(url: &str, set_back: impl FnOnce()) {
    // migrate, and a deploy gate on a schema set back by hand.
    let migrated = ops(url, &["--json", "migrate"]).expect(0).json();
    assert_eq!(migrated["state"], "current", "{migrated}");
    assert_eq!(migrated["migrated_from"], 0, "{migrated}");
    ops(url, &["migrate", "--check"]).expect(0);
    set_back();
    let behind = ops(url, &["migrate", "--check"]).expect(5);
    assert!(behind.stdout.contains("behind") && behind.stdout.contains("run `ops migrate`"), "{}", behind.stdout);
    assert_eq!(ops(url, &["--json", "migrate", "--check"]).expect(5).json()["state"], "behind");
    let upgraded = ops(url, &["migrate"]).expect(0);
    assert!(upgraded.stdout.contains("migrated the schema from version"), "{}", upgraded.stdout);
    ops(url, &["migrate", "--check"]).expect(0);

    // A run in the background whose loyalty handler keeps failing.
    let run = Command::new(binary())
        .args(["--database", url, "--background", "--restock-wait-ms", "300"])
        .env(model::FAIL_POINTS, "1")
        .output()
        .expect("the example runs");
    let run = Run::of(run).expect(0);
    assert!(run.stdout.contains("dead letter(s)"), "{}", run.stdout);
    let status = ops(url, &["--json", "status"]).expect(4).json();
    let dead = status["dead"].as_u64().expect("a count");
    assert!(dead >= 4, "every order's points are dead: {status}");

    let letters = ops(url, &["--json", "dead-letters", "list", "--handler", AWARD]).expect(0).json();
    let letters = letters.as_array().expect("a list").clone();
    assert_eq!(letters.len() as u64, dead);
    let letter = &letters[0];
    assert_eq!(letter["attempts"], 2);
    assert!(letter["last_error"].as_str().unwrap().contains("the loyalty service is down"), "{letter}");
    let event_id = letter["event_id"].as_str().unwrap().to_owned();
    let stream = letter["stream"].as_str().unwrap().to_owned();
    let by_stream = ops(url, &["--json", "dead-letters", "list", "--stream", &stream]).expect(0).json();
    assert_eq!(by_stream.as_array().map(Vec::len), Some(1), "{by_stream}");

    let shown = ops(url, &["dead-letters", "show", &event_id]).expect(0).stdout;
    for line in ["handler:   LoyaltyReactions::award_points", "attempts:  2", "first:     ", "last:      "] {
        assert!(shown.contains(line), "`{line}` in:\n{shown}");
    }

    // The conversation of that order, whole: placed, stock reserved, confirmed by the
    // command the fulfilment flow sent.
    let correlation = letter["correlation_id"].as_str().unwrap().to_owned();
    let trace = ops(url, &["--json", "events", "trace", &correlation]).expect(0).json();
    let mut types = Vec::new();
    fn walk(events: &Value, types: &mut Vec<String>) {
        for event in events.as_array().into_iter().flatten() {
            types.push(event["event_type"].as_str().unwrap().to_owned());
            walk(&event["caused"], types);
        }
    }
    for command in trace["commands"].as_array().unwrap() {
        walk(&command["events"], &mut types);
    }
    for expected in ["Order.OrderPlaced", "Inventory.StockReserved", "Order.OrderConfirmed"] {
        assert!(types.iter().any(|t| t == expected), "{expected} in the trace {types:?}:\n{trace}");
    }
    assert_eq!(trace["commands"][0]["command_id"].as_str(), Some(correlation.as_str()));
    assert!(trace["commands"].as_array().unwrap().len() >= 2, "a command a process manager sent: {trace}");
    let text = ops(url, &["events", "trace", &correlation]).expect(0).stdout;
    assert!(text.starts_with(&format!("command {correlation}\n  Order.OrderPlaced")), "{text}");

    // Fixed (the switch is off): replayed, delivered once.
    let replayed = ops(url, &["--json", "dead-letters", "replay", &event_id]).expect(0).json();
    assert_eq!(replayed["delivered"][0]["handler"], AWARD, "{replayed}");
    assert_eq!(replayed["delivered"][0]["event_id"].as_str(), Some(event_id.as_str()));
    let again = ops(url, &["dead-letters", "replay", &event_id]).expect(3);
    assert_eq!(again.stdout.trim(), format!("error: no dead letter for event {event_id}"));
    let customer = letter["payload"]["customer_id"].as_str().unwrap();
    let loyalty = ops(url, &["--json", "events", "read", &format!("CustomerLoyalty/{customer}")]).expect(0).json();
    let points_for = |loyalty: &Value| {
        loyalty.as_array().unwrap().iter().filter(|e| e["causation_id"].as_str() == Some(event_id.as_str())).count()
    };
    assert_eq!(points_for(&loyalty), 1, "one award for the replayed order: {loyalty}");
    let rest = ops(url, &["--json", "dead-letters", "replay", "--all", "--handler", AWARD]).expect(0).json();
    assert_eq!(rest["delivered"].as_array().map(Vec::len), Some(letters.len() - 1), "{rest}");
    ops(url, &["status"]).expect(0);
    let loyalty = ops(url, &["--json", "events", "read", &format!("CustomerLoyalty/{customer}")]).expect(0).json();
    assert_eq!(points_for(&loyalty), 1, "still once: {loyalty}");

    // A projection rebuilt: a dry run changes nothing; a real one reports progress on
    // stderr and ends with the rows the projector kept incrementally.
    let rows_before = credit_rows(url);
    let generation =
        |url: &str| ops(url, &["--json", "projections", "status"]).expect(0).json()[0]["generation"].clone();
    let serving = generation(url);
    let plan = ops(url, &["--json", "projections", "rebuild", "CustomerCreditView", "--dry-run"]).expect(0).json();
    assert!(plan["events"].as_u64().unwrap() > 0, "{plan}");
    assert_eq!(generation(url), serving, "a dry run changes nothing");
    let rebuilt = ops(url, &["projections", "rebuild", "CustomerCreditView"]).expect(0);
    assert!(rebuilt.stderr.lines().any(|l| l.starts_with("rebuild CustomerCreditView: ")), "{}", rebuilt.stderr);
    assert!(rebuilt.stdout.contains("serves reads"), "{}", rebuilt.stdout);
    assert_ne!(generation(url), serving, "the new copy serves");
    assert_eq!(credit_rows(url), rows_before, "the rebuilt rows are the incremental ones");

    // The log, followed from its start for three events, one JSON document a line.
    let tail = ops(url, &["--json", "events", "tail", "--from", "0", "--limit", "3"]).expect(0);
    let positions: Vec<u64> =
        tail.stdout.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["position"].as_u64().unwrap()).collect();
    assert_eq!(positions.len(), 3, "{}", tail.stdout);
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    interrupted_tail(url);

    let model = ops(url, &["model", "export", "--format", "json"]).expect(0).json();
    assert!(model.is_object(), "{model}");
    ops(url, &["check"]).expect(0);
    ops(url, &["--json", "scheduled", "list"]).expect(0).json();

    // Bad arguments: clap's usage error. Unknown ids: a clear error, never a panic.
    let usage = ops(url, &["dead-letters", "show", "not-a-uuid"]).expect(2);
    assert!(usage.stderr.starts_with("error: invalid value 'not-a-uuid'"), "{}", usage.stderr);
    let usage = ops(url, &["no-such-command"]).expect(2);
    assert!(usage.stderr.contains("Usage: ecommerce ops"), "{}", usage.stderr);
    let unknown = "01a25265-0000-7000-8000-000000000000";
    let missing = ops(url, &["dead-letters", "show", unknown]).expect(3);
    assert_eq!(missing.stdout.trim(), format!("error: no dead letter for event {unknown}"));
    let missing = ops(url, &["--json", "events", "trace", unknown]).expect(3).json();
    assert!(missing["error"].as_str().unwrap().contains(unknown), "{missing}");
    ops(url, &["scheduled", "cancel", unknown]).expect(3);
    let projection = ops(url, &["projections", "rebuild", "NoSuchView"]).expect(3);
    assert!(projection.stdout.contains("CustomerCreditView"), "the known ones are listed: {}", projection.stdout);
}

/// `ops events tail` following the log until Ctrl-C: a real SIGINT ends it cleanly
/// (exit 0, what it printed stands), not by the signal's default of killing the process.
/// The same handler stops `ops projections rebuild`.
fn interrupted_tail(url: &str) {
    use std::io::BufRead;
    let mut child = Command::new(binary())
        .args(["--database", url, "ops", "events", "tail", "--from", "0"])
        .env_remove(model::FAIL_POINTS)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example runs");
    // A first line: the tail is following (and listening for Ctrl-C) by then.
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("a line");
    assert!(!first.is_empty(), "the tail printed nothing");
    let interrupted = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(interrupted.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the tail did not stop within 10 s of Ctrl-C");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut stderr).expect("stderr");
    assert_eq!(status.code(), Some(0), "stopped cleanly by Ctrl-C, not killed: {status:?}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The rows of `CustomerCreditView` as JSON, read by a domain of this test's own.
fn credit_rows(url: &str) -> Vec<Value> {
    runtime().block_on(async {
        let store = protean::store::connect(url).await.expect("the store opens");
        let domain = protean::runtime::Domain::builder()
            .module(module_path!().to_string() + "::model")
            .shared_store(store)
            .build()
            .expect("the e-commerce model is valid");
        let rows = domain.query::<model::CustomerCreditView>().limit(10_000).fetch().await.expect("the rows");
        let mut rows: Vec<Value> = rows.iter().map(|row| serde_json::to_value(row).expect("JSON")).collect();
        rows.sort_by_key(|row| row["customer_id"].to_string());
        domain.close().await.expect("closes");
        rows
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

fn sqlite() -> Trial {
    Trial::test("sqlite::ops_commands_in_a_real_process", || {
        let dir = std::env::temp_dir().join(format!("protean-ops-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let file = dir.join("shop.db");
        let _ = std::fs::remove_file(&file);
        let url = format!("sqlite:{}", file.display());
        scenario(&url, || {
            let connection = rusqlite::Connection::open(&file).expect("the file opens");
            let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
            connection.pragma_update(None, "user_version", version - 1).expect("set back");
        });
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
}

#[cfg(feature = "postgres")]
fn postgres() -> Trial {
    Trial::ignorable_test("postgres::ops_commands_in_a_real_process", || {
        let Ok(server) = std::env::var("PROTEAN_POSTGRES_URL") else {
            assert!(
                std::env::var("PROTEAN_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "PROTEAN_REQUIRE_POSTGRES=1 but PROTEAN_POSTGRES_URL is not set"
            );
            return Ok(Completion::ignored_with("no PostgreSQL server: PROTEAN_POSTGRES_URL is not set"));
        };
        let name = format!("protean_ops_{}", uuid::Uuid::now_v7().simple());
        runtime().block_on(async {
            let admin = sqlx::PgPool::connect(&server).await.expect("PROTEAN_POSTGRES_URL answers");
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("a test database");
        });
        let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        scenario(&url, || {
            runtime().block_on(async {
                let pool = sqlx::PgPool::connect(&url).await.expect("the database answers");
                sqlx::query("UPDATE protean_schema SET version = version - 1").execute(&pool).await.expect("set back");
                pool.close().await;
            })
        });
        Ok(Completion::Completed)
    })
}

#[cfg(not(feature = "postgres"))]
fn postgres() -> Trial {
    Trial::ignorable_test("postgres::ops_commands_in_a_real_process", || {
        Ok(Completion::ignored_with("the examples are built without the `postgres` feature"))
    })
}

fn main() -> std::process::ExitCode {
    libtest_mimic::run(&Arguments::from_args(), vec![sqlite(), postgres()]).exit_code()
}
