//! What only the PostgreSQL store has: its schema's migration steps (each from the
//! database an older protean left), connecting without migrating (for a role that may not
//! create tables), times kept as `timestamptz`, and the outbox's notifications. Needs
//! `PROTEAN_POSTGRES_URL` (required in CI through `PROTEAN_REQUIRE_POSTGRES=1`).

#[path = "support/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "support/lab.rs"]
#[allow(dead_code)]
mod lab;

use std::sync::Arc;
use std::time::Duration;

use lab::*;
use protean::prelude::*;
use protean::store::{
    Batch, Cause, Commit, Envelope, FailureQuery, FailureStatus, FailureUpdate, Handled, HandlerState, OffsetDateTime,
    PostgresStore, SchemaVersion, Store, StoreError, StreamId, POSTGRES_SCHEMA_VERSION,
};
use sqlx::PgPool;
use uuid::Uuid;

/// The migration steps as the store runs them: `STEPS[n - 1]` makes version `n`.
const STEPS: [&str; 5] = [
    include_str!("../protean-core/src/store/postgres/schema/v1.sql"),
    include_str!("../protean-core/src/store/postgres/schema/v2.sql"),
    include_str!("../protean-core/src/store/postgres/schema/v3.sql"),
    include_str!("../protean-core/src/store/postgres/schema/v4.sql"),
    include_str!("../protean-core/src/store/postgres/schema/v5.sql"),
];

fn stream(aggregate: &'static str, id: &str) -> StreamId {
    StreamId::new(aggregate, id.to_owned())
}

fn batch(commits: Vec<Commit>) -> Batch {
    Batch { commits, handled: None, delivered: vec![], ..Batch::default() }
}

/// A new database as protean left it at schema `version`: the steps up to it, the
/// version recorded, and a commit function of that version's signature (its body does
/// not matter here), on the new database at `url`.
async fn database_at(url: String, version: u32) -> (String, PgPool) {
    let pool = PgPool::connect(&url).await.unwrap();
    for step in &STEPS[..version as usize] {
        sqlx::raw_sql(step).execute(&pool).await.unwrap();
    }
    let advance = if version >= 2 { "bigint[], " } else { "" };
    let recorded = if version >= 4 { "timestamptz[]" } else { "bigint[]" };
    let outcome = if version >= 5 { "text, " } else { "" };
    let function = format!(
        "CREATE FUNCTION protean_commit_batch(text[], text[], bigint[], {advance}text[], integer[], uuid[], text[],
            integer[], text[], {recorded}, uuid[], uuid[], text, uuid, {outcome}uuid[], text[])
            RETURNS bigint[] LANGUAGE sql AS 'SELECT NULL::bigint[]'"
    );
    sqlx::query(&function).execute(&pool).await.unwrap();
    sqlx::query("INSERT INTO protean_schema (version) VALUES ($1)")
        .bind(i32::try_from(version).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    (url, pool)
}

/// The commit functions there are, by their arguments: one after every migration.
async fn commit_functions(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT pg_get_function_identity_arguments(oid) FROM pg_proc WHERE proname = 'protean_commit_batch'",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn is_schema(error: &StoreError, found: u32) -> bool {
    matches!(error, StoreError::Schema { backend: "postgres", found: f, supported }
        if *f == SchemaVersion(found) && *supported == POSTGRES_SCHEMA_VERSION)
}

