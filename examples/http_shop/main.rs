//! The e-commerce domain of `examples/ecommerce` behind HTTP, with axum, on the
//! embedded SQLite store: `POST` a command, `GET` an aggregate, `GET /metrics` for
//! Prometheus (`metrics.rs`). The routes and the status-code mapping are documented in
//! `app.rs`.
//!
//! ```sh
//! cargo run --example http_shop --features http      # 127.0.0.1:3000, http_shop.db in the temp dir
//! cargo run --example http_shop --features http -- --addr 127.0.0.1:8080 --database shop.db
//! ```
//!
//! `--addr` (or `HTTP_SHOP_ADDR`) is where it listens, `--database` (or
//! `HTTP_SHOP_DATABASE`) the SQLite file it keeps its data in, from one run to the next.
//! Ctrl-C stops it after the requests under way are answered, and closes the store.

#[path = "../ecommerce/model.rs"]
pub mod model;

pub mod app;
pub mod metrics;

/// The value of `--flag VALUE`, else of the environment variable `env`.
fn setting(args: &[String], flag: &str, env: &str) -> Option<String> {
    let given = args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1).cloned());
    given.or_else(|| std::env::var(env).ok())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().collect();
    let addr = setting(&args, "--addr", "HTTP_SHOP_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into());
    let database = setting(&args, "--database", "HTTP_SHOP_DATABASE")
        .map_or_else(|| std::env::temp_dir().join("http_shop.db"), std::path::PathBuf::from);

    // The recorder goes in before the domain is built: the domain registers its metrics then.
    let scrape = metrics::builder().install_recorder()?;
    let upkeep = scrape.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            upkeep.run_upkeep(); // drains the histograms' samples between scrapes
        }
    });

    let domain = app::domain(app::SqliteStore::open(&database)?)?;
    // Events a previous run committed but did not deliver (it was stopped) go out first.
    let pending = domain.deliver_pending().await?;
    let (delivered, failed) = (pending.events.len(), pending.failures.len());
    println!("store: {}; {delivered} pending event(s) delivered, {failed} failed", database.display());

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app::router(domain.clone()).merge(metrics::router(scrape)))
        .with_graceful_shutdown(async {
            // Without a Ctrl-C handler there is nothing to wait for: run until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await?;
    // The requests are answered: the WAL is checkpointed into the file, and removed.
    domain.close().await?;
    println!("stopped");
    Ok(())
}
