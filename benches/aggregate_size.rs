//! What a large aggregate costs: load, change and save **one** order while the data
//! that has nothing to do with that order grows.
//!
//! The reference article ("Design Small Aggregates") claims that an aggregate holding
//! everything a customer ever did makes every change to one order pay for all of them:
//! the whole cluster is read, parsed, checked, serialized and written on each change.
//! This benchmark makes that visible for a customer with N orders,
//! N = 10, 100, 1 000, 10 000 and 100 000, in two models of the same data:
//!
//! * **small aggregates** ([`small`]): `Customer` and `Order` are separate aggregates; an
//!   order refers to its customer by `Identifier<Customer>`, one stored record per order;
//! * **one large aggregate** ([`large`]), the anti-pattern: `CustomerAccount` holds every
//!   order as a `HasMany<PlacedOrder>` entity, one stored record for all of them.
//!
//! One iteration, on a current-thread tokio runtime: open a unit of work
//! (`domain.unit_of_work::<A>()`), load the aggregate, increment the `revision` of one
//! order, and commit. Both go through protean's in-memory store, which keeps aggregates
//! as JSON text like a database: loading parses the record, committing serializes the
//! aggregate, checks its field options and invariants, and writes it. The data is
//! seeded outside the timing, and checked after seeding (every order is there) and after
//! measuring (the changes were saved).
//!
//! Run it with
//!
//! ```sh
//! cargo bench --bench aggregate_size
//! ```
//!
//! which takes a few minutes and draws the line chart
//! `target/criterion/load_change_save_one_order/report/lines.svg` (time per iteration
//! against N, one line per model, both axes logarithmic). `cargo test --bench aggregate_size` (or
//! `cargo test --benches`) runs every case once, with N = 10 and 100 only: a quick check
//! that the benchmark still works.

use std::time::Duration;

use criterion::{AxisScale, BenchmarkId, Criterion, PlotConfiguration};
use tokio::runtime::Runtime;

/// The value objects both models embed in an order.
mod values {
    use protean::prelude::*;

    /// An amount of money in minor units (cents), with its ISO currency code.
    #[value_object]
    pub struct Money {
        /// Minor units: 1250 is 12.50.
        #[field(min = 0)]
        pub cents: i64,
        /// ISO 4217 code, such as `EUR`.
        #[field(length = 3)]
        pub currency: String,
    }

    /// One line of an order: what was bought, how many, at what price.
    #[value_object]
    pub struct OrderLine {
        /// The product's stock-keeping unit.
        #[field(min_length = 1)]
        pub sku: String,
        /// How many were ordered.
        #[field(min = 1, max = 1000)]
        pub quantity: u32,
        /// The price of one.
        pub unit_price: Money,
    }

    /// Where an order is in its life.
    #[value_object]
    pub enum OrderStatus {
        /// Placed by the customer.
        Placed,
        /// Paid for.
        Paid,
        /// Handed to the carrier.
        Shipped,
        /// Received by the customer.
        Delivered,
    }

    /// The lines, total and status of the `i`-th order of the seeded customer: three
    /// lines of varying products and quantities, the total their sum.
    pub fn order_contents(i: usize) -> (Vec<OrderLine>, Money, OrderStatus) {
        let lines: Vec<OrderLine> = (0..3)
            .map(|line| {
                let product = (i * 7 + line * 13) % 500;
                let price = Money::new(199 + i64::try_from(product).expect("a small number") * 10, "EUR")
                    .expect("a valid price");
                let quantity = u32::try_from(1 + (i + line) % 4).expect("a small number");
                OrderLine::new(format!("SKU-{product:05}"), quantity, price).expect("a valid order line")
            })
            .collect();
        let cents = lines.iter().map(|l| l.unit_price().cents() * i64::from(*l.quantity())).sum::<i64>();
        let total = Money::new(cents, "EUR").expect("a valid total");
        let status = [OrderStatus::Placed, OrderStatus::Paid, OrderStatus::Shipped, OrderStatus::Delivered][i % 4];
        (lines, total, status)
    }
}

/// Small aggregates: an [`Order`](small::Order) is its own aggregate, one record per
/// order, and refers to its [`Customer`](small::Customer) by identity.
mod small {
    use protean::prelude::*;

    use super::values::{order_contents, Money, OrderLine, OrderStatus};

    /// How many orders one unit of work adds while seeding.
    const SEED_BATCH: usize = 500;

    /// A customer: its profile changes never need to be consistent with its orders.
    #[aggregate]
    pub struct Customer {
        /// The customer's name.
        #[field(min_length = 1, max_length = 200)]
        pub name: String,
    }