/// A database of schema version 1 (versions counted commits) is upgraded: event-sourced
/// heads move to their last sequence, and commits take an advance.
async fn upgrading_from_version_1_makes_event_sourced_versions_count_events(url: String) {
    let (url, pool) = database_at(url, 1).await;
    for statement in [
        "INSERT INTO protean_aggregates VALUES ('Account', 'a-1', 2, 'null', 5)",
        "INSERT INTO protean_aggregates VALUES ('Counter', 'c-1', 2, '{}', 2)",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    let store = PostgresStore::connect_with(&url, 2).await.unwrap();
    assert_eq!(store.load(&stream("Account", "a-1")).await.unwrap().unwrap().version, 5);
    assert_eq!(store.load(&stream("Counter", "c-1")).await.unwrap().unwrap().version, 2);
    assert_eq!(store.schema_version().await.unwrap(), POSTGRES_SCHEMA_VERSION);
    assert_eq!(commit_functions(&pool).await.len(), 1, "the old commit function is gone, the new one stays");
}

/// Version 3 kept times as BIGINT microseconds since the Unix epoch; version 4 makes them
/// `timestamptz`, exact to the microsecond (around the epoch, today, and at both ends of
/// the years protean keeps), and the claims made before keep their leases.
async fn upgrading_from_version_3_makes_times_timestamptz_to_the_microsecond(url: String) {
    let (url, pool) = database_at(url, 3).await;
    let times: [i64; 6] =
        [0, -1, 1_700_000_000_123_457, 1_699_999_999_999_999, 253_402_300_799_999_999, -62_135_596_800_000_000];
    let insert = "INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload,
        recorded_at, correlation_id, causation_id, delivered, claimed_until) VALUES ($1, 'Counter', $2, 1,
        'Counter.Bumped', 1, '{}', $3, $1, $1, $4, $5)";
    for (n, micros) in times.iter().enumerate() {
        let id = Uuid::now_v7();
        sqlx::query(insert)
            .bind(id)
            .bind(format!("t-{n}"))
            .bind(micros)
            .bind(true)
            .bind(None::<i64>)
            .execute(&pool)
            .await
            .unwrap();
    }
    // Undelivered: one whose lease runs an hour yet, one whose lease ran out.
    let now = OffsetDateTime::now_utc();
    let micros = |t: OffsetDateTime| i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap();
    let leased_until = micros(now + Duration::from_secs(3600));
    for (stream_id, until) in [("leased", leased_until), ("expired", micros(now) - 1_000_000)] {
        let id = Uuid::now_v7();
        sqlx::query(insert)
            .bind(id)
            .bind(stream_id)
            .bind(micros(now))
            .bind(false)
            .bind(Some(until))
            .execute(&pool)
            .await
            .unwrap();
    }

    // A zone with daylight saving, for the store's sessions: the conversion must not use it.
    sqlx::raw_sql(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET timezone = %L', current_database(), 'America/New_York'); END $$",
    )
    .execute(&pool)
    .await
    .unwrap();

    let error = PostgresStore::connect_without_migrating(&url).await.unwrap_err();
    assert!(is_schema(&error, 3), "{error}");
    assert!(error.to_string().contains("migrate it first"), "{error}");

    let store = PostgresStore::connect_with(&url, 2).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), POSTGRES_SCHEMA_VERSION);
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT data_type FROM information_schema.columns
         WHERE table_name = 'protean_events' AND column_name IN ('recorded_at', 'claimed_until')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(types, ["timestamp with time zone"; 2]);
    for (n, micros) in times.iter().enumerate() {
        let events = store.stream(&stream("Counter", &format!("t-{n}"))).await.unwrap();
        let expected = OffsetDateTime::from_unix_timestamp_nanos(i128::from(*micros) * 1_000).unwrap();
        assert_eq!(events[0].recorded_at, expected, "{micros} µs");
    }
    // `extract` gives numeric: exact.
    let until: i64 = sqlx::query_scalar(
        "SELECT (extract(epoch FROM claimed_until) * 1000000)::bigint FROM protean_events WHERE stream_id = 'leased'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(until, leased_until);
    let claimed = store.claim_undelivered(10, Duration::from_secs(30)).await.unwrap();
    let claimed: Vec<&str> = claimed.iter().map(|e| &*e.stream.id).collect();
    assert_eq!(claimed, ["expired"], "the lease that runs is kept, the one that ran out is not");

    // The new commit function takes the times; a commit's times read back as written.
    assert_eq!(commit_functions(&pool).await.len(), 1, "the bigint[] commit function is gone");
    let id = Identifier::<Counter>::parse("after").unwrap();
    let s = stream("Counter", "after");
    let event = Envelope::new(Bumped { id, count: 1 }.into(), s.clone(), Cause::command(Uuid::now_v7())).unwrap();
    let recorded_at = event.recorded_at;
    let commit = Commit {
        stream: s.clone(),
        expected_version: 0,
        advance: 1,
        state: Some("{}".into()),
        events: vec![event],
        snapshot: None,
    };
    store.commit(batch(vec![commit])).await.unwrap();
    assert_eq!(store.stream(&s).await.unwrap()[0].recorded_at, recorded_at);
    store.migrate().await.unwrap();
    assert_eq!(store.stream(&s).await.unwrap()[0].recorded_at, recorded_at, "migrating again changes nothing");
}

