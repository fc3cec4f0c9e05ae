//! The e-commerce flow of "Design Small Aggregates", end to end:
//! `PlaceOrder` → `OrderPlaced` → stock reserved by an `Inventory` handler → loyalty
//! points added by a `CustomerLoyalty` handler; an order the stock cannot serve gets the
//! compensating outcome of "Aggregate Boundaries in Go": it waits for a restock.
//!
//! On top of it, the two answers the articles give when one aggregate needs another:
//!
//! * **Option 3, a read model**: `PlaceOrder` reads the customer's `CustomerCreditView`
//!   (an inline projection of the customer's credit events and orders) and refuses the
//!   order of a customer whose credit is suspended, or who would go over the limit.
//! * **A process manager**, `Fulfilment`: once every line is reserved it confirms the
//!   order; an order waiting for a restock gets a deadline, which a restock in time
//!   cancels; at the deadline the order is cancelled, and the flow withdraws the loyalty
//!   points it earned and releases its stock.
//!
//! `cargo run --example ecommerce` runs it on SQLite, in the file `ecommerce.db` (the
//! embedded default; the data is kept from one run to the next). `-- --database URL`
//! (or `PROTEAN_DATABASE_URL`) chooses another store: `postgres://user@host/db` for
//! PostgreSQL (built with `--features postgres`), `memory:` for none. `-- --write-model DIR` also writes the model as
//! `ecommerce.mmd` (Mermaid), `ecommerce.dot` (Graphviz) and `ecommerce.json`.
//!
//! `-- ops <command>` runs an operations command of `protean::cli` against the same
//! store instead of the run: `cargo run --example ecommerce -- ops status`, `-- ops
//! dead-letters list`, `-- --database URL ops migrate --check` (see docs/operations.md).
//! Setting [`FAIL_POINTS`](model::FAIL_POINTS) (`ECOMMERCE_FAIL_POINTS=1`) makes the
//! loyalty handler fail, with two attempts 10 ms apart, so that a run in the background
//! leaves dead letters to operate on.
//!
//! `-- --background` delivers the reactions in the background: `process` returns once
//! the order is committed, and delivery workers started in this process reserve the
//! stock, add the points, move the fulfilment flows on and fire their commands and
//! deadlines (with retries, and dead letters for what keeps failing).
//!
//! An order waits a day for a restock; inline, the run lets that day pass with
//! `Domain::fire_due_commands_at`. In the background the workers fire the deadline when
//! it is due, so the run makes it short ([`BACKGROUND_RESTOCK_WAIT`]); `--
//! --restock-wait-ms N` sets it in either mode.

pub mod model;

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use protean::cli::Ops;
use protean::prelude::*;
use protean::runtime::{DeliveryMode, RetryPolicy, WorkerConfig};
use protean::store::OffsetDateTime;

use model::*;

/// How long an order waits for a restock with `--background`, unless
/// `--restock-wait-ms` says otherwise: short, so that the run sees a deadline pass.
pub const BACKGROUND_RESTOCK_WAIT: Duration = Duration::from_secs(1);

