//! Floats survive storage bit for bit: arbitrary finite `f64` and `f32` values (from
//! random bit patterns, plus the edge cases: subnormals, -0.0, the extremes) are saved,
//! loaded and saved again by commands, on the memory store, SQLite and PostgreSQL (when
//! `PROTEAN_POSTGRES_URL` is set), and each read back has the same bits as written,
//! including the fields no command touches. SQLite runs with the `sqlite` feature,
//! PostgreSQL with the `postgres` feature (reported ignored, with the reason, when
//! `PROTEAN_POSTGRES_URL` is not set).

#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::process::ExitCode;
use std::sync::Arc;

use harness::Trial;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use protean::prelude::*;
#[cfg(feature = "postgres")]
use protean::store::PostgresStore;
#[cfg(feature = "sqlite")]
use protean::store::SqliteStore;
use protean::store::{MemoryStore, Store};

mod model {
    use protean::prelude::*;

    #[aggregate]
    pub struct Gauge {
        pub reading: f64,
        pub coarse: f32,
        pub maybe: Option<f64>,
        pub series: Vec<f64>,
        /// Set when the gauge is added; no command changes it.
        pub fixed: f64,
        pub nudges: u32,
    }

    /// Changes only the count: every float goes through one more load and save as it is.
    #[command(part_of = Gauge)]
    pub struct Nudge {
        pub id: Identifier<Gauge>,
    }

    /// Writes new values into every float field but `fixed`.
    #[command(part_of = Gauge)]
    pub struct Reset {
        pub id: Identifier<Gauge>,
        pub reading: f64,
        pub coarse: f32,
        pub maybe: Option<f64>,
        pub series: Vec<f64>,
    }

    pub struct Gauging;

    #[handler(part_of = Gauge)]
    impl Gauging {
        async fn nudge(ctx: &mut Context<Gauge>, command: Nudge) -> Result<(), DomainError> {
            ctx.load(&command.id).await?.nudges += 1;
            Ok(())
        }

        async fn reset(ctx: &mut Context<Gauge>, command: Reset) -> Result<(), DomainError> {
            let gauge = ctx.load(&command.id).await?;
            gauge.reading = command.reading;
            gauge.coarse = command.coarse;
            gauge.maybe = command.maybe;
            gauge.series = command.series;
            Ok(())
        }
    }
}

use model::{Gauge, Nudge, Reset};

/// The values of a gauge's float fields.
#[derive(Debug, Clone)]
struct Floats {
    reading: f64,
    coarse: f32,
    maybe: Option<f64>,
    series: Vec<f64>,
}

/// Floats whose decimal form is hard to read back exactly, and the edges of the range.
const EDGE_F64: &[f64] = &[
    0.0,
    -0.0,
    f64::MAX,
    f64::MIN,
    f64::MIN_POSITIVE,
    -f64::MIN_POSITIVE,
    f64::EPSILON,
    5e-324,                     // the smallest subnormal
    2.225_073_858_507_201e-308, // the largest subnormal
    -3.244_651_399_952_814e41,
    0.1 + 0.2,
    1.0 / 3.0,
    9_007_199_254_740_993.0,
];

const EDGE_F32: &[f32] =
    &[0.0, -0.0, f32::MAX, f32::MIN, f32::MIN_POSITIVE, f32::EPSILON, 1e-45, 1.175_494_2e-38, 0.1, 16_777_217.0];

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => any::<u64>().prop_map(f64::from_bits).prop_filter("finite", |f| f.is_finite()),
        1 => proptest::sample::select(EDGE_F64),
    ]
}

fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        3 => any::<u32>().prop_map(f32::from_bits).prop_filter("finite", |f| f.is_finite()),
        1 => proptest::sample::select(EDGE_F32),
    ]
}

fn any_floats() -> impl Strategy<Value = Floats> {
    (any_f64(), any_f32(), proptest::option::of(any_f64()), proptest::collection::vec(any_f64(), 0..6))
        .prop_map(|(reading, coarse, maybe, series)| Floats { reading, coarse, maybe, series })
}

/// The bits of every float field, so that -0.0 and 0.0 differ and the check is exact.
fn bits(gauge: &Gauge) -> (u64, u32, Option<u64>, Vec<u64>, u64) {
    (
        gauge.reading.to_bits(),
        gauge.coarse.to_bits(),
        gauge.maybe.map(f64::to_bits),
        gauge.series.iter().map(|f| f.to_bits()).collect(),
        gauge.fixed.to_bits(),
    )
}