    /// An order: its own aggregate and consistency boundary.
    #[aggregate]
    pub struct Order {
        /// Who placed it: another aggregate, so only its identity.
        pub customer_id: Identifier<Customer>,
        /// What was ordered.
        #[field(min_length = 1)]
        pub lines: Vec<OrderLine>,
        /// The sum of the lines.
        pub total: Money,
        /// Where the order is in its life.
        pub status: OrderStatus,
        /// Incremented by every change the benchmark makes.
        #[field(default = 0u32)]
        pub revision: u32,
    }

    /// A domain with one customer and its orders, ready to be measured.
    pub struct Fixture {
        /// The domain of this module, with its own in-memory store.
        pub domain: Domain,
        /// The order the benchmark changes: the middle one of the customer's orders.
        pub target: Identifier<Order>,
    }

    /// Stores one customer with `n` orders (in units of work of [`SEED_BATCH`] orders),
    /// then checks that every order loads and belongs to that customer.
    pub async fn seed(n: usize) -> Fixture {
        let domain = Domain::builder().module(module_path!()).build().expect("the small-aggregate model is valid");

        let customer = Customer::builder().name("Ada Lovelace").build().expect("a valid customer");
        let customer_id = customer.id.clone();
        let mut ctx = domain.unit_of_work::<Customer>();
        ctx.add(customer).expect("a new customer");
        ctx.commit().await.expect("the customer is stored").all_delivered().expect("the customer is stored");

        let mut ids = Vec::with_capacity(n);
        for batch in (0..n).collect::<Vec<_>>().chunks(SEED_BATCH) {
            let mut ctx = domain.unit_of_work::<Order>();
            for &i in batch {
                let (lines, total, status) = order_contents(i);
                let order = Order::builder()
                    .customer_id(customer_id.clone())
                    .lines(lines)
                    .total(total)
                    .status(status)
                    .build()
                    .expect("a valid order");
                ids.push(order.id.clone());
                ctx.add(order).expect("a new order");
            }
            let processed = ctx.commit().await.expect("the orders are stored");
            assert_eq!(processed.committed.len(), batch.len(), "one record per order");
        }

        let mut stored = 0;
        for id in &ids {
            let order = domain.get(id).await.expect("the store answers").expect("every seeded order is stored");
            assert_eq!(order.customer_id, customer_id, "every order belongs to the seeded customer");
            stored += 1;
        }
        assert_eq!(stored, n, "the customer has {n} orders");
        assert!(domain.get(&customer_id).await.expect("the store answers").is_some(), "the customer is stored");

        Fixture { domain, target: ids[n / 2].clone() }
    }

    /// The measured operation: load the order by its identity, increment its revision,
    /// commit. Returns the version the commit wrote.
    pub async fn load_change_save(domain: &Domain, id: &Identifier<Order>) -> u64 {
        let mut ctx = domain.unit_of_work::<Order>();
        let order = ctx.load(id).await.expect("the order is stored");
        order.revision += 1;
        let processed = ctx.commit().await.expect("the change is saved");
        assert_eq!(processed.committed.len(), 1, "the changed order is written");
        processed.committed[0].version
    }

    /// The revision of the target order as stored: how many changes were saved.
    pub async fn saved_revision(fixture: &Fixture) -> u32 {
        let order = fixture.domain.get(&fixture.target).await.expect("the store answers").expect("the order is stored");
        order.revision
    }
}

/// The large-aggregate anti-pattern: a [`CustomerAccount`](large::CustomerAccount) holds
/// every order the customer placed, one record for all of them.
mod large {
    use protean::prelude::*;

    use super::values::{order_contents, Money, OrderLine, OrderStatus};

    /// A customer with all their orders inside: every change to one order loads, checks
    /// and saves them all.
    #[aggregate]
    pub struct CustomerAccount {
        /// The customer's name.
        #[field(min_length = 1, max_length = 200)]
        pub name: String,
        /// Every order the customer placed, entities of this aggregate.
        pub orders: HasMany<PlacedOrder>,
    }

    /// An order as an entity of the account: the fields of the small model's `Order`,
    /// without the customer's identity (the account is the customer).
    #[entity(part_of = CustomerAccount)]
    pub struct PlacedOrder {
        /// What was ordered.
        #[field(min_length = 1)]
        pub lines: Vec<OrderLine>,
        /// The sum of the lines.
        pub total: Money,
        /// Where the order is in its life.
        pub status: OrderStatus,
        /// Incremented by every change the benchmark makes.
        #[field(default = 0u32)]
        pub revision: u32,
    }

    /// A domain with one account holding its orders, ready to be measured.
    pub struct Fixture {
        /// The domain of this module, with its own in-memory store.
        pub domain: Domain,
        /// The account, which is also the customer.
        pub account: Identifier<CustomerAccount>,
        /// The order the benchmark changes: the middle one of the account's orders.
        pub target: Identifier<PlacedOrder>,
    }