/// Waits until the workers have delivered everything committed so far (background mode).
async fn drained(domain: &Domain) -> Result<(), Box<dyn Error>> {
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

/// The fulfilment flow of `order` once it is at one of `stages` with every command it
/// sent fired (deadlines may be pending). Inline, that is so when `process` returns; in
/// the background the workers move it on, and this waits for them (up to 10 s).
async fn flow_at(
    domain: &Domain,
    order: &Identifier<Order>,
    stages: &[FulfilmentStage],
) -> Result<Fulfilment, Box<dyn Error>> {
    let key = order.to_string();
    let mut last = None;
    for _ in 0..2_000 {
        drained(domain).await?;
        if let Some((flow, _ended)) = domain.flow::<Fulfilment>(&key).await? {
            let sent = domain.pending_commands::<Fulfilment>(&key).await?;
            if stages.contains(&flow.stage) && sent.iter().all(|command| command.name.is_some()) {
                return Ok(flow);
            }
            last = Some(flow.stage);
        }
        if domain.delivery_mode() == DeliveryMode::Inline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(format!("the fulfilment of order {order} is at {last:?}, not at one of {stages:?}").into())
}

/// A duration as people read it: `24 h`, `800 ms`.
fn span(duration: Duration) -> String {
    if duration >= Duration::from_secs(3600) {
        format!("{:.0} h", duration.as_secs_f64() / 3600.0)
    } else {
        format!("{} ms", duration.as_millis())
    }
}

/// On hand and not promised, of a SKU (0 when it was never stocked).
async fn free(domain: &Domain, sku: &Identifier<Inventory>) -> Result<u32, Box<dyn Error>> {
    Ok(domain.get::<Inventory>(sku).await?.map_or(0, |stock| stock.free()))
}

/// A customer's loyalty points (0 before the first order).
async fn points(domain: &Domain, customer: &Identifier<Customer>) -> Result<u64, Box<dyn Error>> {
    Ok(domain.get::<CustomerLoyalty>(&customer.cast()).await?.map_or(0, |loyalty| loyalty.points))
}

/// The order's status and the types of the events its stream holds, for printing.
async fn story(domain: &Domain, order: &Identifier<Order>) -> Result<String, Box<dyn Error>> {
    let status = domain.get::<Order>(order).await?.ok_or("no such order")?.status;
    let events = domain.events_of(order).await?;
    let types: Vec<&str> = events.iter().map(|e| e.type_name.trim_start_matches("Order.")).collect();
    Ok(format!("{status} ({})", types.join(" → ")))
}

/// The example's command line: the run's options, or `ops <command>`.
#[derive(Parser)]
#[command(name = "ecommerce", about = "The e-commerce flow of \"Design Small Aggregates\", and its operations")]
struct Cli {
    /// The store: `sqlite:PATH`, `postgres://…`, `memory:` (or `PROTEAN_DATABASE_URL`).
    #[arg(long, global = true)]
    database: Option<String>,
    /// Delivers the reactions with background workers.
    #[arg(long)]
    background: bool,
    /// How long an order waits for a restock, in milliseconds.
    #[arg(long)]
    restock_wait_ms: Option<u64>,
    /// Also writes the model to this folder (Mermaid, Graphviz, JSON).
    #[arg(long)]
    write_model: Option<String>,
    /// An operations command instead of the run.
    #[command(subcommand)]
    command: Option<Command>,
}

/// What the example can do besides its run.
#[derive(Subcommand)]
enum Command {
    /// Operates the store: `ops status`, `ops dead-letters list`, `ops migrate --check`, ...
    Ops(Ops),
}

/// The e-commerce domain on `store`, delivering in `mode`; with [`FAIL_POINTS`] set,
/// retried twice, 10 ms apart, before a dead letter.
fn domain(store: std::sync::Arc<dyn protean::store::Store>, mode: DeliveryMode) -> Result<Domain, Box<dyn Error>> {
    let mut builder = Domain::builder().module("ecommerce::model").shared_store(store).delivery(mode);
    if std::env::var_os(FAIL_POINTS).is_some() {
        builder =
            builder.retry_policy(RetryPolicy::default().max_attempts(2).initial_backoff(Duration::from_millis(10)));
    }
    Ok(builder.build()?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<ExitCode, Box<dyn Error>> {
    let cli = Cli::parse();
    let url = cli
        .database
        .clone()
        .or_else(|| std::env::var("PROTEAN_DATABASE_URL").ok())
        .unwrap_or_else(|| "sqlite:ecommerce.db".into());
    if let Some(Command::Ops(ops)) = cli.command {
        let open = || async {
            let store = protean::store::connect(&url).await?;
            domain(store, DeliveryMode::Inline)
        };
        let exit = ops.run_with(&url, open, &mut std::io::stdout()).await;
        return Ok(exit.into());
    }
    run(cli, &url).await?;
    Ok(ExitCode::SUCCESS)
}

/// The example's run.
async fn run(cli: Cli, url: &str) -> Result<(), Box<dyn Error>> {
    let background = cli.background;
    let mode = if background { DeliveryMode::Background } else { DeliveryMode::Inline };
    let wait = match cli.restock_wait_ms {
        Some(ms) => Duration::from_millis(ms),
        None if background => BACKGROUND_RESTOCK_WAIT,
        None => restock_wait(),
    };
    set_restock_wait(wait);
    let store = protean::store::connect(url).await?;
    let domain = domain(store, mode)?;
    // A projection this code declares over events an earlier run stored (or at a new
    // version) is built from the event log first.
    for report in domain.rebuild_outdated().await? {
        println!("rebuilt {} from {} event(s)", report.projection, report.events);
    }
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

    if let Some(dir) = cli.write_model {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(format!("{dir}/ecommerce.mmd"), domain.model().to_mermaid())?;
        std::fs::write(format!("{dir}/ecommerce.dot"), domain.model().to_dot())?;
        std::fs::write(format!("{dir}/ecommerce.json"), format!("{:#}\n", domain.model().to_json()))?;
        println!("wrote the model to {dir}/ecommerce.{{mmd,dot,json}}");
    }
    println!("{} elements, {} handler methods", domain.model().elements().len(), domain.model().handlers().len());

    // Stock is kept across runs (on SQLite); pens and ink are stocked on the first run only.
    let book = Identifier::<Inventory>::parse("BOOK-1")?;
    let pen = Identifier::<Inventory>::parse("PEN-1")?;
    let ink = Identifier::<Inventory>::parse("INK-1")?;
    domain.process(Restock { sku: book.clone(), quantity: 5 }).await?.all_delivered()?;
    for sku in [&pen, &ink] {
        if domain.get::<Inventory>(sku).await?.is_none() {
            domain.process(Restock { sku: sku.clone(), quantity: 1 }).await?.all_delivered()?;
        }
    }

    let ada = Identifier::<Customer>::generate();
    let bob = Identifier::<Customer>::generate();
    let register = |customer_id: &Identifier<Customer>, name: &str| RegisterCustomer {
        customer_id: customer_id.clone(),
        name: name.into(),
        email: format!("{}@example.com", name.to_lowercase()),
    };
    domain.process(register(&ada, "Ada")).await?.all_delivered()?;
    domain.process(SetCreditLimit { customer_id: ada.clone(), limit_cents: 50_000 }).await?.all_delivered()?;
    domain.process(register(&bob, "Bob")).await?.all_delivered()?;
    let reason = "two unpaid invoices".to_string();
    domain.process(SuspendCredit { customer_id: bob.clone(), reason }).await?.all_delivered()?;

    let order_of = |customer_id: &Identifier<Customer>, lines: Vec<OrderLine>| PlaceOrder {
        order_id: Identifier::generate(),
        customer_id: customer_id.clone(),
        customer_name: (if *customer_id == bob { "Bob" } else { "Ada" }).into(),
        customer_email: "customer@example.com".into(),
        lines,
        shipping_address: None,
    };
    let line = |sku: &Identifier<Inventory>, quantity: u32, cents: i64| -> Result<OrderLine, ValidationError> {
        OrderLine::new(sku.to_string(), quantity, Money::new(cents, "EUR")?)
    };

    // Option 3: the order handler reads the customer's credit from a read model. The
    // projection is inline, so the suspension just committed is already there.
    println!("— the customer's credit, read by the order handler (Option 3)");
    if let Err(error) = domain.process(order_of(&bob, vec![line(&book, 1, 1250)?])).await {
        println!("Bob's order refused: {error}");
    }
    if let Err(error) = domain.process(order_of(&ada, vec![line(&book, 41, 1250)?])).await {
        println!("Ada's order of 41 books refused: {error}");
    }
    let suspended = domain
        .query::<CustomerCreditView>()
        .filter(CustomerCreditView::SUSPENDED.eq(true))
        .order_by_desc(CustomerCreditView::OUTSTANDING_CENTS)
        .limit(5)
        .fetch()
        .await?;
    println!("customers with suspended credit (up to 5): {}", suspended.len());
    domain.process(RestoreCredit { customer_id: bob.clone() }).await?.all_delivered()?;
    let bobs = order_of(&bob, vec![line(&book, 1, 1250)?]);
    let bobs_id = bobs.order_id.clone();
    domain.process(bobs).await?.all_delivered()?;
    flow_at(&domain, &bobs_id, &[FulfilmentStage::Confirmed]).await?;
    println!("Bob's credit restored: his order is {}", story(&domain, &bobs_id).await?);

    println!("— fulfilment: a process manager across Order, Inventory and CustomerLoyalty");
    // Enough stock: placed, reserved, confirmed; each step its own transaction.
    let first = order_of(&ada, vec![line(&book, 2, 1250)?]);
    let first_id = first.order_id.clone();
    let processed = domain.process(first).await?;
    println!("order {first_id}: {}", processed.event_types().join(" → "));
    flow_at(&domain, &first_id, &[FulfilmentStage::Confirmed]).await?;
    println!("  then the flow confirmed it: {}", story(&domain, &first_id).await?);

    // Not enough pens: the order waits for a restock, with a deadline; pens arrive in time.
    let pens = free(&domain, &pen).await? + 2;
    let second = order_of(&ada, vec![line(&pen, pens, 300)?]);
    let second_id = second.order_id.clone();
    let processed = domain.process(second).await?;
    println!("order {second_id} ({pens} pens): {}", processed.event_types().join(" → "));
    for event in &processed.events {
        println!("  {} #{} of {} (caused by {})", event.type_name, event.sequence, event.stream, event.causation_id);
    }
    // (A machine too busy to restock within a short deadline sees the order cancelled:
    // the run says so rather than fail.)
    let waiting = [FulfilmentStage::AwaitingRestock, FulfilmentStage::Cancelled];
    flow_at(&domain, &second_id, &waiting).await?;
    let pending = domain.pending_commands::<Fulfilment>(&second_id.to_string()).await?;
    if let Some(deadline) = pending.iter().find(|command| command.name.as_deref() == Some("restock")) {
        let left = u64::try_from((deadline.due_at - OffsetDateTime::now_utc()).whole_milliseconds()).unwrap_or(0);
        let (status, command) = (story(&domain, &second_id).await?, &deadline.type_name);
        println!("  {status}: {command} due in {} unless pens arrive", span(Duration::from_millis(left)));
    }
    domain.process(Restock { sku: pen.clone(), quantity: pens }).await?.all_delivered()?;
    flow_at(&domain, &second_id, &[FulfilmentStage::Confirmed, FulfilmentStage::Cancelled]).await?;
    let left = domain.pending_commands::<Fulfilment>(&second_id.to_string()).await?.len();
    println!("  {pens} pens arrived: {}; {left} deadline(s) left", story(&domain, &second_id).await?);

    // No ink arrives: at the deadline the order is cancelled, its points withdrawn.
    let before = points(&domain, &ada).await?;
    let third = order_of(&ada, vec![line(&ink, free(&domain, &ink).await? + 1, 2000)?]);
    let third_id = third.order_id.clone();
    domain.process(third).await?.all_delivered()?;
    flow_at(&domain, &third_id, &waiting).await?;
    let earned = points(&domain, &ada).await?;
    println!("order {third_id} (ink): {}; Ada's points {before} → {earned}", story(&domain, &third_id).await?);
    if background {
        println!("  the workers fire the deadline in {}", span(wait));
    } else {
        // No workers: let the time pass, and fire what is due by then.
        let fired = domain.fire_due_commands_at(OffsetDateTime::now_utc() + wait + Duration::from_secs(1)).await?;
        println!("  {} later: {} due command(s) fired", span(wait), fired.fired);
    }
    let flow = flow_at(&domain, &third_id, &[FulfilmentStage::Cancelled]).await?;
    let after = points(&domain, &ada).await?;
    let ink_stock = domain.get::<Inventory>(&ink).await?.ok_or("no ink")?;
    println!(
        "  no ink in time: {}; {} points withdrawn (Ada has {after}); INK-1 has {} waiting",
        story(&domain, &third_id).await?,
        flow.points,
        ink_stock.waiting.len()
    );

    let order = |id| domain.get::<Order>(id);
    println!("first order is {}, second is {}", order(&first_id).await?.ok_or("gone")?.status, {
        order(&second_id).await?.ok_or("gone")?.status
    });
    let books = domain.get::<Inventory>(&book).await?.ok_or("no stock")?; // kept across runs
    println!("BOOK-1: {} available, {} reserved", books.available, books.reserved);
    println!("Ada has {} loyalty points", points(&domain, &ada).await?);
    if let Some(credit) = domain.projection::<CustomerCreditView>(&ada).await? {
        let limit = credit.limit_cents.map_or("none".to_string(), |cents| Cents(cents).to_string());
        println!("Ada's credit: {} in {} order(s), limit {limit}", Cents(credit.outstanding_cents), credit.orders);
    }

    // A command with bad fields is refused before any handler runs, every field at once.
    let refused = domain.process(PlaceOrder { customer_name: String::new(), ..order_of(&ada, vec![]) }).await;
    if let Err(error) = refused {
        println!("refused: {error}");
    }
    // A business rule refuses a command in its handler; nothing is written.
    let again = PlaceOrder { order_id: first_id.clone(), ..order_of(&ada, vec![line(&book, 1, 1250)?]) };
    if let Err(error) = domain.process(again).await {
        println!("refused: {error}");
    }

    // A client retrying a request sends the same command id: the command runs once.
    let request = Uuid::now_v7();
    let fourth = order_of(&ada, vec![line(&book, 1, 1250)?]);
    domain.process_with(fourth.clone(), request, None).await?.all_delivered()?;
    domain.process_with(fourth.clone(), request, None).await?.all_delivered()?;
    flow_at(&domain, &fourth.order_id, &[FulfilmentStage::Confirmed]).await?;
    let books = domain.get::<Inventory>(&book).await?.ok_or("no stock")?;
    println!("the same request twice: one order; BOOK-1 has {} reserved", books.reserved);

    if let Some(workers) = workers {
        let report = workers.shutdown().await;
        println!(
            "workers: {} event(s) delivered, {} command(s) fired, {} dead letter(s)",
            report.events, report.commands_fired, report.dead_lettered
        );
    }
    // SQLite checkpoints its WAL into `ecommerce.db` and leaves no `-wal` file behind.
    domain.close().await?;
    Ok(())
}
