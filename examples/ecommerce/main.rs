//! The e-commerce flow of "Design Small Aggregates", end to end:
//! `PlaceOrder` → `OrderPlaced` → stock reserved by an `Inventory` handler → loyalty
//! points added by a `CustomerLoyalty` handler; an order the stock cannot serve gets the
//! compensating outcome of "Aggregate Boundaries in Go": it waits for a restock.
//!
//! `cargo run --example ecommerce` runs it on SQLite, in the file `ecommerce.db` (the
//! embedded default; the data is kept from one run to the next). `-- --database URL`
//! (or `PROTEAN_DATABASE_URL`) chooses another store: `postgres://user@host/db` for
//! PostgreSQL (built with `--features postgres`), `memory:` for none. `-- --write-model DIR` also writes the model as
//! `ecommerce.mmd` (Mermaid), `ecommerce.dot` (Graphviz) and `ecommerce.json`.
//!
//! `-- --background` delivers the reactions in the background: `process` returns once
//! the order is committed, and delivery workers started in this process reserve the
//! stock and add the points (with retries, and dead letters for what keeps failing).

pub mod model;

use std::time::Duration;

use protean::prelude::*;
use protean::runtime::{DeliveryMode, WorkerConfig};

use model::*;

/// Waits until the workers have delivered everything committed so far (background mode).
async fn drained(domain: &Domain) -> Result<(), Box<dyn std::error::Error>> {
    if domain.delivery_mode() == DeliveryMode::Inline {
        return Ok(());
    }
    for _ in 0..2_000 {
        let status = domain.delivery_status().await?;
        if status.undelivered == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err("the workers did not deliver within 10 s".into())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .iter()
        .position(|a| a == "--database")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("PROTEAN_DATABASE_URL").ok())
        .unwrap_or_else(|| "sqlite:ecommerce.db".into());
    let background = args.iter().any(|a| a == "--background");
    let mode = if background { DeliveryMode::Background } else { DeliveryMode::Inline };
    let store = protean::store::connect(&url).await?;
    let domain = Domain::builder().module("ecommerce::model").shared_store(store).delivery(mode).build()?;
    // Events a previous run committed but did not deliver (it was stopped) go out first:
    // inline, right here; in the background, the workers take them.
    let workers = if background {
        println!("store: {url}; reactions delivered by background workers");
        Some(domain.workers(WorkerConfig::default()).start()?)
    } else {
        let pending = domain.deliver_pending().await?.events;
        println!("store: {url}; {} pending event(s) delivered", pending.len());
        None
    };

    if let Some(dir) = args.iter().position(|a| a == "--write-model").and_then(|i| args.get(i + 1)) {
        std::fs::create_dir_all(dir)?;
        std::fs::write(format!("{dir}/ecommerce.mmd"), domain.model().to_mermaid())?;
        std::fs::write(format!("{dir}/ecommerce.dot"), domain.model().to_dot())?;
        std::fs::write(format!("{dir}/ecommerce.json"), format!("{:#}\n", domain.model().to_json()))?;
        println!("wrote the model to {dir}/ecommerce.{{mmd,dot,json}}");
    }
    println!("{} elements, {} handler methods", domain.model().elements().len(), domain.model().handlers().len());

    let book = Identifier::<Inventory>::parse("BOOK-1")?;
    let pen = Identifier::<Inventory>::parse("PEN-1")?;
    domain.process(Restock { sku: book.clone(), quantity: 5 }).await?.all_delivered()?;
    domain.process(Restock { sku: pen.clone(), quantity: 1 }).await?.all_delivered()?;

    let ada = Identifier::<Customer>::generate();
    let place = |lines: Vec<OrderLine>| PlaceOrder {
        order_id: Identifier::generate(),
        customer_id: ada.clone(),
        customer_name: "Ada".into(),
        customer_email: "ada@example.com".into(),
        lines,
        shipping_address: None,
    };

    // Enough stock: the order is placed, stock reserved, points added; three transactions.
    let first = place(vec![OrderLine::new("BOOK-1", 2, Money::new(1250, "EUR")?)?]);
    let first_id = first.order_id.clone();
    let processed = domain.process(first).await?;
    drained(&domain).await?;
    println!("order {first_id}: {}", processed.event_types().join(" → "));

    // Not enough pens: the reservation fails and the order waits for a restock.
    let second = place(vec![OrderLine::new("PEN-1", 3u32, Money::new(300, "EUR")?)?]);
    let second_id = second.order_id.clone();
    let processed = domain.process(second).await?;
    drained(&domain).await?;
    println!("order {second_id}: {}", processed.event_types().join(" → "));
    for event in &processed.events {
        println!("  {} #{} of {} (caused by {})", event.type_name, event.sequence, event.stream, event.causation_id);
    }

    let order = |id| domain.get::<Order>(id);
    println!("first order is {}, second is {}", order(&first_id).await?.ok_or("gone")?.status, {
        order(&second_id).await?.ok_or("gone")?.status
    });
    let books = domain.get::<Inventory>(&book).await?.ok_or("no stock")?; // kept across runs
    println!("BOOK-1: {} available, {} reserved", books.available, books.reserved);
    let loyalty = domain.get::<CustomerLoyalty>(&ada.cast()).await?.ok_or("no account")?;
    println!("Ada has {} loyalty points", loyalty.points);

    // A command with bad fields is refused before any handler runs, every field at once.
    let refused = domain.process(PlaceOrder { customer_name: String::new(), ..place(vec![]) }).await;
    if let Err(error) = refused {
        println!("refused: {error}");
    }
    // A business rule refuses a command in its handler; nothing is written.
    let again = PlaceOrder {
        order_id: first_id.clone(),
        ..place(vec![OrderLine::new("BOOK-1", 1, Money::new(1250, "EUR")?)?])
    };
    if let Err(error) = domain.process(again).await {
        println!("refused: {error}");
    }

    // A client retrying a request sends the same command id: the command runs once.
    let request = Uuid::now_v7();
    let third = place(vec![OrderLine::new("BOOK-1", 1, Money::new(1250, "EUR")?)?]);
    domain.process_with(third.clone(), request, None).await?.all_delivered()?;
    domain.process_with(third.clone(), request, None).await?.all_delivered()?;
    drained(&domain).await?;
    let books = domain.get::<Inventory>(&book).await?.ok_or("no stock")?;
    println!("the same request twice: one order; BOOK-1 has {} reserved", books.reserved);

    if let Some(workers) = workers {
        let report = workers.shutdown().await;
        println!("workers: {} event(s) delivered, {} dead letter(s)", report.events, report.dead_lettered);
    }
    Ok(())
}