    /// Stores one account holding `n` orders (collected into the `HasMany` in linear
    /// time), then checks that it loads with all `n` of them.
    pub async fn seed(n: usize) -> Fixture {
        let domain = Domain::builder().module(module_path!()).build().expect("the large-aggregate model is valid");

        let orders: HasMany<PlacedOrder> = (0..n)
            .map(|i| {
                let (lines, total, status) = order_contents(i);
                PlacedOrder::builder().lines(lines).total(total).status(status).build().expect("a valid order")
            })
            .collect();
        assert_eq!(orders.len(), n, "every order has its own identity");
        let target = orders.as_slice()[n / 2].id.clone();
        let account = CustomerAccount::builder().name("Ada Lovelace").orders(orders).build().expect("a valid account");
        let id = account.id.clone();
        let mut ctx = domain.unit_of_work::<CustomerAccount>();
        ctx.add(account).expect("a new account");
        let processed = ctx.commit().await.expect("the account is stored");
        assert_eq!(processed.committed.len(), 1, "one record for the account and all its orders");

        let stored = domain.get(&id).await.expect("the store answers").expect("the account is stored");
        assert_eq!(stored.orders.len(), n, "the account holds {n} orders");
        assert!(stored.orders.contains(&target), "the target order is in the account");

        Fixture { domain, account: id, target }
    }

    /// The measured operation: load the whole account, increment the revision of one of
    /// its orders, commit. Returns the version the commit wrote.
    pub async fn load_change_save(
        domain: &Domain,
        account: &Identifier<CustomerAccount>,
        order: &Identifier<PlacedOrder>,
    ) -> u64 {
        let mut ctx = domain.unit_of_work::<CustomerAccount>();
        let loaded = ctx.load(account).await.expect("the account is stored");
        loaded.orders.get_mut(order).expect("the account holds the order").revision += 1;
        let processed = ctx.commit().await.expect("the change is saved");
        assert_eq!(processed.committed.len(), 1, "the changed account is written");
        processed.committed[0].version
    }

    /// The revision of the target order as stored: how many changes were saved.
    pub async fn saved_revision(fixture: &Fixture) -> u32 {
        let account =
            fixture.domain.get(&fixture.account).await.expect("the store answers").expect("the account is stored");
        account.orders.get(&fixture.target).expect("the account holds the order").revision
    }
}

/// The name of the criterion group, and of its report directory.
const GROUP: &str = "load_change_save_one_order";
/// The label of the small-aggregate model in the report.
const SMALL: &str = "small aggregates (Order by id)";
/// The label of the large-aggregate model in the report.
const LARGE: &str = "one large aggregate (Customer holds Orders)";

/// The customer's order counts measured by `cargo bench`.
const FULL_SIZES: [usize; 5] = [10, 100, 1_000, 10_000, 100_000];
/// The order counts run once each by `cargo test --benches`.
const QUICK_SIZES: [usize; 2] = [10, 100];

/// Measures both models for every N, seeding each case before measuring it and checking
/// afterwards that the measured changes were saved.
fn load_change_save_one_order(c: &mut Criterion, sizes: &[usize]) {
    let rt: Runtime =
        tokio::runtime::Builder::new_current_thread().build().expect("a current-thread tokio runtime starts");
    let mut group = c.benchmark_group(GROUP);
    // No `Throughput`: with one, criterion puts the throughput's count on the chart's x
    // axis instead of N (and draws no line chart when that count is the same for every
    // N). Both axes are logarithmic, as N and the times span four orders of magnitude.
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .plot_config(PlotConfiguration::default().summary_scale(AxisScale::Logarithmic));

    for &n in sizes {
        // Ten samples of a large case take long already; the small cases get enough
        // iterations in a short time.
        group.measurement_time(Duration::from_secs(if n >= 10_000 { 5 } else { 2 }));

        let fixture = rt.block_on(small::seed(n));
        group.bench_with_input(BenchmarkId::new(SMALL, n), &fixture, |b, f| {
            b.iter(|| rt.block_on(small::load_change_save(&f.domain, &f.target)));
        });
        assert!(rt.block_on(small::saved_revision(&fixture)) > 0, "the measured changes were saved");
        drop(fixture);

        let fixture = rt.block_on(large::seed(n));
        group.bench_with_input(BenchmarkId::new(LARGE, n), &fixture, |b, f| {
            b.iter(|| rt.block_on(large::load_change_save(&f.domain, &f.account, &f.target)));
        });
        assert!(rt.block_on(large::saved_revision(&fixture)) > 0, "the measured changes were saved");
        drop(fixture);
    }
    group.finish();
}

/// Runs the benchmark: every N under `cargo bench` (which passes `--bench`), only the
/// small ones otherwise (`cargo test --benches`, where criterion runs each case once).
fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let mut criterion = Criterion::default().configure_from_args();
    load_change_save_one_order(&mut criterion, if full { &FULL_SIZES } else { &QUICK_SIZES });
    criterion.final_summary();
}