/// A first commit of counter `id`, with one event per count (none for no counts).
fn counter_commit(id: &str, counts: &[u32]) -> Commit {
    let s = stream("Counter", id);
    let identifier = Identifier::<Counter>::parse(id).unwrap();
    let events = counts
        .iter()
        .map(|&count| {
            let bumped = Bumped { id: identifier.clone(), count };
            Envelope::new(bumped.into(), s.clone(), Cause::command(Uuid::now_v7())).unwrap()
        })
        .collect();
    Commit { stream: s, expected_version: 0, advance: 1, state: Some("{}".into()), events, snapshot: None }
}

/// Version 4 had no outcomes and no failed deliveries; version 5 adds both, and keeps
/// the handled records and the events there were.
async fn upgrading_from_version_4_keeps_handled_records_and_events(url: String) {
    let (url, pool) = database_at(url, 4).await;
    let (handled_id, event_id) = (Uuid::now_v7(), Uuid::now_v7());
    sqlx::query("INSERT INTO protean_handled (handler, message_id) VALUES ('Tallying::count', $1)")
        .bind(handled_id)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO protean_aggregates VALUES ('Counter', 'old', 1, '{}', 1)").execute(&pool).await.unwrap();
    let recorded_at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_000).unwrap();
    sqlx::query(
        "INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload, recorded_at,
         correlation_id, causation_id) VALUES ($1, 'Counter', 'old', 1, 'Counter.Bumped', 1,
         '{\"id\":\"old\",\"count\":1}', $2, $1, $1)",
    )
    .bind(event_id)
    .bind(recorded_at)
    .execute(&pool)
    .await
    .unwrap();

    let store = PostgresStore::connect_with(&url, 2).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), POSTGRES_SCHEMA_VERSION);
    assert_eq!(commit_functions(&pool).await.len(), 1, "the commit function without an outcome is gone");
    assert!(store.is_handled("Tallying::count", handled_id).await.unwrap());
    assert_eq!(store.handled_outcome("Tallying::count", handled_id).await.unwrap(), Some(None));
    let old = stream("Counter", "old");
    assert_eq!(store.load(&old).await.unwrap().unwrap().version, 1);
    let events = store.stream(&old).await.unwrap();
    assert_eq!(
        events.iter().map(|e| (e.id, e.sequence, e.recorded_at)).collect::<Vec<_>>(),
        [(event_id, 1, recorded_at)]
    );
    let status = store.outbox_status().await.unwrap();
    assert_eq!((status.undelivered, status.oldest_undelivered), (1, Some(recorded_at)));

    // What version 5 adds works on the events from before.
    let update = FailureUpdate {
        handler: "Tallying::count".into(),
        event: events[0].clone(),
        status: FailureStatus::Dead,
        error: "boom".into(),
        at: recorded_at,
    };
    assert_eq!(store.record_failure(update).await.unwrap(), 1);
    let failed = store.failed_deliveries(FailureQuery::default()).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!((&failed[0].event, failed[0].first_failed_at), (&events[0], recorded_at), "to the microsecond");
    assert_eq!(
        store.handler_state("Tallying::count", &events[0]).await.unwrap(),
        HandlerState { handled: false, held: true, attempts: 1 }
    );
    let command = Handled { handler: "Counter.Bump".into(), message_id: Uuid::now_v7(), outcome: Some("{}".into()) };
    let batch = Batch {
        commits: vec![counter_commit("new", &[1])],
        handled: Some(command.clone()),
        delivered: vec![],
        ..Batch::default()
    };
    store.commit(batch).await.unwrap();
    assert_eq!(store.handled_outcome("Counter.Bump", command.message_id).await.unwrap(), Some(Some("{}".into())));
    store.migrate().await.unwrap();
    assert_eq!(store.failed_deliveries(FailureQuery::default()).await.unwrap().len(), 1, "migrating again keeps it");
}

