//! What only the PostgreSQL store has: its schema's migration steps (each from the
//! database an older protean left), connecting without migrating (for a role that may not
//! create tables), times kept as `timestamptz`, the outbox's notifications, and how it
//! keeps projections (row changes in the commit function, expression indexes, rebuilds
//! under the events table's lock, the positioned log with commits in flight) and
//! scheduled commands (claims with `SKIP LOCKED`). Needs `PROTEAN_POSTGRES_URL`
//! (required in CI through `PROTEAN_REQUIRE_POSTGRES=1`).

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
    Batch, Cancel, Cause, Commit, Envelope, FailureQuery, FailureStatus, FailureUpdate, FilterOp, Handled,
    HandlerState, OffsetDateTime, PostgresStore, ProjectionSpec, ProjectionState, Records, RowChange, RowFilter,
    RowOrder, RowQuery, Scheduled, SchemaVersion, StoreError, StreamId, VersionConflict, POSTGRES_SCHEMA_VERSION,
};
use sqlx::PgPool;
use uuid::Uuid;

/// The migration steps as the store runs them: `STEPS[n - 1]` makes version `n`.
const STEPS: [&str; 6] = [
    include_str!("../protean-core/src/store/postgres/schema/v1.sql"),
    include_str!("../protean-core/src/store/postgres/schema/v2.sql"),
    include_str!("../protean-core/src/store/postgres/schema/v3.sql"),
    include_str!("../protean-core/src/store/postgres/schema/v4.sql"),
    include_str!("../protean-core/src/store/postgres/schema/v5.sql"),
    include_str!("../protean-core/src/store/postgres/schema/v6.sql"),
];

