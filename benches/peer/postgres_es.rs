//! Peer implementation of the command round-trip benchmark on `cqrs-es` 0.5
//! with `postgres-es` 0.5 (PostgreSQL through sqlx 0.8).
//!
//! The domain (`Order`, `Inventory`, their commands and events) is the one of
//! the in-memory peer, reused from `cqrs_es.rs`; only the store and the event
//! delivery differ.
//!
//! Round trip measured by [`PostgresEsPeer::place_order`]:
//! 1. the Order framework loads the `Order` aggregate (a `SELECT` of its events),
//!    handles `PlaceOrder`, and commits a single `OrderPlaced` event (one
//!    transaction with one `INSERT INTO events`);
//! 2. the framework dispatches the committed events to the registered
//!    [`ReserveStockOnOrderPlaced`] query (inline, awaited inside `execute`,
//!    after the commit: not in the same transaction);
//! 3. that query executes `Reserve` on the Inventory framework for each line
//!    (aggregate id = sku), which loads all of that inventory's events, handles
//!    the command and commits one event in its own transaction.
//!
//! Concurrency: postgres-es has no locks; it relies on the primary key
//! `(aggregate_type, aggregate_id, sequence)`. Two commands committing to the
//! same aggregate concurrently both try to insert the same `sequence`; the loser
//! gets a unique violation (SQLSTATE 23505), which postgres-es maps to
//! `AggregateError::AggregateConflict`. cqrs-es does not retry, so this peer
//! reloads and re-executes the command on a conflict (see [`execute_retrying`]).
//!
//! Required dependencies (Cargo.toml of the bench):
//! ```toml
//! cqrs-es = "0.5.0"
//! postgres-es = "0.5.0"
//! sqlx = { version = "0.8", default-features = false, features = ["runtime-tokio", "postgres"] }
//! async-trait = "0.1"
//! serde = { version = "1", features = ["derive"] }
//! tokio = { version = "1", features = ["rt-multi-thread", "macros"] }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventEnvelope, EventStore, Query};
use postgres_es::{postgres_cqrs, PostgresCqrs, PostgresEventRepository};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Pool, Postgres};

use super::cqrs_es_peer::{Inventory, InventoryCommand, Order, OrderCommand, OrderEvent};

/// The schema postgres-es 0.5 expects, from `db/init.sql` of its crate
/// (repository serverlesstechnology/cqrs, `persistence/postgres-es/db/init.sql`),
/// with `IF NOT EXISTS` added. The `snapshots` table is only read by the
/// snapshot and aggregate stores (`postgres_snapshot_cqrs`,
/// `postgres_aggregate_cqrs`); it is created so either can be swapped in.
const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
)",
    "CREATE TABLE IF NOT EXISTS snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
)",
];

/// Upper bound on re-executions of one command after optimistic-lock
/// conflicts; reaching it means something is wrong, not contention.
const MAX_ATTEMPTS: u32 = 10_000;

type InventoryCqrs = PostgresCqrs<Inventory>;
type OrderCqrs = PostgresCqrs<Order>;

/// Executes a command, and on `AggregateConflict` (another command committed
/// to the same aggregate between our load and our commit) loads the aggregate
/// again and re-executes it. Commands are not `Clone`, so `command` makes one
/// per attempt. Any other error is returned. Counts conflicts in `conflicts`.
pub async fn execute_retrying<A: Aggregate>(
    cqrs: &PostgresCqrs<A>,
    aggregate_id: &str,
    conflicts: &AtomicU64,
    command: impl Fn() -> A::Command,
) -> Result<(), AggregateError<A::Error>> {
    let mut attempt = 1;
    loop {
        match cqrs.execute(aggregate_id, command()).await {
            Err(AggregateError::AggregateConflict) if attempt < MAX_ATTEMPTS => {
                conflicts.fetch_add(1, Ordering::Relaxed);
                attempt += 1;
                tokio::task::yield_now().await;
            }
            result => return result,
        }
    }
}

/// Registered on the Order framework; cqrs-es awaits `dispatch` inside
/// `CqrsFramework::execute`, right after the Order events are committed.
pub struct ReserveStockOnOrderPlaced {
    inventory: Arc<InventoryCqrs>,
    conflicts: Arc<AtomicU64>,
}

