//! Concurrent clients for the multi-client round-trip benches: tasks on the current
//! tokio runtime, each running its share of the commands back to back.

use std::time::{Duration, Instant};

/// `iters` commands spread over `clients` clients, each client running its share back to back.
pub async fn clients<F, Fut>(clients: u64, iters: u64, run: F) -> Duration
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let run = run.clone();
            tokio::spawn(async move {
                let mut n = client;
                while n < iters {
                    run(n).await;
                    n += clients;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a client");
    }
    start.elapsed()
}