/// The commit function of versions 6 and 7 (version 8 gave it parameters).
const COMMIT_FUNCTION_V6: &str = include_str!("support/postgres_commit_batch_v7.sql");

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
    if version >= 6 {
        // Version 6's own commit function: version 7 calls it from the group function.
        sqlx::raw_sql(COMMIT_FUNCTION_V6).execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO protean_schema (version) VALUES ($1)")
            .bind(i32::try_from(version).unwrap())
            .execute(&pool)
            .await
            .unwrap();
        return (url, pool);
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

/// A claim sees every undelivered event, even one whose row another transaction holds
/// locked at that moment (a renewal of its claim, or its marking as delivered): such an
/// event holds back the rest of its stream, which is not handed out out of order.
async fn a_claim_does_not_pass_over_an_event_locked_for_a_moment(url: String) {
    let store = PostgresStore::connect_with(&url, 4).await.unwrap();
    let committed = store.commit(batch(vec![counter_commit("c", &[1, 2])])).await.unwrap();
    let (first, second) = (committed[0].events[0].id, committed[0].events[1].id);
    let other = store.commit(batch(vec![counter_commit("d", &[1])])).await.unwrap()[0].events[0].id;
    let mut holder = store.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM protean_events WHERE id = $1 FOR UPDATE")
        .bind(first)
        .execute(&mut *holder)
        .await
        .unwrap();
    let claimed = |store: PostgresStore| async move {
        store.claim_undelivered(10, Duration::from_secs(30)).await.unwrap().iter().map(|e| e.id).collect::<Vec<_>>()
    };
    assert_eq!(claimed(store.clone()).await, [other], "the locked event holds back its stream");
    holder.commit().await.unwrap();
    assert_eq!(claimed(store.clone()).await, [first, second], "then the stream comes, in order");
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
        // The earliest of the undelivered (the later one, `far`, comes before `infinity`):
        // the outbox's status names its event.
        let error = store.outbox_status().await.unwrap_err();
        let StoreError::Corrupt { stream: at, position: 7, reason } = &error else { panic!("{error}") };
        assert_eq!(at, &stream("Counter", stream_id));
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
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON protean_failures, protean_projections, protean_projection_rows,
             protean_scheduled, protean_workers TO {role}"
        ),
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
    // Projections too: a new field's index is left out (the role may not create it), and
    // the rows, rebuilds and scheduled commands work.
    let state = app.register_projection(spec("Least", &["n"])).await.unwrap();
    assert!(state.created);
    assert_eq!(row_indexes(owner.pool()).await, Vec::<String>::new(), "no index without the privilege");
    app.commit(rows_batch(vec![change("Least", 1, "k", 0, Some(r#"{"n":1}"#))])).await.unwrap();
    assert_eq!(
        keys(&app.query_projection(query("Least", vec![filter("n", FilterOp::Eq, 1)], vec![])).await.unwrap()),
        ["k"]
    );
    let build = app.begin_build("Least", 2, Duration::from_secs(60)).await.unwrap().unwrap();
    app.write_build("Least", build.generation, vec![("k".into(), Some(r#"{"n":2}"#.into()))], 0).await.unwrap();
    let last = app.log_after(0, 100, &[]).await.unwrap().last().map_or(0, |logged| logged.position);
    assert!(app.finish_build("Least", build.generation, last, &[]).await.unwrap());
    assert_eq!(app.projection_row("Least", None, "k").await.unwrap().unwrap().json.as_ref(), r#"{"n": 2}"#);
    let command = scheduled("Least", "k", None, OffsetDateTime::now_utc() - Duration::from_secs(1));
    app.commit(Batch { schedule: vec![command.clone()], ..Batch::default() }).await.unwrap();
    assert_eq!(
        app.claim_due(OffsetDateTime::now_utc(), 10, Duration::from_secs(30)).await.unwrap(),
        std::slice::from_ref(&command)
    );
    app.complete_scheduled(command.id).await.unwrap();
    assert_eq!(app.count_scheduled(OffsetDateTime::now_utc()).await.unwrap().pending, 0);
    assert!(app.worker_beats().await.unwrap().is_empty());
    app.put_read_model("Price", "pen", "{}".into()).await.unwrap();
    assert_eq!(app.read_model("Price", "pen").await.unwrap().as_deref(), Some("{}"));
    assert_eq!(app.events(0, 100).await.unwrap().len(), 5);
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_class WHERE relname LIKE 'protean%' AND relkind = 'r'")
            .fetch_one(owner.pool())
            .await
            .unwrap();
    assert_eq!(tables, 11, "nothing more was created");

    drop(domain);
    app.pool().close().await;
    drop(app);
    sqlx::query(&format!("DROP OWNED BY {role}")).execute(owner.pool()).await.unwrap();
    let admin = PgPool::connect(&std::env::var("PROTEAN_POSTGRES_URL").unwrap()).await.unwrap();
    sqlx::query(&format!("DROP ROLE {role}")).execute(&admin).await.unwrap();
}

// Projections and scheduled commands (schema version 6).

fn spec(name: &'static str, fields: &[&'static str]) -> ProjectionSpec {
    ProjectionSpec { name: name.into(), version: 1, indexed: fields.iter().map(|f| (*f).into()).collect() }
}

fn change(projection: &'static str, generation: u64, key: &str, expected: u64, json: Option<&str>) -> RowChange {
    RowChange {
        projection: projection.into(),
        generation,
        key: key.to_owned(),
        expected_version: expected,
        json: json.map(Into::into),
    }
}

fn rows_batch(rows: Vec<RowChange>) -> Batch {
    Batch { rows, ..Batch::default() }
}

/// A first commit of counter `id` whose events have the type names `types`.
fn typed_commit(id: &str, types: &[&'static str]) -> Commit {
    let mut commit = counter_commit(id, &vec![1; types.len()]);
    for (event, type_name) in commit.events.iter_mut().zip(types) {
        event.type_name = (*type_name).into();
    }
    commit
}

fn filter(field: &str, op: FilterOp, value: impl Into<serde_json::Value>) -> RowFilter {
    RowFilter { field: field.to_owned(), op, value: value.into() }
}

fn query(projection: &'static str, filters: Vec<RowFilter>, order: Vec<RowOrder>) -> RowQuery {
    RowQuery { projection: projection.into(), filters, order, limit: 100, offset: 0 }
}

fn keys(rows: &[protean::store::Row]) -> Vec<&str> {
    rows.iter().map(|row| row.key.as_str()).collect()
}

/// A command of process manager `owner`'s instance `key`, due at `due_at`.
fn scheduled(owner: &'static str, key: &str, name: Option<&str>, due_at: OffsetDateTime) -> Scheduled {
    let id = Uuid::now_v7();
    Scheduled {
        id,
        owner: owner.into(),
        owner_key: key.to_owned(),
        name: name.map(str::to_owned),
        due_at: to_the_microsecond(due_at),
        type_name: "Order.CancelOrder".into(),
        payload: format!(r#"{{"id":"{id}"}}"#).into(),
        correlation_id: Uuid::now_v7(),
        causation_id: Uuid::now_v7(),
    }
}

/// `time` cut to the microsecond, as PostgreSQL keeps it.
fn to_the_microsecond(time: OffsetDateTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(time.unix_timestamp_nanos() / 1_000 * 1_000).unwrap()
}

fn row_conflict(error: StoreError) -> VersionConflict {
    match error {
        StoreError::Conflict(conflict) => conflict,
        other => panic!("not a conflict: {other:?}"),
    }
}

/// The expression indexes of projection fields, by name.
async fn row_indexes(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'protean_projection_rows'
         AND indexname LIKE 'protean_rows.%' ORDER BY indexname",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The positions of the whole log, with their events' ids.
async fn log(store: &PostgresStore) -> Vec<(u64, Uuid)> {
    store.log_after(0, 10_000, &[]).await.unwrap().into_iter().map(|l| (l.position, l.event.id)).collect()
}

/// The position of event `id`.
async fn position_of(store: &PostgresStore, id: Uuid) -> u64 {
    log(store).await.into_iter().find(|(_, e)| *e == id).expect("the event is in the log").0
}

/// Waits until `n` backends of the database wait for a lock.
async fn lock_waiters(pool: &PgPool, n: i64) {
    for _ in 0..200 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{n} backends never waited for a lock");
}

/// A transaction holding the state row of projection `name` (as a commit changing its
/// rows would), so that a commit changing them waits, its events inserted.
async fn hold_projection(pool: &PgPool, name: &str) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut hold = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM protean_projections WHERE name = $1 FOR UPDATE")
        .bind(name)
        .execute(&mut *hold)
        .await
        .unwrap();
    hold
}

/// Row changes write at version + 1 and delete, each checked against the serving copy's
/// version; one stale change refuses the whole batch, aggregates and other rows with it;
/// the checkpoint follows the batch's events.
async fn row_changes_check_versions_and_a_conflict_refuses_the_whole_batch(url: String) {
    let store = PostgresStore::connect_with(&url, 4).await.unwrap();
    store.register_projection(spec("Credit", &["limit"])).await.unwrap();
    let mut first = rows_batch(vec![
        change("Credit", 1, "c-1", 0, Some(r#"{"limit":10}"#)),
        change("Credit", 1, "c-2", 0, Some(r#"{"limit":20}"#)),
    ]);
    first.commits = vec![counter_commit("inline", &[1, 2])];
    store.commit(first).await.unwrap();
    let row = store.projection_row("Credit", None, "c-1").await.unwrap().unwrap();
    assert_eq!((row.generation, row.version, row.json.as_ref()), (1, 1, r#"{"limit": 10}"#));
    let last = log(&store).await.last().unwrap().0;
    assert_eq!(store.projection_state("Credit").await.unwrap().unwrap().checkpoint, last, "its own events' last");

    store
        .commit(rows_batch(vec![
            change("Credit", 1, "c-1", 1, Some(r#"{"limit":11}"#)),
            change("Credit", 1, "c-2", 1, None),
        ]))
        .await
        .unwrap();
    assert_eq!(store.projection_row("Credit", None, "c-1").await.unwrap().unwrap().version, 2);
    assert_eq!(store.projection_row("Credit", None, "c-2").await.unwrap(), None, "deleted");
    assert_eq!(store.projection_state("Credit").await.unwrap().unwrap().checkpoint, last, "no events, no move");

    // A stale change after good ones: nothing of the batch is written.
    let mut stale = rows_batch(vec![
        change("Credit", 1, "c-3", 0, Some(r#"{"limit":30}"#)),
        change("Credit", 1, "c-1", 1, Some(r#"{"limit":12}"#)),
    ]);
    stale.commits = vec![counter_commit("refused", &[1])];
    let conflict = row_conflict(store.commit(stale).await.unwrap_err());
    assert_eq!(conflict, VersionConflict { stream: stream("Credit", "c-1"), expected: 1, actual: 2 });
    assert_eq!(store.projection_row("Credit", None, "c-3").await.unwrap(), None);
    assert_eq!(store.load(&stream("Counter", "refused")).await.unwrap(), None);
    assert_eq!(log(&store).await.last().unwrap().0, last, "no event either");

    // A row added meanwhile (expected absent), one deleted meanwhile, another copy.
    for (bad, actual) in [
        (change("Credit", 1, "c-1", 0, Some("{}")), 2),
        (change("Credit", 1, "c-2", 1, Some("{}")), 0),
        (change("Credit", 2, "c-1", 2, Some("{}")), 2),
    ] {
        let expected = bad.expected_version;
        let key = bad.key.clone();
        let conflict = row_conflict(store.commit(rows_batch(vec![bad])).await.unwrap_err());
        assert_eq!(conflict, VersionConflict { stream: stream("Credit", &key), expected, actual });
    }
    // Re-added after a delete, a row starts again at 1.
    store.commit(rows_batch(vec![change("Credit", 1, "c-2", 0, Some("{}"))])).await.unwrap();
    assert_eq!(store.projection_row("Credit", None, "c-2").await.unwrap().unwrap().version, 1);

    let error = store.commit(rows_batch(vec![change("Unknown", 1, "k", 0, Some("{}"))])).await.unwrap_err();
    assert!(matches!(&error, StoreError::Unsupported(m) if m.contains("Unknown")), "{error:?}");
    let error = store.commit(rows_batch(vec![change("Credit", 1, "bad", 0, Some("not json"))])).await.unwrap_err();
    assert!(matches!(error, StoreError::Backend { .. }), "{error:?}");
}

/// While a rebuild runs, row changes are skipped (the rebuild covers their events); after
/// it, those of events it covered are skipped too, and later ones apply, moving the
/// checkpoint to their event, found delivered or not.
async fn row_changes_are_skipped_while_a_rebuild_runs_or_when_it_covered_their_event(url: String) {
    let store = PostgresStore::connect_with(&url, 4).await.unwrap();
    store.register_projection(spec("Credit", &[])).await.unwrap();
    let old = counter_commit("old", &[1]);
    let old_event = old.events[0].id;
    store.commit(batch(vec![old])).await.unwrap();
    let build = store.begin_build("Credit", 2, Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!(build.generation, 2);

    // Inline changes during the build, even stale ones: skipped, the aggregate written.
    let mut inline = rows_batch(vec![change("Credit", 1, "k", 0, Some("{}")), change("Credit", 1, "j", 5, None)]);
    inline.commits = vec![counter_commit("during", &[1])];
    store.commit(inline).await.unwrap();
    assert_eq!(store.projection_row("Credit", None, "k").await.unwrap(), None);
    assert!(store.load(&stream("Counter", "during")).await.unwrap().is_some());
    let state = store.projection_state("Credit").await.unwrap().unwrap();
    assert_eq!((state.checkpoint, state.generation), (0, 1));

    let last = log(&store).await.last().unwrap().0;
    store.write_build("Credit", 2, vec![("k".into(), Some(r#"{"v":1}"#.into()))], last).await.unwrap();
    assert!(store.finish_build("Credit", 2, last, &[]).await.unwrap());
    let state = store.projection_state("Credit").await.unwrap().unwrap();
    assert_eq!((state.generation, state.version, state.built_through, state.checkpoint), (2, 2, last, last));

    // From an event the rebuild covered: skipped, whatever it says.
    let mut covered =
        rows_batch(vec![change("Credit", 2, "k", 1, Some(r#"{"v":2}"#)), change("Credit", 7, "x", 9, None)]);
    covered.rows_from = Some(old_event);
    store.commit(covered).await.unwrap();
    assert_eq!(store.projection_row("Credit", None, "k").await.unwrap().unwrap().version, 1);

    // From later events: applied. One not delivered (found by the outbox's index), one
    // delivered by its commit, one marked delivered by the same batch.
    let undelivered = counter_commit("later", &[1]);
    let delivered = counter_commit("delivered", &[1]);
    let marked = counter_commit("marked", &[1]);
    let ids: Vec<Uuid> = [&undelivered, &delivered, &marked].iter().map(|c| c.events[0].id).collect();
    store.commit(batch(vec![undelivered])).await.unwrap();
    store.commit(Batch { commits: vec![delivered], delivered: vec![ids[1]], ..Batch::default() }).await.unwrap();
    store.commit(batch(vec![marked])).await.unwrap();
    for (n, id) in ids.iter().enumerate() {
        let version = u64::try_from(n).unwrap() + 1;
        let mut later = rows_batch(vec![change("Credit", 2, "k", version, Some(r#"{"v":3}"#))]);
        later.rows_from = Some(*id);
        if n == 2 {
            later.delivered = vec![*id];
        }
        store.commit(later).await.unwrap();
        let state = store.projection_state("Credit").await.unwrap().unwrap();
        assert_eq!(state.checkpoint, position_of(&store, *id).await, "event {n}");
        assert_eq!(store.projection_row("Credit", None, "k").await.unwrap().unwrap().version, version + 1);
    }
    // The checkpoint does not go back for an earlier event.
    let checkpoint = store.projection_state("Credit").await.unwrap().unwrap().checkpoint;
    let mut earlier = rows_batch(vec![change("Credit", 2, "k", 4, Some("{}"))]);
    earlier.rows_from = Some(ids[0]);
    store.commit(earlier).await.unwrap();
    assert_eq!(store.projection_state("Credit").await.unwrap().unwrap().checkpoint, checkpoint);
}

/// Registering creates the state once (`created` the first time only), keeps the stored
/// version, makes an expression index per declared field (short names kept, long ones
/// hashed apart), refuses names that would have to be quoted, and two processes
/// registering at once both succeed.
async fn registering_is_idempotent_and_safe_from_two_processes_at_once(url: String) {
    let a = PostgresStore::connect_with(&url, 4).await.unwrap();
    let b = PostgresStore::connect_with(&url, 4).await.unwrap();
    let state = a.register_projection(spec("Credit", &["limit"])).await.unwrap();
    assert!(state.created);
    assert_eq!((state.version, state.generation, state.built_through, state.checkpoint), (1, 1, 0, 0));
    assert_eq!(state.build, None);
    let again =
        b.register_projection(ProjectionSpec { version: 3, ..spec("Credit", &["limit", "owner"]) }).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.version, 1, "a new version is the rebuild's to store");
    assert_eq!(a.projection_state("Credit").await.unwrap(), Some(ProjectionState { created: false, ..state }));
    assert_eq!(a.projection_state("Nothing").await.unwrap(), None);
    assert_eq!(row_indexes(a.pool()).await, ["protean_rows.Credit.limit", "protean_rows.Credit.owner"]);

    for n in 0..8 {
        let name: &'static str = Box::leak(format!("View{n}").into_boxed_str());
        let s = spec(name, &["a", "b"]);
        let (x, y) = tokio::join!(a.register_projection(s.clone()), b.register_projection(s));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(x.created ^ y.created, "exactly one created {name}");
    }
    assert_eq!(row_indexes(a.pool()).await.len(), 2 + 16);

    let long: &'static str = Box::leak("L".repeat(70).into_boxed_str());
    a.register_projection(spec(long, &["first_field_with_a_long_name", "second_field_with_a_long_name"]))
        .await
        .unwrap();
    let indexes = row_indexes(a.pool()).await;
    let hashed: Vec<&String> = indexes.iter().filter(|i| i.contains("LLLL")).collect();
    assert_eq!(hashed.len(), 2, "{indexes:?}");
    assert!(hashed.iter().all(|i| i.len() <= 63));

    for bad in [spec("Bad-Name", &[]), spec("Good", &["bad field"]), spec("Good", &["x'); DROP TABLE y; --"])] {
        let error = a.register_projection(bad).await.unwrap_err();
        assert!(matches!(error, StoreError::Unsupported(_)), "{error:?}");
    }
    assert_eq!(a.projection_state("Good").await.unwrap(), None, "refused before anything is stored");
}

/// Queries compare numbers as numbers, strings as strings, booleans as booleans, never
/// values of different kinds; null matches null and missing fields; order by fields then
/// key, with paging; only the serving copy of the projection asked; the index of a
/// declared field serves an equality.
async fn queries_filter_and_order_rows_by_kind(url: String) {
    let store = PostgresStore::connect_with(&url, 4).await.unwrap();
    store.register_projection(spec("Board", &["n", "s", "b"])).await.unwrap();
    store.register_projection(spec("Other", &["n"])).await.unwrap();
    let rows = [
        ("a", r#"{"n": 2, "s": "apple", "b": true}"#),
        ("b", r#"{"n": 10, "s": "banana", "b": false}"#),
        ("c", r#"{"n": 2.5, "s": "cherry", "b": true}"#),
        ("d", r#"{"n": "10", "s": 10, "b": "true"}"#),
        ("e", r#"{"n": null, "s": null}"#),
        ("f", r#"{}"#),
        ("g", r#"{"n": 10.0, "s": "apricot", "b": true}"#),
    ];
    let mut changes: Vec<RowChange> = rows.iter().map(|(k, json)| change("Board", 1, k, 0, Some(json))).collect();
    changes.push(change("Other", 1, "a", 0, Some(r#"{"n": 10}"#)));
    store.commit(rows_batch(changes)).await.unwrap();
    // A row of another copy matches nothing.
    sqlx::query("INSERT INTO protean_projection_rows VALUES ('Board', 9, 'z', 1, '{\"n\": 10}')")
        .execute(store.pool())
        .await
        .unwrap();

    let run = |filters: Vec<RowFilter>, order: Vec<RowOrder>| store.query_projection(query("Board", filters, order));
    let by_key = |filters: Vec<RowFilter>| run(filters, vec![]);
    use serde_json::{json, Value};
    for (filters, expected) in [
        (vec![filter("n", FilterOp::Eq, 10)], vec!["b", "g"]),
        (vec![filter("n", FilterOp::Eq, json!(10.0))], vec!["b", "g"]),
        (vec![filter("n", FilterOp::Eq, "10")], vec!["d"]),
        (vec![filter("n", FilterOp::Lt, 3)], vec!["a", "c"]),
        (vec![filter("n", FilterOp::Le, 2.5)], vec!["a", "c"]),
        (vec![filter("n", FilterOp::Gt, 2)], vec!["b", "c", "g"]),
        (vec![filter("n", FilterOp::Ge, 2.5)], vec!["b", "c", "g"]),
        (vec![filter("n", FilterOp::Ne, 10)], vec!["a", "c"]),
        (vec![filter("s", FilterOp::Eq, "banana")], vec!["b"]),
        (vec![filter("s", FilterOp::Ge, "banana")], vec!["b", "c"]),
        (vec![filter("s", FilterOp::Lt, "b")], vec!["a", "g"]),
        (vec![filter("s", FilterOp::Eq, 10)], vec!["d"]),
        (vec![filter("b", FilterOp::Eq, true)], vec!["a", "c", "g"]),
        (vec![filter("b", FilterOp::Eq, false)], vec!["b"]),
        (vec![filter("b", FilterOp::Ne, true)], vec!["b"]),
        (vec![filter("n", FilterOp::Eq, Value::Null)], vec!["e", "f"]),
        (vec![filter("n", FilterOp::Ne, Value::Null)], vec!["a", "b", "c", "d", "g"]),
        (vec![filter("n", FilterOp::Ge, 2), filter("b", FilterOp::Eq, true)], vec!["a", "c", "g"]),
        (vec![filter("missing", FilterOp::Eq, 1)], vec![]),
    ] {
        let described = format!("{filters:?}");
        assert_eq!(keys(&by_key(filters).await.unwrap()), expected, "{described}");
    }

    let n = |descending| vec![RowOrder { field: "n".into(), descending }];
    // Null and missing alike, first ascending and last descending; then jsonb's order:
    // strings, numbers; ties by key.
    assert_eq!(keys(&run(vec![], n(false)).await.unwrap()), ["e", "f", "d", "a", "c", "b", "g"]);
    assert_eq!(keys(&run(vec![], n(true)).await.unwrap()), ["b", "g", "c", "a", "d", "e", "f"]);
    let s_desc = vec![RowOrder { field: "s".into(), descending: true }];
    assert_eq!(keys(&run(vec![filter("n", FilterOp::Ge, 2)], s_desc).await.unwrap()), ["c", "b", "g", "a"]);
    let page = |limit, offset| RowQuery { limit, offset, ..query("Board", vec![], n(false)) };
    assert_eq!(keys(&store.query_projection(page(2, 2)).await.unwrap()), ["d", "a"]);
    assert_eq!(keys(&store.query_projection(page(10, 6)).await.unwrap()), ["g"]);
    assert!(store.query_projection(page(0, 0)).await.unwrap().is_empty());
    // The JSON reads back as jsonb writes it: the same value, spaced and ordered its way.
    let found = by_key(vec![filter("n", FilterOp::Eq, 2)]).await.unwrap();
    assert_eq!((found[0].generation, found[0].version), (1, 1));
    let parsed: Value = serde_json::from_str(&found[0].json).unwrap();
    assert_eq!(parsed, serde_json::from_str::<Value>(rows[0].1).unwrap());
    assert!(store.query_projection(query("Unknown", vec![], vec![])).await.unwrap().is_empty());

    for bad in [
        query("Board", vec![filter("n", FilterOp::Lt, Value::Null)], vec![]),
        query("Board", vec![filter("n", FilterOp::Eq, json!([1]))], vec![]),
        query("Board", vec![filter("n", FilterOp::Eq, json!({"a": 1}))], vec![]),
        query("Board", vec![filter("n'--", FilterOp::Eq, 1)], vec![]),
        query("Board", vec![], vec![RowOrder { field: "n s".into(), descending: false }]),
        query("Bo'ard", vec![], vec![]),
    ] {
        let error = store.query_projection(bad).await.unwrap_err();
        assert!(matches!(error, StoreError::Unsupported(_)), "{error:?}");
    }

    // Enough rows that a scan would cost more: the equality reads the field's index.
    sqlx::query(
        "INSERT INTO protean_projection_rows SELECT 'Board', 1, 'k' || i, 1, jsonb_build_object('n', i, 's', 'x' || i)
         FROM generate_series(1, 5000) AS i",
    )
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("ANALYZE protean_projection_rows").execute(store.pool()).await.unwrap();
    let plan = store.explain_query(query("Board", vec![filter("n", FilterOp::Eq, 1500)], vec![])).await.unwrap();
    assert!(plan.contains("protean_rows.Board.n"), "{plan}");
    let scan = plan.lines().skip_while(|line| !line.contains("protean_rows.Board.n")).nth(1).unwrap_or_default();
    assert!(scan.contains("Index Cond: ((generation = $0) AND ((json -> 'n'::text) = '1500'::jsonb))"), "{plan}");
    // A page in a field's order sorts the matching rows (null and missing first): the
    // index serves the filters, not that order.
    assert_eq!(keys(&by_key(vec![filter("n", FilterOp::Eq, 1500)]).await.unwrap()), ["k1500"]);
}

/// A rebuild fills a new copy: one builder at a time, a silent one taken over (resuming
/// where it was), rows written in batches, finished only when no event of its types is
/// past where it got, then serving, built through the log's end, the old copy dropped.
async fn a_rebuild_begins_is_taken_over_writes_and_finishes(url: String) {
    let store = PostgresStore::connect_with(&url, 4).await.unwrap();
    let other = PostgresStore::connect_with(&url, 4).await.unwrap();
    store.register_projection(spec("Credit", &[])).await.unwrap();
    store.commit(rows_batch(vec![change("Credit", 1, "old", 0, Some("{}"))])).await.unwrap();
    store.commit(batch(vec![typed_commit("x", &["T.A", "T.B"])])).await.unwrap();
    let a_position = log(&store).await[0].0;
    assert!(matches!(store.begin_build("Unknown", 1, Duration::ZERO).await, Err(StoreError::Unsupported(_))));

    let lease = Duration::from_secs(60);
    let build = store.begin_build("Credit", 2, lease).await.unwrap().unwrap();
    assert_eq!((build.generation, build.version, build.position), (2, 2, 0));
    let state = store.projection_state("Credit").await.unwrap().unwrap();
    assert_eq!(state.build.as_ref(), Some(&build));
    assert_eq!(other.begin_build("Credit", 2, lease).await.unwrap(), None, "its builder is at work");

    store
        .write_build(
            "Credit",
            2,
            vec![
                ("k".into(), Some(r#"{"v":1}"#.into())),
                ("gone".into(), Some("{}".into())),
                ("k".into(), Some(r#"{"v":2}"#.into())),
            ],
            a_position,
        )
        .await
        .unwrap();
    let row = store.projection_row("Credit", Some(2), "k").await.unwrap().unwrap();
    assert_eq!((row.version, row.json.as_ref()), (1, r#"{"v": 2}"#), "the last change of a key stands");
    assert_eq!(store.projection_row("Credit", None, "k").await.unwrap(), None, "not served yet");

    // Silent for longer than the lease: taken over where it got, into a new copy
    // (so the silent builder's writes are refused).
    tokio::time::sleep(Duration::from_millis(20)).await;
    let taken = other.begin_build("Credit", 2, Duration::from_millis(1)).await.unwrap().unwrap();
    assert_eq!((taken.generation, taken.position), (3, a_position));
    let late = row_conflict(store.write_build("Credit", 2, vec![], a_position).await.unwrap_err());
    assert_eq!((late.expected, late.actual), (2, 3));
    assert!(taken.heartbeat > build.heartbeat);
    other
        .write_build("Credit", 3, vec![("k".into(), Some(r#"{"v":3}"#.into())), ("gone".into(), None)], a_position)
        .await
        .unwrap();
    assert_eq!(store.projection_row("Credit", Some(3), "k").await.unwrap().unwrap().version, 2);
    assert_eq!(store.projection_row("Credit", Some(3), "gone").await.unwrap(), None);
    let conflict = row_conflict(other.write_build("Credit", 4, vec![], 0).await.unwrap_err());
    assert_eq!((conflict.expected, conflict.actual), (4, 3));

    // A `T.B` event past where it got: not finished, nothing changed.
    assert!(!other.finish_build("Credit", 3, a_position, &["T.B".into()]).await.unwrap());
    assert!(!other.finish_build("Credit", 3, a_position, &[]).await.unwrap());
    assert_eq!(store.projection_state("Credit").await.unwrap().unwrap().build.map(|b| b.generation), Some(3));
    // Only `T.A` (and a type with no events) taken: finished.
    let end = log(&store).await.last().unwrap().0;
    assert!(other.finish_build("Credit", 3, a_position, &["T.A".into(), "T.C".into(), "T.A".into()]).await.unwrap());
    let state = store.projection_state("Credit").await.unwrap().unwrap();
    assert_eq!((state.generation, state.version, state.built_through, state.checkpoint), (3, 2, end, end));
    assert_eq!(state.build, None);
    assert_eq!(store.projection_row("Credit", None, "k").await.unwrap().unwrap().json.as_ref(), r#"{"v": 3}"#);
    assert_eq!(store.projection_row("Credit", Some(1), "old").await.unwrap(), None, "the old copy is dropped");
    let conflict = row_conflict(store.finish_build("Credit", 3, end, &[]).await.unwrap_err());
    assert_eq!((conflict.expected, conflict.actual), (3, 0));
    assert!(matches!(store.write_build("Credit", 2, vec![], end).await, Err(StoreError::Conflict(_))));

    // The next rebuild takes a new copy and drops leftovers of any but the serving one;
    // a silent build of another version is dropped for a new one.
    sqlx::query(
        "INSERT INTO protean_projection_rows VALUES ('Credit', 7, 'left', 1, '{}'), ('Credit', 1, 'left', 1, '{}')",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let next = store.begin_build("Credit", 3, lease).await.unwrap().unwrap();
    assert_eq!((next.generation, next.version), (4, 3));
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM protean_projection_rows WHERE key = 'left'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
    store.write_build("Credit", 4, vec![("n".into(), Some("{}".into()))], 0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let replaced = other.begin_build("Credit", 4, Duration::from_millis(1)).await.unwrap().unwrap();
    assert_eq!((replaced.generation, replaced.version, replaced.position), (5, 4, 0));
    assert_eq!(store.projection_row("Credit", Some(4), "n").await.unwrap(), None);
    assert!(matches!(store.write_build("Credit", 3, vec![], 0).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.projection_row("Credit", None, "k").await.unwrap().unwrap().generation, 3, "still serving");
}

/// A rebuild finishing while a commit is in flight (its event inserted, not committed)
/// waits for it, and counts its event: not finished when the event is of its types,
/// built through it when not.
async fn finishing_a_rebuild_waits_for_a_commit_in_flight(url: String) {
    let store = PostgresStore::connect_with(&url, 8).await.unwrap();
    store.register_projection(spec("Credit", &[])).await.unwrap();
    store.register_projection(spec("Other", &[])).await.unwrap();
    store.commit(batch(vec![typed_commit("first", &["T.A"])])).await.unwrap();
    let position = log(&store).await[0].0;
    let build = store.begin_build("Credit", 2, Duration::from_secs(60)).await.unwrap().unwrap();

    for (n, (types, finished)) in
        [(vec!["T.A".to_owned()], false), (vec!["T.B".to_owned()], true)].into_iter().enumerate()
    {
        let hold = hold_projection(store.pool(), "Other").await;
        let mut in_flight = rows_batch(vec![change("Other", 1, "k", u64::try_from(n).unwrap(), Some("{}"))]);
        let commit = typed_commit(&format!("in-flight-{n}"), &["T.A"]);
        let id = commit.events[0].id;
        in_flight.commits = vec![commit];
        let writer = store.clone();
        let committing = tokio::spawn(async move { writer.commit(in_flight).await });
        lock_waiters(store.pool(), 1).await;
        let finisher = store.clone();
        let finishing = tokio::spawn(async move { finisher.finish_build("Credit", 2, position, &types).await });
        lock_waiters(store.pool(), 2).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!finishing.is_finished(), "it waits for the commit in flight");
        hold.commit().await.unwrap();
        committing.await.unwrap().unwrap();
        assert_eq!(finishing.await.unwrap().unwrap(), finished);
        let state = store.projection_state("Credit").await.unwrap().unwrap();
        if finished {
            assert_eq!(state.built_through, position_of(&store, id).await, "built through the event in flight");
            assert_eq!(state.generation, build.generation);
        } else {
            assert_eq!(state.build.map(|b| b.generation), Some(build.generation));
        }
    }
}

/// The log read by position and type, and counted; a page with a position not there yet
/// (a commit in flight took it) waits for that commit, so no event is passed over.
async fn the_log_reads_by_position_and_type_and_waits_for_commits_in_flight(url: String) {
    let store = PostgresStore::connect_with(&url, 8).await.unwrap();
    assert!(store.log_after(0, 10, &[]).await.unwrap().is_empty());
    assert_eq!(store.log_count(0, &[]).await.unwrap(), 0);
    store
        .commit(batch(vec![typed_commit("x", &["T.A", "T.B", "T.A"]), typed_commit("y", &["T.C", "T.B"])]))
        .await
        .unwrap();
    let all = store.log_after(0, 100, &[]).await.unwrap();
    let types: Vec<&str> = all.iter().map(|l| &*l.event.type_name).collect();
    assert_eq!(types, ["T.A", "T.B", "T.A", "T.C", "T.B"]);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(all[0].event, store.stream(&stream("Counter", "x")).await.unwrap()[0]);
    let positions = |logged: Vec<protean::store::Logged>| logged.iter().map(|l| l.position).collect::<Vec<_>>();
    let p: Vec<u64> = positions(all.clone());
    let ab = ["T.A".to_owned(), "T.B".to_owned(), "T.A".to_owned()];
    assert_eq!(positions(store.log_after(0, 100, &ab).await.unwrap()), [p[0], p[1], p[2], p[4]]);
    assert_eq!(positions(store.log_after(p[0], 2, &ab).await.unwrap()), [p[1], p[2]]);
    assert_eq!(positions(store.log_after(p[1], 2, &["T.C".into()]).await.unwrap()), [p[3]]);
    assert_eq!(positions(store.log_after(p[2], 100, &[]).await.unwrap()), [p[3], p[4]]);
    assert!(store.log_after(0, 0, &[]).await.unwrap().is_empty());
    assert_eq!(store.log_count(0, &[]).await.unwrap(), 5);
    assert_eq!(store.log_count(p[1], &ab).await.unwrap(), 2);
    assert_eq!(store.log_count(0, &["T.Z".into()]).await.unwrap(), 0);

    // A conflict leaves a position unused: the page after it is whole nonetheless.
    let mut refused = typed_commit("x", &["T.A"]);
    refused.expected_version = 7;
    store.commit(batch(vec![typed_commit("z", &["T.A"]), refused])).await.unwrap_err();
    store.commit(batch(vec![typed_commit("w", &["T.A"])])).await.unwrap();
    assert_eq!(store.log_after(p[4], 10, &[]).await.unwrap().len(), 1);

    store.register_projection(spec("Other", &[])).await.unwrap();
    for (n, types) in [vec![], vec!["T.A".to_owned()]].into_iter().enumerate() {
        let end = log(&store).await.last().unwrap().0;
        // An earlier position in flight, a later one committed.
        let hold = hold_projection(store.pool(), "Other").await;
        let mut in_flight = rows_batch(vec![change("Other", 1, "k", u64::try_from(n).unwrap(), Some("{}"))]);
        let commit = typed_commit(&format!("slow-{n}"), &["T.A"]);
        let slow = commit.events[0].id;
        in_flight.commits = vec![commit];
        let writer = store.clone();
        let committing = tokio::spawn(async move { writer.commit(in_flight).await });
        lock_waiters(store.pool(), 1).await;
        let fast = typed_commit(&format!("fast-{n}"), &["T.A"]);
        let fast_id = fast.events[0].id;
        store.commit(batch(vec![fast])).await.unwrap();
        let reader = store.clone();
        let reading = tokio::spawn(async move { reader.log_after(end, 10, &types).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!reading.is_finished(), "it waits for the earlier position");
        hold.commit().await.unwrap();
        committing.await.unwrap().unwrap();
        let read: Vec<Uuid> = reading.await.unwrap().unwrap().iter().map(|l| l.event.id).collect();
        assert_eq!(read, [slow, fast_id], "the earlier position first, not passed over");
    }

    // Once settled, a gap stays settled: this store reads the page with the rolled-back
    // position at once, even with a commit in flight; a new store waits for it once.
    let hold = hold_projection(store.pool(), "Other").await;
    let mut in_flight = rows_batch(vec![change("Other", 1, "k", 2, Some("{}"))]);
    in_flight.commits = vec![typed_commit("slow-again", &["T.A"])];
    let writer = store.clone();
    let committing = tokio::spawn(async move { writer.commit(in_flight).await });
    lock_waiters(store.pool(), 1).await;
    let read = tokio::time::timeout(Duration::from_secs(5), store.log_after(p[4], 1, &[])).await;
    assert_eq!(read.expect("no wait below what is settled").unwrap().len(), 1);
    let fresh = PostgresStore::connect_with(&url, 2).await.unwrap();
    let reading = tokio::spawn(async move { fresh.log_after(p[4], 1, &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!reading.is_finished(), "a new store knows nothing settled yet");
    hold.commit().await.unwrap();
    committing.await.unwrap().unwrap();
    assert_eq!(reading.await.unwrap().unwrap().len(), 1);
}

/// Scheduled commands come with commits (and wake the workers of other processes), are
/// listed per instance and by due time, claimed when due by one store at a time (locked
/// ones skipped, expired claims taken again), released, completed, and cancelled by name
/// in a commit that may schedule the same name again.
async fn scheduled_commands_are_kept_by_commits_and_claimed_when_due(url: String) {
    let a = PostgresStore::connect_with(&url, 4).await.unwrap();
    let b = PostgresStore::connect_with(&url, 4).await.unwrap();
    assert_eq!(a.next_due().await.unwrap(), None);
    let signal = b.outbox_signal().unwrap();
    tokio::time::timeout(Duration::from_secs(5), signal.notified()).await.expect("it listens");
    while tokio::time::timeout(Duration::from_millis(200), signal.notified()).await.is_ok() {}

    let now = to_the_microsecond(OffsetDateTime::now_utc());
    let secs = Duration::from_secs;
    let timeout = scheduled("Fulfilment", "o-1", Some("timeout"), now - secs(10));
    let send = scheduled("Fulfilment", "o-1", None, now - secs(20));
    let later = scheduled("Fulfilment", "o-1", Some("reminder"), now + secs(3600));
    let elsewhere = scheduled("Fulfilment", "o-2", Some("timeout"), now - secs(5));
    let mut first =
        Batch { schedule: vec![timeout.clone(), send.clone(), later.clone(), elsewhere.clone()], ..Batch::default() };
    first.commits = vec![counter_commit("fulfilment", &[])];
    a.commit(first).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), signal.notified()).await.expect("scheduling wakes the workers");

    assert_eq!(a.scheduled_of("Fulfilment", "o-1").await.unwrap(), [send.clone(), timeout.clone(), later.clone()]);
    assert!(a.scheduled_of("Fulfilment", "o-3").await.unwrap().is_empty());
    assert_eq!(a.next_due().await.unwrap(), Some(send.due_at));

    // A row locked elsewhere is skipped, not waited for.
    let mut locked = a.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM protean_scheduled WHERE id = $1 FOR UPDATE")
        .bind(send.id)
        .execute(&mut *locked)
        .await
        .unwrap();
    let lease = Duration::from_secs(60);
    let claimed = tokio::time::timeout(Duration::from_secs(5), a.claim_due(now, 2, lease)).await.unwrap().unwrap();
    assert_eq!(claimed, [timeout.clone(), elsewhere.clone()], "the earliest due, the locked one skipped");
    locked.rollback().await.unwrap();
    assert_eq!(b.claim_due(now, 10, lease).await.unwrap(), std::slice::from_ref(&send), "the rest is claimed already");
    assert!(a.claim_due(now, 10, lease).await.unwrap().is_empty());
    assert_eq!(a.next_due().await.unwrap(), Some(send.due_at), "claimed ones are pending still");
    // Past the lease they are claimable again; the future one once due.
    let expired = b.claim_due(now + secs(61), 10, secs(7200)).await.unwrap();
    assert_eq!(expired, [send.clone(), timeout.clone(), elsewhere.clone()]);
    assert_eq!(a.claim_due(now + secs(3600), 10, lease).await.unwrap(), std::slice::from_ref(&later));

    // Released by their holder only; then anyone's.
    a.release_scheduled(vec![send.id, timeout.id]).await.unwrap();
    assert!(a.claim_due(now + secs(61), 10, lease).await.unwrap().is_empty(), "b's claims are not a's to release");
    b.release_scheduled(vec![send.id, timeout.id]).await.unwrap();
    assert_eq!(a.claim_due(now, 10, lease).await.unwrap(), [send.clone(), timeout.clone()]);

    a.complete_scheduled(send.id).await.unwrap();
    a.complete_scheduled(send.id).await.unwrap();
    assert_eq!(a.next_due().await.unwrap(), Some(timeout.due_at));

    // Cancelled by name, for that instance only; scheduled again in the same batch.
    let again = scheduled("Fulfilment", "o-1", Some("timeout"), now + secs(30));
    let cancel = Cancel { owner: "Fulfilment".into(), owner_key: "o-1".into(), name: "timeout".into() };
    let unknown = Cancel { owner: "Fulfilment".into(), owner_key: "o-1".into(), name: "nothing".into() };
    a.commit(Batch { schedule: vec![again.clone()], cancel: vec![cancel.clone(), unknown], ..Batch::default() })
        .await
        .unwrap();
    assert_eq!(a.scheduled_of("Fulfilment", "o-1").await.unwrap(), [again.clone(), later.clone()]);
    assert_eq!(a.scheduled_of("Fulfilment", "o-2").await.unwrap(), std::slice::from_ref(&elsewhere));
    // A refused batch schedules and cancels nothing.
    let mut refused = counter_commit("fulfilment", &[]);
    refused.expected_version = 0;
    let dropped = scheduled("Fulfilment", "o-9", None, now);
    let error = a
        .commit(Batch { commits: vec![refused], schedule: vec![dropped], cancel: vec![cancel], ..Batch::default() })
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    assert!(a.scheduled_of("Fulfilment", "o-9").await.unwrap().is_empty());
    assert_eq!(a.scheduled_of("Fulfilment", "o-1").await.unwrap().len(), 2);
}

/// Version 5 had no projections, no scheduled commands and no index of the log by
/// position; version 6 adds them, and keeps the events and records there were.
async fn upgrading_from_version_5_keeps_the_data_and_adds_projections(url: String) {
    let (url, pool) = database_at(url, 5).await;
    let event_id = Uuid::now_v7();
    sqlx::query("INSERT INTO protean_aggregates VALUES ('Counter', 'old', 1, '{}', 1)").execute(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload, recorded_at,
         correlation_id, causation_id) VALUES ($1, 'Counter', 'old', 1, 'Counter.Bumped', 1,
         '{\"id\":\"old\",\"count\":1}', now(), $1, $1)",
    )
    .bind(event_id)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO protean_handled (handler, message_id, outcome) VALUES ('Counter.Bump', $1, '{}')")
        .bind(event_id)
        .execute(&pool)
        .await
        .unwrap();

    let store = PostgresStore::connect_with(&url, 2).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), POSTGRES_SCHEMA_VERSION);
    assert_eq!(commit_functions(&pool).await.len(), 1, "the commit function without rows is gone");
    assert_eq!(store.load(&stream("Counter", "old")).await.unwrap().unwrap().version, 1);
    assert_eq!(store.handled_outcome("Counter.Bump", event_id).await.unwrap(), Some(Some("{}".into())));
    let logged = store.log_after(0, 10, &["Counter.Bumped".into()]).await.unwrap();
    assert_eq!(logged.iter().map(|l| (l.position, l.event.id)).collect::<Vec<_>>(), [(1, event_id)]);
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE indexname IN ('protean_events_position',
         'protean_events_type_position', 'protean_scheduled_due', 'protean_scheduled_owner') ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(indexes.len(), 4, "{indexes:?}");

    // What version 6 adds works beside the old data, and migrating again keeps it.
    store.register_projection(spec("Credit", &["limit"])).await.unwrap();
    let mut first = rows_batch(vec![change("Credit", 1, "k", 0, Some(r#"{"limit":1}"#))]);
    first.rows_from = Some(event_id);
    first.schedule = vec![scheduled("Fulfilment", "o-1", None, OffsetDateTime::now_utc())];
    store.commit(first).await.unwrap();
    assert_eq!(store.projection_state("Credit").await.unwrap().unwrap().checkpoint, 1);
    store.migrate().await.unwrap();
    assert_eq!(store.projection_row("Credit", None, "k").await.unwrap().unwrap().version, 1);
    assert_eq!(store.scheduled_of("Fulfilment", "o-1").await.unwrap().len(), 1);
    assert_eq!(store.events(0, 10).await.unwrap().len(), 1);
}

/// Version 6 had no group commit function; version 7 adds it and changes nothing else: a
/// store that does not migrate refuses the database until it is migrated, the data stays,
/// and a group commits beside it.
async fn upgrading_from_version_6_adds_the_group_commit_function(url: String) {
    let (url, pool) = database_at(url, 6).await;
    let group_functions = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_proc WHERE proname = 'protean_commit_group'")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(group_functions().await, 0);
    // Written through version 6's own commit function.
    let old = counter_commit("old", &[1, 2]);
    let old_events: Vec<Uuid> = old.events.iter().map(|e| e.id).collect();
    sqlx::query(
        "SELECT protean_commit_batch(ARRAY['Counter'], ARRAY['old'], ARRAY[0::bigint], ARRAY[1::bigint],
         ARRAY['{}'], ARRAY[2], $1, ARRAY['Counter.Bumped', 'Counter.Bumped'], ARRAY[1, 1], ARRAY['{}', '{}'],
         ARRAY[now(), now()], $1, $1, 'Counter.Bump', $1[1], NULL, '{}', ARRAY[NULL], '{}', '{}', '{}', '{}', '{}',
         NULL, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}')",
    )
    .bind(&old_events)
    .execute(&pool)
    .await
    .unwrap();
    let error = PostgresStore::connect_without_migrating(&url).await.unwrap_err();
    assert!(is_schema(&error, 6), "{error:?}");

    let store = PostgresStore::connect_with(&url, 2).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), POSTGRES_SCHEMA_VERSION);
    assert_eq!(POSTGRES_SCHEMA_VERSION, SchemaVersion(9));
    assert_eq!(group_functions().await, 1);
    assert_eq!(commit_functions(&pool).await.len(), 1, "the commit function stays, one of it");
    assert_eq!(store.load(&stream("Counter", "old")).await.unwrap().unwrap().version, 1);
    assert_eq!(
        store.stream(&stream("Counter", "old")).await.unwrap().iter().map(|e| e.id).collect::<Vec<_>>(),
        old_events
    );
    assert!(store.is_handled("Counter.Bump", old_events[0]).await.unwrap());

    let mut next = counter_commit("old", &[3]);
    next.expected_version = 1;
    let outcomes = store.commit_group(vec![batch(vec![next]), batch(vec![counter_commit("new", &[1])])]).await;
    let outcomes: Vec<Vec<(u64, Vec<u64>)>> = outcomes
        .into_iter()
        .map(|o| o.unwrap().into_iter().map(|c| (c.version, c.events.iter().map(|e| e.sequence).collect())).collect())
        .collect();
    assert_eq!(outcomes, [vec![(2, vec![3])], vec![(1, vec![1])]]);
    store.migrate().await.unwrap();
    assert_eq!(group_functions().await, 1, "migrating again replaces it");
    assert!(PostgresStore::connect_without_migrating(&url).await.is_ok());
    assert_eq!(store.events(0, 10).await.unwrap().len(), 4);
}

/// Commits `events` (undelivered, new ids) to counter `id` through the commit function
/// itself, in a statement of its own: what the store sends, without the store.
async fn commit_through_the_function(pool: &PgPool, id: &str, events: usize) {
    let ids: Vec<Uuid> = (0..events).map(|_| Uuid::now_v7()).collect();
    let n = i32::try_from(events).unwrap();
    sqlx::query(
        "SELECT protean_commit_batch(ARRAY['Counter'], ARRAY[$2], ARRAY[0::bigint], ARRAY[1::bigint],
         ARRAY['{}'], ARRAY[$3], $1, array_fill('Counter.Bumped'::text, ARRAY[$3]), array_fill(1, ARRAY[$3]),
         array_fill('{}'::text, ARRAY[$3]), array_fill(now(), ARRAY[$3]), $1, $1, NULL, NULL, NULL, '{}',
         ARRAY[NULL], '{}', '{}', '{}', '{}', '{}', NULL, '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}',
         '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}')",
    )
    .bind(&ids)
    .bind(id)
    .bind(n)
    .execute(pool)
    .await
    .unwrap();
}

/// The notifications on the outbox's channel that `listener` receives within `quiet` of
/// the last one.
async fn notifications(listener: &mut sqlx::postgres::PgListener, quiet: Duration) -> usize {
    let mut n = 0;
    while let Ok(received) = tokio::time::timeout(quiet, listener.recv()).await {
        received.unwrap();
        n += 1;
    }
    n
}

/// The commit function sends no `NOTIFY` (a transaction that notifies holds a
/// cluster-wide lock through its WAL flush, so such commits could not share one): the
/// store notifies after the commit, once per commit or group, however many events. A
/// database migrated by earlier code whose commit function did notify gets the function
/// replaced when it is migrated again.
async fn the_commit_function_does_not_notify_the_store_does_after_the_commit(url: String) {
    let store = PostgresStore::connect_with(&url, 2).await.unwrap();
    let mut listener = sqlx::postgres::PgListener::connect(&url).await.unwrap();
    listener.listen("protean_outbox").await.unwrap();

    commit_through_the_function(store.pool(), "raw", 2).await;
    assert_eq!(notifications(&mut listener, Duration::from_millis(500)).await, 0, "the function is silent");
    assert_eq!(store.stream(&stream("Counter", "raw")).await.unwrap().len(), 2, "yet it committed");

    store.commit(batch(vec![counter_commit("one", &[1, 2, 3])])).await.unwrap();
    assert_eq!(notifications(&mut listener, Duration::from_millis(500)).await, 1, "one for the commit");
    let group = vec![
        batch(vec![counter_commit("g-1", &[1])]),
        batch(vec![counter_commit("g-2", &[1, 2])]),
        batch(vec![counter_commit("g-3", &[1])]),
    ];
    assert!(store.commit_group(group).await.iter().all(Result::is_ok));
    assert_eq!(notifications(&mut listener, Duration::from_millis(500)).await, 1, "one for the group");
    // A group of which only delivered events and a conflict: nothing to wake for.
    let delivered = counter_commit("g-4", &[1]);
    let ids = delivered.events.iter().map(|e| e.id).collect();
    let quiet = vec![
        Batch { commits: vec![delivered], delivered: ids, ..Batch::default() },
        batch(vec![counter_commit("g-1", &[2])]),
    ];
    let outcomes = store.commit_group(quiet).await;
    assert!(outcomes[0].is_ok() && matches!(outcomes[1], Err(StoreError::Conflict(_))), "{outcomes:?}");
    assert_eq!(notifications(&mut listener, Duration::from_millis(500)).await, 0, "none without an undelivered event");

    // A commit function that notifies, as the first code of schema version 7 made it.
    let definition: String = sqlx::query_scalar("SELECT pg_get_functiondef('protean_commit_batch'::regproc)")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let notifying = definition.replacen(
        "RETURN firsts || versions_out;",
        "PERFORM pg_notify('protean_outbox', ''); RETURN firsts || versions_out;",
        1,
    );
    assert_ne!(notifying, definition);
    sqlx::raw_sql(&notifying).execute(store.pool()).await.unwrap();
    commit_through_the_function(store.pool(), "old", 1).await;
    assert_eq!(notifications(&mut listener, Duration::from_millis(500)).await, 1, "the old function notified");
    store.migrate().await.unwrap();
    commit_through_the_function(store.pool(), "migrated", 1).await;
    assert_eq!(notifications(&mut listener, Duration::from_millis(500)).await, 0, "migrating replaced it");
    store.commit(batch(vec![counter_commit("after", &[1])])).await.unwrap();
    assert_eq!(notifications(&mut listener, Duration::from_millis(500)).await, 1);
}

/// A URL whose server refuses the connection (nothing listens on its port) fails at once,
/// not after the pool's acquire timeout, and the error says why.
async fn a_closed_port_is_refused_at_once_with_the_cause() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = std::time::Instant::now();
    let error = PostgresStore::connect(&format!("postgres://postgres@127.0.0.1:{port}/postgres")).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(2), "refused after {elapsed:?}");
    assert!(matches!(error, StoreError::Backend { backend: "postgres", .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.starts_with("the postgres store failed: "), "{message}");
    assert!(message.to_lowercase().contains("connection refused"), "the cause is in the message: {message}");
    // The same through `connect`, which a user meets first.
    let error = protean::store::connect(&format!("postgres://postgres@127.0.0.1:{port}/postgres")).await.err();
    assert!(error.unwrap().to_string().to_lowercase().contains("connection refused"));
}

/// A server that takes the connection and never answers fails after the connect timeout,
/// with an error naming the address and the setting.
async fn a_server_that_does_not_answer_fails_after_the_connect_timeout() {
    // Listening, so the kernel takes the connection; never accepted, so nothing answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = std::time::Instant::now();
    let options = PostgresStore::options().connect_timeout(Duration::from_millis(300));
    let error = options.connect(&format!("postgres://postgres@127.0.0.1:{port}/postgres")).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2), "gave up after {elapsed:?}");
    assert_eq!(
        error.to_string(),
        format!("the postgres store failed: 127.0.0.1:{port} did not answer within 300ms (PostgresOptions::connect_timeout)")
    );
    drop(silent);
}

/// `sslmode=require` asks for TLS. With the `postgres-tls` feature, against the test
/// server (which has no TLS) it fails at once, saying the server does not support TLS;
/// `sslmode=prefer` goes on without. Without the feature, the error names the feature.
async fn tls_is_a_feature_and_a_server_without_it_is_refused_when_required(url: String) {
    let with = |mode: &str| format!("{url}?sslmode={mode}");
    let started = std::time::Instant::now();
    let error = PostgresStore::connect(&with("require")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "refused after {:?}", started.elapsed());
    let message = error.to_string();
    if cfg!(feature = "postgres-tls") {
        assert!(matches!(error, StoreError::Backend { backend: "postgres", .. }), "{error:?}");
        assert!(message.contains("TLS") && message.contains("server does not support TLS"), "{message}");
    } else {
        assert!(matches!(error, StoreError::Unsupported(_)), "{error:?}");
        assert!(message.contains("sslmode=require") && message.contains("`postgres-tls` feature"), "{message}");
    }
    let store = PostgresStore::connect(&with("prefer")).await.expect("sslmode=prefer goes on without TLS");
    store.commit(batch(vec![counter_commit("tls", &[1])])).await.unwrap();
    store.close().await.unwrap();
}

/// Closing a store finishes its work and releases what it holds: later calls, on any
/// clone, are `StoreError::Closed`, and its owner's advisory lock is released at once, so
/// another store claims the events it had claimed without waiting for their lease.
async fn closing_releases_the_connections_and_the_claims(url: String) {
    let first = PostgresStore::connect_with(&url, 2).await.unwrap();
    let other = PostgresStore::connect_with(&url, 2).await.unwrap();
    let _signal = first.outbox_signal().expect("a listener, to be stopped too");
    first.commit(batch(vec![counter_commit("held", &[1])])).await.unwrap();
    let claimed = first.claim_undelivered(10, Duration::from_secs(3600)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(other.claim_undelivered(10, Duration::from_secs(60)).await.unwrap().is_empty(), "claimed by a live store");

    let clone = first.clone();
    Records::close(&first).await.unwrap();
    let closed = StoreError::Closed { backend: "postgres" };
    assert_eq!(clone.load(&stream("Counter", "held")).await.unwrap_err(), closed);
    let refused = clone.commit(batch(vec![counter_commit("late", &[1])])).await.unwrap_err();
    assert_eq!(refused, closed);
    assert!(clone.outbox_signal().is_none(), "no listener starts again");
    clone.close().await.unwrap();

    let taken = other.claim_undelivered(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(taken.iter().map(|e| e.id).collect::<Vec<_>>(), vec![claimed[0].id], "free at once");
    assert!(other.load(&stream("Counter", "late")).await.unwrap().is_none(), "a refused commit wrote nothing");
    other.close().await.unwrap();
}

fn main() -> std::process::ExitCode {
    harness::run(vec![
        harness::test(
            "a_closed_port_is_refused_at_once_with_the_cause",
            a_closed_port_is_refused_at_once_with_the_cause,
        ),
        harness::test(
            "a_server_that_does_not_answer_fails_after_the_connect_timeout",
            a_server_that_does_not_answer_fails_after_the_connect_timeout,
        ),
        harness::postgres::test(
            "tls_is_a_feature_and_a_server_without_it_is_refused_when_required",
            tls_is_a_feature_and_a_server_without_it_is_refused_when_required,
        ),
        harness::postgres::test(
            "closing_releases_the_connections_and_the_claims",
            closing_releases_the_connections_and_the_claims,
        ),
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
            "the_commit_function_does_not_notify_the_store_does_after_the_commit",
            the_commit_function_does_not_notify_the_store_does_after_the_commit,
        ),
        harness::postgres::test(
            "a_claim_does_not_pass_over_an_event_locked_for_a_moment",
            a_claim_does_not_pass_over_an_event_locked_for_a_moment,
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
        harness::postgres::test(
            "row_changes_check_versions_and_a_conflict_refuses_the_whole_batch",
            row_changes_check_versions_and_a_conflict_refuses_the_whole_batch,
        ),
        harness::postgres::test(
            "row_changes_are_skipped_while_a_rebuild_runs_or_when_it_covered_their_event",
            row_changes_are_skipped_while_a_rebuild_runs_or_when_it_covered_their_event,
        ),
        harness::postgres::test(
            "registering_is_idempotent_and_safe_from_two_processes_at_once",
            registering_is_idempotent_and_safe_from_two_processes_at_once,
        ),
        harness::postgres::test("queries_filter_and_order_rows_by_kind", queries_filter_and_order_rows_by_kind),
        harness::postgres::test(
            "a_rebuild_begins_is_taken_over_writes_and_finishes",
            a_rebuild_begins_is_taken_over_writes_and_finishes,
        ),
        harness::postgres::test(
            "finishing_a_rebuild_waits_for_a_commit_in_flight",
            finishing_a_rebuild_waits_for_a_commit_in_flight,
        ),
        harness::postgres::test(
            "the_log_reads_by_position_and_type_and_waits_for_commits_in_flight",
            the_log_reads_by_position_and_type_and_waits_for_commits_in_flight,
        ),
        harness::postgres::test(
            "scheduled_commands_are_kept_by_commits_and_claimed_when_due",
            scheduled_commands_are_kept_by_commits_and_claimed_when_due,
        ),
        harness::postgres::test(
            "upgrading_from_version_5_keeps_the_data_and_adds_projections",
            upgrading_from_version_5_keeps_the_data_and_adds_projections,
        ),
        harness::postgres::test(
            "upgrading_from_version_6_adds_the_group_commit_function",
            upgrading_from_version_6_adds_the_group_commit_function,
        ),
    ])
}