#[async_trait]
impl Query<Order> for ReserveStockOnOrderPlaced {
    async fn dispatch(&self, _aggregate_id: &str, events: &[EventEnvelope<Order>]) {
        for envelope in events {
            match &envelope.payload {
                OrderEvent::OrderPlaced { order_id, lines, .. } => {
                    for line in lines {
                        // `dispatch` returns `()`, so an error can only be
                        // surfaced by panicking: never swallow it.
                        if let Err(err) = execute_retrying(&self.inventory, &line.sku, &self.conflicts, || {
                            InventoryCommand::Reserve { order_id: order_id.clone(), quantity: line.quantity }
                        })
                        .await
                        {
                            panic!("Reserve for order {order_id} on sku {} failed: {err:?}", line.sku);
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Bench-facing API
// ---------------------------------------------------------------------------

pub struct PostgresEsPeer {
    orders: Arc<OrderCqrs>,
    inventory: Arc<InventoryCqrs>,
    /// A second event store on the same pool, used only to load state for checks.
    inventory_store: PersistedEventStore<PostgresEventRepository, Inventory>,
    pool: Pool<Postgres>,
    conflicts: Arc<AtomicU64>,
}

impl PostgresEsPeer {
    /// Connects to `url` (a database made for this peer), creates postgres-es's
    /// tables if missing and builds both frameworks on one pool of
    /// `max_connections` connections. A round trip holds at most one
    /// connection at a time (load, commit, then the reaction's load and commit).
    pub async fn connect(url: &str, max_connections: u32) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(url)
            .await
            .expect("connecting to the peer's PostgreSQL database");
        for statement in SCHEMA {
            sqlx::query(statement).execute(&pool).await.expect("creating the postgres-es tables");
        }
        let conflicts = Arc::new(AtomicU64::new(0));
        let inventory = Arc::new(postgres_cqrs::<Inventory>(pool.clone(), vec![], ()));
        let reaction =
            ReserveStockOnOrderPlaced { inventory: Arc::clone(&inventory), conflicts: Arc::clone(&conflicts) };
        let orders =
            Arc::new(postgres_cqrs::<Order>(pool.clone(), vec![Box::new(reaction) as Box<dyn Query<Order>>], ()));
        let inventory_store = PersistedEventStore::new_event_store(PostgresEventRepository::new(pool.clone()));
        Self { orders, inventory, inventory_store, pool, conflicts }
    }

    /// setup, not timed: stocks an inventory item
    pub async fn stock(&self, sku: &str, quantity: u32) {
        execute_retrying(&self.inventory, sku, &self.conflicts, || InventoryCommand::Stock {
            sku: sku.to_string(),
            quantity,
        })
        .await
        .expect("Stock failed");
    }

    /// the timed round trip: PlaceOrder, commit, deliver OrderPlaced to the inventory reaction
    pub async fn place_order(
        &self,
        order_id: &str,
        customer_id: &str,
        sku: &str,
        quantity: u32,
        unit_price_cents: i64,
    ) {
        // A fresh order id never conflicts; a conflict on the Inventory is
        // retried inside the reaction.
        self.orders
            .execute(
                order_id,
                OrderCommand::PlaceOrder {
                    order_id: order_id.to_string(),
                    customer_id: customer_id.to_string(),
                    sku: sku.to_string(),
                    quantity,
                    unit_price_cents,
                },
            )
            .await
            .expect("PlaceOrder failed");
    }

    /// for a correctness check: (on_hand, reserved) of an inventory, loaded from the store
    pub async fn inventory(&self, sku: &str) -> (u32, u32) {
        let mut context = self.inventory_store.load_aggregate(sku).await.expect("loading Inventory failed");
        let inventory = context.aggregate();
        (inventory.on_hand, inventory.reserved)
    }

    // Optional extras for the bench; `allow` keeps a bench that does not call them warning-free.
    /// How many commands were re-executed after an optimistic-lock conflict so far.
    #[allow(dead_code)]
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    /// The pool both frameworks share (e.g. to count rows or close it).
    #[allow(dead_code)]
    pub fn pool(&self) -> &Pool<Postgres> {
        &self.pool
    }
}