/// The backends listening on the outbox's channel in the database at `pool`.
async fn listeners(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A commit of an undelivered event through one store wakes the outbox signal of
/// another, connected on its own (as another process would be); the signal's listener
/// is one per store, and goes with the store.
async fn a_commit_wakes_the_outbox_signal_of_another_store(url: String) {
    let writer = PostgresStore::connect_with(&url, 2).await.unwrap();
    let reader = PostgresStore::connect_with(&url, 2).await.unwrap();
    let signal = reader.outbox_signal().expect("PostgreSQL has an outbox signal");
    assert!(Arc::ptr_eq(&signal, &reader.clone().outbox_signal().unwrap()), "one signal for the clones");
    let wait = |limit: Duration| tokio::time::timeout(limit, signal.notified());
    // It fires once it listens (a commit before went unheard); then it is quiet.
    wait(Duration::from_secs(5)).await.expect("the signal fires once it listens");
    while wait(Duration::from_millis(200)).await.is_ok() {}
    assert_eq!(listeners(writer.pool()).await, 1, "one listener, for the store that asked");

    // Nothing to deliver, nothing to wake for: neither without events nor with delivered ones.
    writer.commit(batch(vec![counter_commit("quiet", &[])])).await.unwrap();
    let delivered = counter_commit("done", &[1]);
    let ids = delivered.events.iter().map(|e| e.id).collect();
    writer.commit(Batch { commits: vec![delivered], handled: None, delivered: ids, ..Batch::default() }).await.unwrap();
    assert!(wait(Duration::from_millis(500)).await.is_err(), "no notification without an undelivered event");

    writer.commit(batch(vec![counter_commit("loud", &[1, 2])])).await.unwrap();
    wait(Duration::from_secs(5)).await.expect("the other store's commit wakes the signal");

    drop(signal);
    drop(reader);
    let mut left = listeners(writer.pool()).await;
    for _ in 0..50 {
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = listeners(writer.pool()).await;
    }
    assert_eq!(left, 0, "the listener stops with its store");
}

/// A time PostgreSQL keeps but `time` cannot represent, written behind the store's
/// back, is corrupt data, not a panic.
async fn a_stored_time_out_of_range_is_corrupt_data(url: String) {
    let store = PostgresStore::connect_with(&url, 2).await.unwrap();
    for (stream_id, time) in [("infinite", "infinity"), ("far", "20000-01-01 00:00:00+00")] {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload,
             recorded_at, correlation_id, causation_id) VALUES ($1, 'Counter', $2, 7, 'Counter.Bumped', 1, '{}',
             $3::timestamptz, $1, $1)",
        )
        .bind(id)
        .bind(stream_id)
        .bind(time)
        .execute(store.pool())
        .await
        .unwrap();
        let error = store.stream(&stream("Counter", stream_id)).await.unwrap_err();
        let StoreError::Corrupt { position: 7, reason, .. } = &error else { panic!("{error}") };
        assert!(reason.contains("out of range"), "{reason}");
    }
}

/// Without migrating, a database with no schema is refused, and left as it was: no DDL.
async fn without_migrating_an_empty_database_is_refused_and_left_empty(url: String) {
    let error = PostgresStore::connect_without_migrating(&url).await.unwrap_err();
    assert!(is_schema(&error, 0), "{error}");
    let pool = PgPool::connect(&url).await.unwrap();
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_class WHERE relname LIKE 'protean%'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tables, 0);
}

/// A database a later protean migrated is refused, with or without migrating.
async fn a_newer_schema_is_refused(url: String) {
    let store = PostgresStore::connect_with(&url, 2).await.unwrap();
    sqlx::query("UPDATE protean_schema SET version = 99").execute(store.pool()).await.unwrap();
    let error = store.migrate().await.unwrap_err();
    assert!(is_schema(&error, 99), "{error}");
    assert!(error.to_string().contains("upgrade protean"), "{error}");
    assert!(is_schema(&PostgresStore::connect_with(&url, 2).await.unwrap_err(), 99));
    assert!(is_schema(&PostgresStore::connect_without_migrating(&url).await.unwrap_err(), 99));
}

/// `url` with another user and password.
fn as_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}")
}