fn expected_bits(floats: &Floats, fixed: f64) -> (u64, u32, Option<u64>, Vec<u64>, u64) {
    (
        floats.reading.to_bits(),
        floats.coarse.to_bits(),
        floats.maybe.map(f64::to_bits),
        floats.series.iter().map(|f| f.to_bits()).collect(),
        fixed.to_bits(),
    )
}

fn domain_on(store: Arc<dyn Store>) -> Domain {
    Domain::builder()
        .module(module_path!().to_string() + "::model")
        .shared_store(store)
        .build()
        .expect("the gauge model is valid")
}

/// Adds a gauge with `first` and `fixed`, nudges it (load and save, nothing changed)
/// twice, resets it to `second`, nudges it again, and checks every read bit for bit.
async fn round_trip(domain: &Domain, first: Floats, fixed: f64, second: Floats) -> Result<(), TestCaseError> {
    let id = Identifier::<Gauge>::generate();
    let gauge = Gauge::builder()
        .id(id.clone())
        .reading(first.reading)
        .coarse(first.coarse)
        .maybe(first.maybe)
        .series(first.series.clone())
        .fixed(fixed)
        .nudges(0u32)
        .build()
        .map_err(|e| TestCaseError::fail(format!("a gauge of finite floats builds: {e}")))?;
    let mut unit = domain.unit_of_work::<Gauge>();
    unit.add(gauge).map_err(|e| TestCaseError::fail(e.to_string()))?;
    unit.commit().await.and_then(|p| p.all_delivered()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let read = |expected: (u64, u32, Option<u64>, Vec<u64>, u64), step: &'static str| {
        let (domain, id) = (domain.clone(), id.clone());
        async move {
            let gauge = domain.get(&id).await.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let gauge = gauge.ok_or_else(|| TestCaseError::fail("the gauge is stored"))?;
            prop_assert_eq!(bits(&gauge), expected, "{}", step);
            Ok(())
        }
    };
    read(expected_bits(&first, fixed), "after adding").await?;
    for _ in 0..2 {
        domain
            .process(Nudge { id: id.clone() })
            .await
            .and_then(|p| p.all_delivered())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        read(expected_bits(&first, fixed), "after a save that changed no float").await?;
    }
    let reset = Reset {
        id: id.clone(),
        reading: second.reading,
        coarse: second.coarse,
        maybe: second.maybe,
        series: second.series.clone(),
    };
    domain.process(reset).await.and_then(|p| p.all_delivered()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    read(expected_bits(&second, fixed), "after a command wrote new floats").await?;
    domain
        .process(Nudge { id: id.clone() })
        .await
        .and_then(|p| p.all_delivered())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    read(expected_bits(&second, fixed), "after one more save").await?;
    Ok(())
}

/// Every edge value in every field, then 64 random cases, on one store.
fn floats_round_trip_on(runtime: &tokio::runtime::Runtime, store: Arc<dyn Store>) {
    let domain = domain_on(store);
    for (i, &edge) in EDGE_F64.iter().enumerate() {
        let coarse = EDGE_F32[i % EDGE_F32.len()];
        let floats = Floats { reading: edge, coarse, maybe: Some(edge), series: EDGE_F64.to_vec() };
        let reversed = Floats { series: EDGE_F64.iter().rev().copied().collect(), maybe: None, ..floats.clone() };
        runtime.block_on(round_trip(&domain, floats, edge, reversed)).unwrap();
    }
    let mut runner = TestRunner::new(Config { cases: 64, failure_persistence: None, ..Config::default() });
    runner
        .run(&(any_floats(), any_f64(), any_floats()), |(first, fixed, second)| {
            runtime.block_on(round_trip(&domain, first, fixed, second))
        })
        .unwrap();
}

fn main() -> ExitCode {
    harness::run(vec![
        Trial::test("floats_round_trip_bit_for_bit_in_memory", || {
            floats_round_trip_on(&harness::runtime(), Arc::new(MemoryStore::new()));
            Ok(())
        }),
        #[cfg(feature = "sqlite")]
        Trial::test("floats_round_trip_bit_for_bit_in_sqlite", || {
            let dir = std::env::temp_dir().join(format!("protean-floats-{}", uuid::Uuid::now_v7()));
            std::fs::create_dir_all(&dir).unwrap();
            floats_round_trip_on(&harness::runtime(), Arc::new(SqliteStore::open(dir.join("store.db")).unwrap()));
            let _ = std::fs::remove_dir_all(&dir);
            Ok(())
        }),
        #[cfg(feature = "postgres")]
        harness::postgres::blocking("floats_round_trip_bit_for_bit_in_postgres", |runtime, url| {
            let store = runtime.block_on(PostgresStore::connect_with(&url, 4)).expect("connects and migrates");
            floats_round_trip_on(runtime, Arc::new(store));
        }),
    ])
}
