//! The operations page (`protean::http`) in a real browser: Debian's chromium, headless,
//! loads the page from the router served on loopback, over a domain with a dead letter.
//! The test reads the rendered DOM (the handlers' rows, the dead letter's), presses the
//! dead letter's Redeliver button with a mouse click the browser dispatches, and checks
//! that the page reloads without it and that the handler got the event once. A
//! screenshot of the page before the click is saved as `target/ops-page.png`.
//!
//! The browser is driven over the DevTools protocol with a minimal client (a websocket,
//! JSON messages): a few dozen lines over tokio-tungstenite instead of a CDP crate, whose
//! generated protocol types take minutes to build in CI.
//!
//! Where `chromium` is missing the test says it is skipped, and why, and passes; with
//! `PROTEAN_REQUIRE_CHROMIUM=1` (as in CI) it fails instead.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use protean::http::ops_router;
use protean::prelude::*;
use protean::runtime::{DeliveryMode, RetryPolicy, WorkerConfig};
use protean::store::{MemoryStore, Store};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "support/relay.rs"]
#[allow(dead_code)]
mod relay;

use relay::*;

const AUDIT: &str = "Auditing::audit";

/// A domain whose auditor failed on one wallet's deposit until it was dead-lettered,
/// and whose bookkeeper got it.
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
    while domain.dead_letters().await.unwrap().is_empty() || domain.delivery_status().await.unwrap().undelivered > 0 {
        assert!(tokio::time::Instant::now() < deadline, "no dead letter in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    handle.shutdown().await;
    (domain, wallet)
}

/// Chromium, headless, with a profile of its own; killed and its profile removed when
/// dropped.
struct Browser {
    child: Child,
    profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Browser {
    /// Chromium showing `url`, or why it could not start.
    fn open(url: &str) -> Result<Browser, String> {
        let profile = std::env::temp_dir().join(format!("protean-ops-page-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&profile).map_err(|e| e.to_string())?;
        let child = Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1280,900"])
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()) // D-Bus complaints in a container
            .spawn()
            .map_err(|e| format!("`chromium` could not be started: {e}"))?;
        Ok(Browser { child, profile })
    }

    /// The DevTools port chromium chose, from the file it writes in its profile.
    async fn port(&mut self) -> u16 {
        let file = self.profile.join("DevToolsActivePort");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(port) = std::fs::read_to_string(&file).ok().and_then(|t| t.lines().next()?.parse().ok()) {
                return port;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("chromium exited before it listened: {status}");
            }
            assert!(tokio::time::Instant::now() < deadline, "chromium did not open its DevTools port in time");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A DevTools protocol session with one page.
struct Page {
    socket: Socket,
    next_id: u64,
}

impl Page {
    /// The session with the page chromium opened at `url`.
    async fn attach(port: u16, url: &str) -> Page {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let socket_url = loop {
            let list: Value = match reqwest::get(format!("http://127.0.0.1:{port}/json/list")).await {
                Ok(response) => response.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            let page = list.as_array().into_iter().flatten().find(|t| t["type"] == "page" && t["url"] == url);
            if let Some(socket) = page.and_then(|p| p["webSocketDebuggerUrl"].as_str()) {
                break socket.to_owned();
            }
            assert!(tokio::time::Instant::now() < deadline, "no page at {url} in {list}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (socket, _) = tokio_tungstenite::connect_async(socket_url).await.expect("connects to the page");
        Page { socket, next_id: 1 }
    }

    /// Sends `method` with `params` and waits for its answer: its `result`, or its `error`.
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({ "id": id, "method": method, "params": params });
        self.socket.send(Message::text(request.to_string())).await.expect("sends");
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method} in time"))
                .expect("the socket stays open")
                .expect("a message");
            let Message::Text(text) = message else { continue };
            let answer: Value = serde_json::from_str(&text).expect("JSON from chromium");
            if answer["id"] == id {
                return match answer.get("error") {
                    Some(error) => Err(error.clone()),
                    None => Ok(answer["result"].clone()),
                };
            }
        }
    }

    /// The value of a JavaScript expression in the page (`None` while the page is
    /// between documents, or when it throws).
    async fn eval(&mut self, expression: &str) -> Option<Value> {
        let params = json!({ "expression": expression, "returnByValue": true, "awaitPromise": true });
        let result = self.call("Runtime.evaluate", params).await.ok()?;
        if result.get("exceptionDetails").is_some() {
            return None;
        }
        Some(result["result"]["value"].clone())
    }

    /// Waits until `expression` is true in the page.
    async fn wait_for(&mut self, expression: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.eval(expression).await != Some(Value::Bool(true)) {
            if tokio::time::Instant::now() >= deadline {
                let shown = self.eval("location.href + ' ' + document.body.innerText.slice(0, 500)").await;
                panic!("not true in time: {expression}; the page: {shown:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the middle of the element `selector` names, with the mouse: the browser's
    /// own input events, as a user's click.
    async fn click(&mut self, selector: &str) {
        let expression = format!(
            "(() => {{ const e = document.querySelector({selector:?}); e.scrollIntoView(); \
             const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        );
        let point = self.eval(&expression).await.unwrap_or_else(|| panic!("no {selector} to click"));
        let (x, y) = (point[0].as_f64().unwrap(), point[1].as_f64().unwrap());
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            let params = json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 });
            self.call("Input.dispatchMouseEvent", params).await.expect("a mouse event");
        }
    }

    /// A PNG of the page as it is shown, saved at `path`.
    async fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" })).await.expect("a screenshot");
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        std::fs::write(path, png).expect("the screenshot is written");
    }
}

/// Where the screenshot goes: `target/ops-page.png` (or under `CARGO_TARGET_DIR`).
fn artifact() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"), PathBuf::from);
    std::fs::create_dir_all(&target).unwrap();
    target.join("ops-page.png")
}

fn main() -> ExitCode {
    // The dead letter is made on purpose: keep its failures off stderr.
    tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default()).unwrap();
    let trial = libtest_mimic::Trial::ignorable_test(
        "the_page_shows_handlers_and_a_dead_letter_and_its_redeliver_button_works",
        || Ok(harness::runtime().block_on(the_page_shows_handlers_and_a_dead_letter_and_its_redeliver_button_works())),
    );
    harness::run(vec![trial])
}

/// The test; ignored, with the reason, where chromium cannot be started (unless
/// `PROTEAN_REQUIRE_CHROMIUM=1`).
async fn the_page_shows_handlers_and_a_dead_letter_and_its_redeliver_button_works() -> libtest_mimic::Completion {
    let required = std::env::var("PROTEAN_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
    let (domain, wallet) = with_a_dead_letter().await;
    let event_id = domain.dead_letters().await.unwrap()[0].event.id;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ops", listener.local_addr().unwrap());
    let app = axum::Router::new().nest("/ops", ops_router(domain.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut browser = match Browser::open(&url) {
        Ok(browser) => browser,
        Err(why) if !required => {
            let why = format!("skipped: {why} (install Debian's `chromium`; PROTEAN_REQUIRE_CHROMIUM=1 fails instead)");
            eprintln!("{why}");
            return libtest_mimic::Completion::ignored_with(why);
        }
        Err(why) => panic!("{why}, and PROTEAN_REQUIRE_CHROMIUM=1 requires it"),
    };
    let port = browser.port().await;
    let mut page = Page::attach(port, &url).await;
    page.wait_for("document.readyState === 'complete' && !!document.querySelector('#handlers')").await;

    // The rendered DOM: a row per handler, the auditor's with its dead letter.
    let handlers = page
        .eval("[...document.querySelectorAll('#handlers tr.handler')].map(r => [...r.cells].map(c => c.textContent))")
        .await
        .expect("the handlers' rows");
    let rows = handlers.as_array().unwrap();
    let audit = rows.iter().find(|r| r[0] == AUDIT).unwrap_or_else(|| panic!("no row of {AUDIT}: {handlers}"));
    assert_eq!(audit[3], "1", "the auditor has one dead letter: {handlers}");
    assert!(rows.iter().any(|r| r[0] == "Bookkeeping::book" && r[1] == "1"), "{handlers}");
    let letters = page
        .eval("[...document.querySelectorAll('tr.dead-letter')].map(r => [r.dataset.handler, r.dataset.eventId, r.innerText])")
        .await
        .expect("the dead letters' rows");
    assert_eq!(letters.as_array().unwrap().len(), 1, "{letters}");
    assert_eq!((&letters[0][0], &letters[0][1]), (&json!(AUDIT), &json!(event_id.to_string())), "{letters}");
    let text = letters[0][2].as_str().unwrap();
    assert!(text.contains("Wallet.Deposited") && text.contains(&format!("Wallet/{wallet}")), "{text}");
    page.screenshot(&artifact()).await;

    // Fixed, then redelivered by a click in the page: it reloads without the dead letter.
    fail_audits(&wallet, 0);
    page.click("tr.dead-letter button.redeliver").await;
    page.wait_for("document.readyState === 'complete' && !!document.querySelector('#no-dead-letters')").await;
    let dead = page.eval("document.querySelector('#summary').textContent").await.unwrap();
    assert!(dead.as_str().unwrap().contains("0 dead"), "{dead}");
    assert_eq!(domain.get(&wallet.cast::<Audit>()).await.unwrap().map(|a| a.numbers), Some(vec![1]));
    assert!(domain.dead_letters().await.unwrap().is_empty());
    libtest_mimic::Completion::Completed
}