/// A least-privilege role, one that may read and write the tables but create nothing,
/// works on a migrated database without migrating; migrating takes the owner.
async fn a_role_that_may_not_create_tables_uses_a_migrated_database_without_migrating(url: String) {
    let owner = PostgresStore::connect_with(&url, 2).await.unwrap();
    let role = format!("protean_app_{}", Uuid::now_v7().simple());
    let password = Uuid::new_v4().simple().to_string();
    if let Err(e) = sqlx::query(&format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'")).execute(owner.pool()).await
    {
        eprintln!("skipped: the test's user may not create roles: {e}");
        return;
    }
    for grant in [
        // PostgreSQL before 15 lets every role create tables in `public`.
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC".to_owned(),
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("GRANT SELECT ON protean_schema TO {role}"),
        format!(
            "GRANT SELECT, INSERT, UPDATE ON protean_aggregates, protean_events, protean_handled, protean_snapshots,
             protean_read_models TO {role}"
        ),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON protean_failures TO {role}"),
        format!("GRANT USAGE ON SEQUENCE protean_events_position_seq TO {role}"),
        format!("GRANT EXECUTE ON FUNCTION protean_commit_batch TO {role}"),
    ] {
        sqlx::query(&grant).execute(owner.pool()).await.unwrap();
    }
    let app_url = as_user(&url, &role, &password);

    let app = PostgresStore::options().max_connections(4).migrate(false).connect(&app_url).await.unwrap();
    let created = sqlx::query("CREATE TABLE mine (n int)").execute(app.pool()).await;
    assert!(created.is_err(), "the role may not create tables");
    let error = PostgresStore::connect_with(&app_url, 2).await.unwrap_err();
    let StoreError::Backend { backend: "postgres", source } = &error else { panic!("{error}") };
    let source = source.get().downcast_ref::<sqlx::Error>().and_then(|e| e.as_database_error());
    assert_eq!(source.and_then(|e| e.code()).as_deref(), Some("42501"), "migrating takes the owner: {error:?}");
    assert!(matches!(app.migrate().await, Err(StoreError::Backend { .. })));
    assert_eq!(app.schema_version().await.unwrap(), POSTGRES_SCHEMA_VERSION);
    let domain = Domain::builder()
        .module(module_path!().to_string() + "::lab")
        .store(app.clone())
        .build()
        .expect("the lab model is valid");
    let id = Identifier::<Counter>::parse("least-privilege").unwrap();
    for _ in 0..3 {
        domain.process(Bump { id: id.clone() }).await.unwrap().all_delivered().unwrap();
    }
    let account = Identifier::<Account>::parse("a-1").unwrap();
    domain.process(Deposit { account: account.clone(), amount: 5 }).await.unwrap().all_delivered().unwrap();
    assert!(domain.deliver_pending().await.unwrap().all_delivered().is_ok());
    assert_eq!(domain.get(&id).await.unwrap().unwrap().count, 3);
    assert_eq!(domain.get(&id.cast::<Tally>()).await.unwrap().unwrap().seen, 3);
    assert_eq!(domain.get(&account).await.unwrap().unwrap().balance, 5);
    app.put_read_model("Price", "pen", "{}".into()).await.unwrap();
    assert_eq!(app.read_model("Price", "pen").await.unwrap().as_deref(), Some("{}"));
    assert_eq!(app.events(0, 100).await.unwrap().len(), 5);
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_class WHERE relname LIKE 'protean%' AND relkind = 'r'")
            .fetch_one(owner.pool())
            .await
            .unwrap();
    assert_eq!(tables, 7, "nothing more was created");

    drop(domain);
    app.pool().close().await;
    drop(app);
    sqlx::query(&format!("DROP OWNED BY {role}")).execute(owner.pool()).await.unwrap();
    let admin = PgPool::connect(&std::env::var("PROTEAN_POSTGRES_URL").unwrap()).await.unwrap();
    sqlx::query(&format!("DROP ROLE {role}")).execute(&admin).await.unwrap();
}

fn main() -> std::process::ExitCode {
    harness::run(vec![
        harness::postgres::test(
            "upgrading_from_version_1_makes_event_sourced_versions_count_events",
            upgrading_from_version_1_makes_event_sourced_versions_count_events,
        ),
        harness::postgres::test(
            "upgrading_from_version_3_makes_times_timestamptz_to_the_microsecond",
            upgrading_from_version_3_makes_times_timestamptz_to_the_microsecond,
        ),
        harness::postgres::test(
            "upgrading_from_version_4_keeps_handled_records_and_events",
            upgrading_from_version_4_keeps_handled_records_and_events,
        ),
        harness::postgres::test(
            "a_commit_wakes_the_outbox_signal_of_another_store",
            a_commit_wakes_the_outbox_signal_of_another_store,
        ),
        harness::postgres::test(
            "a_stored_time_out_of_range_is_corrupt_data",
            a_stored_time_out_of_range_is_corrupt_data,
        ),
        harness::postgres::test(
            "without_migrating_an_empty_database_is_refused_and_left_empty",
            without_migrating_an_empty_database_is_refused_and_left_empty,
        ),
        harness::postgres::test("a_newer_schema_is_refused", a_newer_schema_is_refused),
        harness::postgres::test(
            "a_role_that_may_not_create_tables_uses_a_migrated_database_without_migrating",
            a_role_that_may_not_create_tables_uses_a_migrated_database_without_migrating,
        ),
    ])
}
