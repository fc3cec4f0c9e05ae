//! What only the SQLite store has. Its projections, rebuilds, positioned log and scheduled
//! commands: row changes applied with a commit by the rule every store follows (checked
//! versions, the whole batch refused on a conflict, skipped while a rebuild runs or when
//! the rebuild covered their event), queries over the declared fields through their
//! indexes, rebuilds begun, taken over, written and finished, the log read by position and
//! type, commands scheduled, cancelled, claimed, released and completed. Rows written
//! behind the store's back (malformed or not UTF-8), which read as typed errors. And files
//! an older protean wrote (schemas 2, 4 and 5), migrated with their data.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use protean::store::{
    Batch, Cancel, Commit, Deliveries, Envelope, FailureQuery, FailureStatus, FailureUpdate, FilterOp, Handled,
    OffsetDateTime, Outbox, ProjectionSpec, Projections, Records, RowChange, RowFilter, RowOrder, RowQuery, Schedule,
    Scheduled, SchemaVersion, SqliteStore, StoreError, StreamId, VersionConflict, SQLITE_SCHEMA_VERSION,
};
use serde_json::json;
use uuid::Uuid;

/// A store on a file in a fresh directory (so reads run on the reader threads), and the
/// file's path.
fn scratch() -> (SqliteStore, PathBuf) {
    let dir = std::env::temp_dir().join(format!("protean-projections-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    (SqliteStore::open(&path).unwrap(), path)
}

fn remove(path: &Path) {
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

const CREDIT: &str = "Credit";

fn spec(version: u32) -> ProjectionSpec {
    ProjectionSpec {
        name: CREDIT.into(),
        version,
        indexed: vec!["balance".into(), "name".into(), "active".into(), "note".into()],
    }
}

fn event(type_name: &'static str, stream: &StreamId) -> Envelope {
    Envelope::stored_event(
        Uuid::now_v7(),
        type_name.into(),
        1,
        stream.clone(),
        0,
        OffsetDateTime::now_utc(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        "{}".into(),
    )
}

/// A commit adding a new aggregate that raised events of `types`.
fn raised(types: &[&'static str]) -> Commit {
    let stream = StreamId::new("Account", Uuid::now_v7().to_string());
    Commit {
        events: types.iter().map(|t| event(t, &stream)).collect(),
        stream,
        expected_version: 0,
        advance: 1,
        state: Some("{}".into()),
        snapshot: None,
    }
}

/// Appends events of `types` (one aggregate); their envelopes as stored.
async fn append(store: &SqliteStore, types: &[&'static str]) -> Vec<Envelope> {
    let batch = Batch { commits: vec![raised(types)], ..Batch::default() };
    store.commit(batch).await.unwrap().remove(0).events
}

fn change(generation: u64, key: &str, expected_version: u64, json: Option<serde_json::Value>) -> RowChange {
    RowChange {
        projection: CREDIT.into(),
        generation,
        key: key.to_owned(),
        expected_version,
        json: json.map(|j| Arc::from(j.to_string())),
    }
}

/// A batch of inline row changes, with an aggregate raising one event.
fn inline(rows: Vec<RowChange>) -> Batch {
    Batch { commits: vec![raised(&["Account.Opened"])], rows, ..Batch::default() }
}

async fn row_json(store: &SqliteStore, key: &str) -> Option<(u64, serde_json::Value)> {
    let row = store.projection_row(CREDIT, None, key).await.unwrap()?;
    Some((row.version, serde_json::from_str(&row.json).unwrap()))
}

async fn last_position(store: &SqliteStore) -> u64 {
    store.log_after(0, usize::MAX, &[]).await.unwrap().last().map_or(0, |l| l.position)
}

fn scheduled(owner_key: &str, name: Option<&str>, due_at: OffsetDateTime) -> Scheduled {
    Scheduled {
        id: Uuid::now_v7(),
        owner: "Fulfilment".into(),
        owner_key: owner_key.to_owned(),
        name: name.map(str::to_owned),
        due_at,
        type_name: "Order.CancelOrder".into(),
        payload: r#"{"order":"o-1"}"#.into(),
        correlation_id: Uuid::now_v7(),
        causation_id: Uuid::now_v7(),
    }
}

/// Times as the store keeps them: to the microsecond.
fn micros(time: OffsetDateTime) -> OffsetDateTime {
    time.replace_nanosecond(time.nanosecond() / 1_000 * 1_000).unwrap()
}

#[tokio::test]
async fn registering_is_idempotent_and_says_whether_it_created() {
    let (store, path) = scratch();
    assert_eq!(store.projection_state(CREDIT).await.unwrap(), None);
    let first = store.register_projection(spec(1)).await.unwrap();
    assert!(first.created);
    assert_eq!(
        (first.name.as_str(), first.version, first.generation, first.built_through, first.checkpoint),
        (CREDIT, 1, 1, 0, 0)
    );
    assert_eq!(first.build, None);
    // Again, even at another version: the stored version is left for a rebuild.
    let again = store.register_projection(spec(2)).await.unwrap();
    assert!(!again.created);
    assert_eq!(again, protean::store::ProjectionState { created: false, ..first.clone() });
    assert_eq!(store.projection_state(CREDIT).await.unwrap(), Some(again));
    // One index per declared field, for this projection's rows.
    let indexes: Vec<String> = raw(&path)
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'protean_projection_rows' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .filter(|name: &String| !name.starts_with("sqlite_autoindex"))
        .collect();
    assert_eq!(
        indexes,
        [
            "protean_rows__Credit__active",
            "protean_rows__Credit__balance",
            "protean_rows__Credit__name",
            "protean_rows__Credit__note"
        ]
    );
    // A field name that cannot be written into SQL is refused, and nothing is created.
    let bad = ProjectionSpec { name: "Bad".into(), version: 1, indexed: vec!["a'); DROP TABLE x; --".into()] };
    assert!(matches!(store.register_projection(bad).await, Err(StoreError::Unsupported(_))));
    assert_eq!(store.projection_state("Bad").await.unwrap(), None);
    // A name with quotes is fine: it is a literal in the index's condition.
    let quoted = ProjectionSpec { name: "O'Brien's view".into(), version: 1, indexed: vec!["balance".into()] };
    assert!(store.register_projection(quoted).await.unwrap().created);
    remove(&path);
}

#[tokio::test]
async fn row_changes_check_versions_and_a_conflict_refuses_the_whole_batch() {
    let (store, path) = scratch();
    store.register_projection(spec(1)).await.unwrap();
    store.commit(inline(vec![change(1, "a", 0, Some(json!({"balance": 10})))])).await.unwrap();
    assert_eq!(row_json(&store, "a").await, Some((1, json!({"balance": 10}))));
    let row = store.projection_row(CREDIT, Some(1), "a").await.unwrap().unwrap();
    assert_eq!((row.key.as_str(), row.generation, row.version), ("a", 1, 1));
    assert_eq!(store.projection_row(CREDIT, Some(2), "a").await.unwrap(), None, "no such copy");
    // The checkpoint is the position of the batch's own (last) event.
    assert_eq!(store.projection_state(CREDIT).await.unwrap().unwrap().checkpoint, last_position(&store).await);

    store.commit(inline(vec![change(1, "a", 1, Some(json!({"balance": 20})))])).await.unwrap();
    assert_eq!(row_json(&store, "a").await, Some((2, json!({"balance": 20}))));
    let checkpoint = store.projection_state(CREDIT).await.unwrap().unwrap().checkpoint;
    let events_before = last_position(&store).await;

    // A stale version: nothing of the batch is written, not the aggregate, not the other
    // row, not the scheduled command, not the handled record.
    let handled = Uuid::now_v7();
    let mut batch =
        inline(vec![change(1, "b", 0, Some(json!({"balance": 1}))), change(1, "a", 1, Some(json!({"balance": 30})))]);
    let aggregate = batch.commits[0].stream.clone();
    batch.schedule = vec![scheduled("o-1", None, OffsetDateTime::now_utc())];
    batch.handled = Some(Handled::event("H::m", handled));
    let error = store.commit(batch).await.unwrap_err();
    let expected = VersionConflict { stream: StreamId::new(CREDIT, "a"), expected: 1, actual: 2 };
    assert_eq!(error, StoreError::Conflict(expected));
    assert_eq!(store.load(&aggregate).await.unwrap(), None);
    assert_eq!(row_json(&store, "b").await, None);
    assert_eq!(row_json(&store, "a").await, Some((2, json!({"balance": 20}))));
    assert_eq!(store.scheduled_of("Fulfilment", "o-1").await.unwrap(), []);
    assert!(!store.is_handled("H::m", handled).await.unwrap());
    assert_eq!(last_position(&store).await, events_before);
    assert_eq!(store.projection_state(CREDIT).await.unwrap().unwrap().checkpoint, checkpoint);

    // A row that exists, written as new; one that does not, written as existing.
    let error = store.commit(inline(vec![change(1, "a", 0, Some(json!({})))])).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(VersionConflict { expected: 0, actual: 2, .. })), "{error}");
    let error = store.commit(inline(vec![change(1, "z", 3, None)])).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(VersionConflict { expected: 3, actual: 0, .. })), "{error}");
    // Another copy than the serving one.
    let error = store.commit(inline(vec![change(2, "a", 2, Some(json!({})))])).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(VersionConflict { expected: 2, actual: 2, .. })), "{error}");

    // Deleted, then written again from version 0.
    store.commit(inline(vec![change(1, "a", 2, None)])).await.unwrap();
    assert_eq!(row_json(&store, "a").await, None);
    store.commit(inline(vec![change(1, "a", 0, Some(json!({"balance": 5})))])).await.unwrap();
    assert_eq!(row_json(&store, "a").await, Some((1, json!({"balance": 5}))));

    // Text that is not JSON is not written.
    let mut bad = change(1, "c", 0, None);
    bad.json = Some("{not json".into());
    assert!(matches!(store.commit(inline(vec![bad])).await, Err(StoreError::Serialize { .. })));
    assert_eq!(row_json(&store, "c").await, None);
    // Rows of a projection the store does not keep.
    let mut unknown = change(1, "a", 0, Some(json!({})));
    unknown.projection = "Nope".into();
    assert!(matches!(store.commit(inline(vec![unknown])).await, Err(StoreError::Unsupported(_))));

    // Changes from a stored event (an async projector's) move the checkpoint to its position.
    let from = append(&store, &["Account.Credited"]).await.remove(0);
    append(&store, &["Account.Credited"]).await;
    let batch = Batch {
        rows: vec![change(1, "a", 1, Some(json!({"balance": 6})))],
        rows_from: Some(from.id),
        handled: Some(Handled::event("Credit::on", from.id)),
        ..Batch::default()
    };
    store.commit(batch).await.unwrap();
    let from_position =
        store.log_after(0, 100, &[]).await.unwrap().iter().find(|l| l.event.id == from.id).unwrap().position;
    let state = store.projection_state(CREDIT).await.unwrap().unwrap();
    assert_eq!(state.checkpoint, from_position);
    // An earlier event's changes do not move it back.
    let earlier = store.log_after(0, 1, &[]).await.unwrap().remove(0).event.id;
    let batch = Batch { rows: vec![change(1, "a", 2, None)], rows_from: Some(earlier), ..Batch::default() };
    store.commit(batch).await.unwrap();
    assert_eq!(row_json(&store, "a").await, None);
    assert_eq!(store.projection_state(CREDIT).await.unwrap().unwrap().checkpoint, from_position);
    remove(&path);
}

#[tokio::test]
async fn row_changes_are_skipped_while_rebuilding_and_when_the_rebuild_covered_their_event() {
    let (store, path) = scratch();
    store.register_projection(spec(1)).await.unwrap();
    let covered = append(&store, &["Account.Credited"]).await.remove(0);
    store.commit(inline(vec![change(1, "a", 0, Some(json!({"balance": 1})))])).await.unwrap();
    let checkpoint = store.projection_state(CREDIT).await.unwrap().unwrap().checkpoint;

    // While a rebuild runs, changes are skipped (even ones that would conflict); the rest
    // of the batch is written.
    let build = store.begin_build(CREDIT, 2, Duration::from_secs(60)).await.unwrap().unwrap();
    let mut batch = inline(vec![change(1, "a", 7, Some(json!({"balance": 99}))), change(1, "b", 0, Some(json!({})))]);
    let aggregate = batch.commits[0].stream.clone();
    batch.handled = Some(Handled::event("H::m", Uuid::now_v7()));
    store.commit(batch).await.unwrap();
    assert!(store.load(&aggregate).await.unwrap().is_some());
    assert_eq!(row_json(&store, "a").await, Some((1, json!({"balance": 1}))));
    assert_eq!(row_json(&store, "b").await, None);
    assert_eq!(store.projection_state(CREDIT).await.unwrap().unwrap().checkpoint, checkpoint);

    // The rebuild applies everything and finishes; it is built through the last position.
    let log = store.log_after(0, 100, &[]).await.unwrap();
    let through = log.last().unwrap().position;
    store
        .write_build(CREDIT, build.generation, vec![("a".into(), Some(r#"{"balance":2}"#.into()))], through)
        .await
        .unwrap();
    assert!(store.finish_build(CREDIT, build.generation, through, &[]).await.unwrap());
    let state = store.projection_state(CREDIT).await.unwrap().unwrap();
    assert_eq!((state.generation, state.version, state.built_through, state.checkpoint), (2, 2, through, through));

    // A change from an event the rebuild covered is skipped, whatever it says.
    let batch = Batch {
        rows: vec![change(1, "a", 9, Some(json!({"balance": 99})))],
        rows_from: Some(covered.id),
        handled: Some(Handled::event("Credit::on", covered.id)),
        ..Batch::default()
    };
    store.commit(batch).await.unwrap();
    assert!(store.is_handled("Credit::on", covered.id).await.unwrap(), "the rest of the batch is written");
    assert_eq!(row_json(&store, "a").await, Some((1, json!({"balance": 2}))));
    // The last event the rebuild covered: skipped too (at built_through).
    let last = log.last().unwrap().event.id;
    let batch = Batch { rows: vec![change(2, "a", 9, None)], rows_from: Some(last), ..Batch::default() };
    store.commit(batch).await.unwrap();
    assert_eq!(row_json(&store, "a").await, Some((1, json!({"balance": 2}))));
    // A later event: applied, and checked.
    let later = append(&store, &["Account.Credited"]).await.remove(0);
    let batch = Batch { rows: vec![change(2, "a", 9, None)], rows_from: Some(later.id), ..Batch::default() };
    assert!(matches!(store.commit(batch).await, Err(StoreError::Conflict(_))));
    let batch = Batch {
        rows: vec![change(2, "a", 1, Some(json!({"balance": 3})))],
        rows_from: Some(later.id),
        ..Batch::default()
    };
    store.commit(batch).await.unwrap();
    assert_eq!(row_json(&store, "a").await, Some((2, json!({"balance": 3}))));
    let state = store.projection_state(CREDIT).await.unwrap().unwrap();
    assert_eq!(state.checkpoint, last_position(&store).await);
    remove(&path);
}

/// Rows for the query tests: numbers (integers and floats), strings, booleans, nulls and
/// missing fields, and values of the wrong kind.
async fn query_rows(store: &SqliteStore) {
    store.register_projection(spec(1)).await.unwrap();
    let rows = [
        ("k1", json!({"balance": 10, "name": "ann", "active": true, "note": null})),
        ("k2", json!({"balance": 2.5, "name": "bob", "active": false, "note": "vip"})),
        ("k3", json!({"balance": -3, "name": "cid", "active": true})),
        ("k4", json!({"balance": 10, "name": "dan", "active": 1, "note": "x"})),
        ("k5", json!({"balance": "11", "name": "eve", "active": "true", "note": {"a": 1}})),
        ("k6", json!({"balance": 1, "name": 5, "active": false})),
    ];
    let changes = rows.iter().map(|(key, json)| change(1, key, 0, Some(json.clone()))).collect();
    store.commit(inline(changes)).await.unwrap();
}

fn filter(field: &str, op: FilterOp, value: serde_json::Value) -> RowFilter {
    RowFilter { field: field.into(), op, value }
}

fn asc(field: &str) -> RowOrder {
    RowOrder { field: field.into(), descending: false }
}

fn desc(field: &str) -> RowOrder {
    RowOrder { field: field.into(), descending: true }
}

async fn keys(store: &SqliteStore, filters: Vec<RowFilter>, order: Vec<RowOrder>) -> Vec<String> {
    let query = RowQuery { projection: CREDIT.into(), filters, order, limit: 100, offset: 0 };
    store.query_projection(query).await.unwrap().into_iter().map(|r| r.key).collect()
}

#[tokio::test]
async fn queries_filter_by_kind_order_and_page() {
    let (store, path) = scratch();
    query_rows(&store).await;
    use FilterOp::*;
    // Numbers compare as numbers, integers with floats; strings and booleans stay out.
    assert_eq!(keys(&store, vec![filter("balance", Eq, json!(10))], vec![]).await, ["k1", "k4"]);
    assert_eq!(keys(&store, vec![filter("balance", Eq, json!(10.0))], vec![]).await, ["k1", "k4"]);
    assert_eq!(keys(&store, vec![filter("balance", Gt, json!(2))], vec![]).await, ["k1", "k2", "k4"]);
    assert_eq!(keys(&store, vec![filter("balance", Ge, json!(2.5))], vec![]).await, ["k1", "k2", "k4"]);
    assert_eq!(keys(&store, vec![filter("balance", Lt, json!(1))], vec![]).await, ["k3"]);
    assert_eq!(keys(&store, vec![filter("balance", Le, json!(1))], vec![]).await, ["k3", "k6"]);
    assert_eq!(keys(&store, vec![filter("balance", Ne, json!(10))], vec![]).await, ["k2", "k3", "k6"]);
    // Strings as strings: no number matches.
    assert_eq!(keys(&store, vec![filter("balance", Eq, json!("11"))], vec![]).await, ["k5"]);
    assert_eq!(keys(&store, vec![filter("name", Gt, json!("c"))], vec![]).await, ["k3", "k4", "k5"]);
    assert_eq!(keys(&store, vec![filter("name", Ne, json!("ann"))], vec![]).await, ["k2", "k3", "k4", "k5"]);
    // Booleans as booleans: not 1, not "true".
    assert_eq!(keys(&store, vec![filter("active", Eq, json!(true))], vec![]).await, ["k1", "k3"]);
    assert_eq!(keys(&store, vec![filter("active", Ne, json!(true))], vec![]).await, ["k2", "k6"]);
    assert_eq!(keys(&store, vec![filter("active", Eq, json!(1))], vec![]).await, ["k4"]);
    // Null: null or missing; present and not null (objects included).
    assert_eq!(keys(&store, vec![filter("note", Eq, json!(null))], vec![]).await, ["k1", "k3", "k6"]);
    assert_eq!(keys(&store, vec![filter("note", Ne, json!(null))], vec![]).await, ["k2", "k4", "k5"]);
    // A string never matches an object's JSON text.
    assert_eq!(keys(&store, vec![filter("note", Eq, json!(r#"{"a":1}"#))], vec![]).await, Vec::<String>::new());
    // Every filter holds.
    let both = vec![filter("balance", Eq, json!(10)), filter("active", Eq, json!(true))];
    assert_eq!(keys(&store, both, vec![]).await, ["k1"]);

    // Order by the fields, then the key.
    let numbers = vec![filter("balance", Ge, json!(-100))];
    assert_eq!(keys(&store, numbers.clone(), vec![asc("balance")]).await, ["k3", "k6", "k2", "k1", "k4"]);
    assert_eq!(keys(&store, numbers.clone(), vec![desc("balance")]).await, ["k1", "k4", "k2", "k6", "k3"]);
    assert_eq!(keys(&store, numbers, vec![desc("balance"), desc("name")]).await, ["k4", "k1", "k2", "k6", "k3"]);
    assert_eq!(keys(&store, vec![], vec![]).await, ["k1", "k2", "k3", "k4", "k5", "k6"]);
    // Paging.
    let page = |offset, limit| RowQuery {
        projection: CREDIT.into(),
        filters: vec![],
        order: vec![asc("name")],
        limit,
        offset,
    };
    let found = store.query_projection(page(1, 2)).await.unwrap();
    assert_eq!(found.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["k1", "k2"], "k6's name, 5, sorts first");
    assert_eq!(found[0].version, 1);
    assert_eq!(found[0].generation, 1);
    assert!(store.query_projection(page(10, 2)).await.unwrap().is_empty());
    assert!(store.query_projection(page(0, 0)).await.unwrap().is_empty());

    // What a store cannot do.
    for bad in [
        filter("note", Lt, json!(null)),
        filter("note", Eq, json!([1])),
        filter("note", Eq, json!({"a": 1})),
        filter("no'te", Eq, json!(1)),
    ] {
        let query = RowQuery { projection: CREDIT.into(), filters: vec![bad], order: vec![], limit: 10, offset: 0 };
        assert!(matches!(store.query_projection(query).await, Err(StoreError::Unsupported(_))));
    }
    let query = RowQuery { projection: CREDIT.into(), filters: vec![], order: vec![asc("a.b")], limit: 10, offset: 0 };
    assert!(matches!(store.query_projection(query).await, Err(StoreError::Unsupported(_))));
    // A projection the store does not keep has no rows.
    let query = RowQuery { projection: "Nope".into(), filters: vec![], order: vec![], limit: 10, offset: 0 };
    assert!(store.query_projection(query).await.unwrap().is_empty());

    // Only the serving copy is queried.
    let build = store.begin_build(CREDIT, 2, Duration::from_secs(60)).await.unwrap().unwrap();
    store
        .write_build(CREDIT, build.generation, vec![("n1".into(), Some(r#"{"balance":10}"#.into()))], 0)
        .await
        .unwrap();
    assert_eq!(keys(&store, vec![filter("balance", Eq, json!(10))], vec![]).await, ["k1", "k4"]);
    remove(&path);
}

/// The plan SQLite makes for the statements the store runs, on a copy of its schema:
/// the expression of a declared field finds its index.
#[tokio::test]
async fn declared_fields_are_indexed_for_queries_and_the_log_by_type() {
    let (store, path) = scratch();
    query_rows(&store).await;
    drop(store);
    let raw = raw(&path);
    let plan = |sql: &str| -> String {
        let mut explain = raw.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = explain.query_map([], |r| r.get::<_, String>("detail")).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    };
    let serving = "r.generation = (SELECT generation FROM protean_projections WHERE name = 'Credit')";
    let planned = plan(&format!(
        "SELECT r.key FROM protean_projection_rows AS r WHERE r.projection = 'Credit' AND {serving}
         AND json_extract(json, '$.balance') > 3 ORDER BY r.key"
    ));
    assert!(planned.contains("USING INDEX protean_rows__Credit__balance"), "{planned}");
    let planned = plan(&format!(
        "SELECT r.key FROM protean_projection_rows AS r INDEXED BY protean_rows__Credit__name
         WHERE r.projection = 'Credit' AND {serving} AND json_extract(json, '$.name') = 'ann' ORDER BY r.key"
    ));
    assert!(
        planned.contains("USING INDEX protean_rows__Credit__name (projection=? AND generation=? AND <expr>=?)"),
        "{planned}"
    );
    assert!(!planned.contains("TEMP B-TREE"), "{planned}");
    let planned = plan("SELECT count(*) FROM protean_events WHERE position > 0 AND type_name IN ('A', 'B')");
    assert!(planned.contains("protean_events_type"), "{planned}");
    let planned =
        plan("SELECT * FROM protean_events WHERE position > 0 AND type_name IN ('A', 'B') ORDER BY position LIMIT 5");
    assert!(planned.contains("protean_events_type") || planned.contains("INTEGER PRIMARY KEY"), "{planned}");
    let planned = plan("SELECT id FROM protean_scheduled WHERE due_at <= 5 ORDER BY due_at, id LIMIT 5");
    assert!(planned.contains("protean_scheduled_due") && !planned.contains("TEMP B-TREE"), "{planned}");
    remove(&path);
}

#[tokio::test]
async fn a_rebuild_begins_is_taken_over_writes_and_finishes_when_nothing_is_left() {
    let (store, path) = scratch();
    assert!(matches!(store.begin_build(CREDIT, 2, Duration::from_secs(60)).await, Err(StoreError::Unsupported(_))));
    store.register_projection(spec(1)).await.unwrap();
    store.commit(inline(vec![change(1, "old", 0, Some(json!({"balance": 1})))])).await.unwrap();

    let build = store.begin_build(CREDIT, 2, Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!((build.generation, build.version, build.position), (2, 2, 0));
    let state = store.projection_state(CREDIT).await.unwrap().unwrap();
    assert_eq!(state.build.as_ref(), Some(&build));
    assert_eq!((state.generation, state.version), (1, 1), "the old copy serves meanwhile");
    // Its builder is at work: no one else begins.
    assert_eq!(store.begin_build(CREDIT, 2, Duration::from_secs(60)).await.unwrap(), None);

    // Writing: versions from 1, one more each time; deletes; the position and heartbeat.
    let rows = vec![("a".to_owned(), Some(Arc::from(r#"{"balance":1}"#))), ("b".to_owned(), Some(Arc::from("{}")))];
    store.write_build(CREDIT, 2, rows, 3).await.unwrap();
    store
        .write_build(CREDIT, 2, vec![("a".into(), Some(r#"{"balance":2}"#.into())), ("b".into(), None)], 5)
        .await
        .unwrap();
    let a = store.projection_row(CREDIT, Some(2), "a").await.unwrap().unwrap();
    assert_eq!((a.version, &*a.json), (2, r#"{"balance":2}"#));
    assert_eq!(store.projection_row(CREDIT, Some(2), "b").await.unwrap(), None);
    assert_eq!(store.projection_row(CREDIT, None, "a").await.unwrap(), None, "not served yet");
    let written = store.projection_state(CREDIT).await.unwrap().unwrap().build.unwrap();
    assert_eq!(written.position, 5);
    assert!(written.heartbeat >= build.heartbeat);
    // Another copy is no build.
    let error = store.write_build(CREDIT, 3, vec![], 6).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(VersionConflict { expected: 3, actual: 2, .. })), "{error}");

    // A silent builder (lease 0: any silence) is taken over where it got to, into a new copy
    // (so the silent builder's writes are refused).
    tokio::time::sleep(Duration::from_millis(2)).await;
    let taken = store.begin_build(CREDIT, 2, Duration::ZERO).await.unwrap().unwrap();
    assert_eq!((taken.generation, taken.version, taken.position), (3, 2, 5));
    assert!(matches!(store.write_build(CREDIT, 2, vec![], 5).await, Err(StoreError::Conflict(_))));
    assert!(taken.heartbeat > written.heartbeat);

    // Events of the projection's types past the build's position: not finished yet.
    let appended = append(&store, &["Account.Credited", "Account.Noted"]).await;
    let log = store.log_after(0, 100, &[]).await.unwrap();
    let credited = log.iter().find(|l| l.event.id == appended[0].id).unwrap().position;
    let types = vec!["Account.Credited".to_owned()];
    assert!(!store.finish_build(CREDIT, 3, credited - 1, &types).await.unwrap());
    assert!(!store.finish_build(CREDIT, 3, credited, &[]).await.unwrap(), "any type, when none are named");
    let state = store.projection_state(CREDIT).await.unwrap().unwrap();
    assert_eq!((state.generation, state.build.as_ref().map(|b| b.generation)), (1, Some(3)), "nothing changed");
    // Only events of other types left: finished, built through the log's last position.
    assert!(store.finish_build(CREDIT, 3, credited, &types).await.unwrap());
    let last = last_position(&store).await;
    assert!(last > credited);
    let state = store.projection_state(CREDIT).await.unwrap().unwrap();
    assert_eq!(
        (state.generation, state.version, state.built_through, state.checkpoint, state.build),
        (3, 2, last, last, None)
    );
    assert_eq!(row_json(&store, "a").await, Some((2, json!({"balance": 2}))));
    assert_eq!(row_json(&store, "old").await, None);
    let old: i64 = raw(&path)
        .query_row("SELECT count(*) FROM protean_projection_rows WHERE generation = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(old, 0, "the old copy's rows are gone");
    // That build is over.
    assert!(matches!(store.finish_build(CREDIT, 3, last, &[]).await, Err(StoreError::Conflict(_))));
    assert!(matches!(store.write_build(CREDIT, 3, vec![], last).await, Err(StoreError::Conflict(_))));

    // The next rebuild fills a new copy; a silent one of another version is abandoned.
    let next = store.begin_build(CREDIT, 3, Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!((next.generation, next.position), (4, 0));
    store.write_build(CREDIT, 4, vec![("x".into(), Some("{}".into()))], 1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await;
    let fresh = store.begin_build(CREDIT, 4, Duration::ZERO).await.unwrap().unwrap();
    assert_eq!((fresh.generation, fresh.version, fresh.position), (5, 4, 0));
    assert_eq!(store.projection_row(CREDIT, Some(4), "x").await.unwrap(), None, "the abandoned copy's rows are gone");
    assert!(matches!(store.write_build(CREDIT, 4, vec![], 2).await, Err(StoreError::Conflict(_))));
    // An empty log finishes at once, built through 0.
    remove(&path);
    let (store, path) = scratch();
    store.register_projection(spec(1)).await.unwrap();
    let build = store.begin_build(CREDIT, 1, Duration::from_secs(60)).await.unwrap().unwrap();
    assert!(store.finish_build(CREDIT, build.generation, 0, &[]).await.unwrap());
    let state = store.projection_state(CREDIT).await.unwrap().unwrap();
    assert_eq!((state.generation, state.built_through, state.checkpoint), (2, 0, 0));
    remove(&path);
}

#[tokio::test]
async fn the_log_is_read_by_position_and_type() {
    let (store, path) = scratch();
    assert_eq!(store.log_after(0, 10, &[]).await.unwrap(), []);
    assert_eq!(store.log_count(0, &[]).await.unwrap(), 0);
    let first = append(&store, &["A", "B", "A"]).await;
    let second = append(&store, &["C", "A"]).await;
    let all = store.log_after(0, 100, &[]).await.unwrap();
    assert_eq!(all.iter().map(|l| l.position).collect::<Vec<_>>(), [1, 2, 3, 4, 5], "from 1, in commit order");
    let ids: Vec<Uuid> = first.iter().chain(&second).map(|e| e.id).collect();
    assert_eq!(all.iter().map(|l| l.event.id).collect::<Vec<_>>(), ids);
    assert_eq!(all[1].event.type_name, "B");
    assert_eq!(all[1].event.sequence, 2, "the event as stored");
    let a = vec!["A".to_owned()];
    let a_positions = |logged: Vec<protean::store::Logged>| logged.into_iter().map(|l| l.position).collect::<Vec<_>>();
    assert_eq!(a_positions(store.log_after(0, 100, &a).await.unwrap()), [1, 3, 5]);
    assert_eq!(a_positions(store.log_after(1, 100, &a).await.unwrap()), [3, 5]);
    assert_eq!(a_positions(store.log_after(0, 2, &a).await.unwrap()), [1, 3]);
    assert_eq!(a_positions(store.log_after(5, 100, &a).await.unwrap()), Vec::<u64>::new());
    let a_or_c = vec!["A".to_owned(), "C".to_owned()];
    assert_eq!(a_positions(store.log_after(2, 100, &a_or_c).await.unwrap()), [3, 4, 5]);
    assert_eq!(a_positions(store.log_after(3, 1, &[]).await.unwrap()), [4]);
    assert_eq!(store.log_count(0, &[]).await.unwrap(), 5);
    assert_eq!(store.log_count(2, &[]).await.unwrap(), 3);
    assert_eq!(store.log_count(0, &a).await.unwrap(), 3);
    assert_eq!(store.log_count(3, &a_or_c).await.unwrap(), 2);
    assert_eq!(store.log_count(0, &["Z".to_owned()]).await.unwrap(), 0);
    remove(&path);
}

#[tokio::test]
async fn commands_are_scheduled_and_cancelled_with_the_commit() {
    let (store, path) = scratch();
    let now = micros(OffsetDateTime::now_utc());
    let soon = scheduled("o-1", None, now);
    let remind = scheduled("o-1", Some("remind"), now + Duration::from_secs(60));
    let expire = scheduled("o-1", Some("expire"), now + Duration::from_secs(3600));
    let other = scheduled("o-2", Some("remind"), now + Duration::from_secs(30));
    let batch = Batch {
        commits: vec![raised(&["Order.Placed"])],
        schedule: vec![expire.clone(), remind.clone(), soon.clone(), other.clone()],
        ..Batch::default()
    };
    store.commit(batch).await.unwrap();
    assert_eq!(store.scheduled_of("Fulfilment", "o-1").await.unwrap(), [soon.clone(), remind.clone(), expire.clone()]);
    assert_eq!(store.scheduled_of("Fulfilment", "o-2").await.unwrap(), vec![other.clone()]);
    assert_eq!(store.scheduled_of("Other", "o-1").await.unwrap(), []);
    assert_eq!(store.next_due().await.unwrap(), Some(now));

    // Cancelling drops that instance's deadlines of that name only; one scheduled again
    // in the same step stays.
    let again = scheduled("o-1", Some("remind"), now + Duration::from_secs(120));
    let cancel = Cancel { owner: "Fulfilment".into(), owner_key: "o-1".into(), name: "remind".into() };
    let batch = Batch { cancel: vec![cancel], schedule: vec![again.clone()], ..Batch::default() };
    store.commit(batch).await.unwrap();
    assert_eq!(store.scheduled_of("Fulfilment", "o-1").await.unwrap(), [soon.clone(), again.clone(), expire.clone()]);
    assert_eq!(store.scheduled_of("Fulfilment", "o-2").await.unwrap(), [other]);
    let cancel = Cancel { owner: "Fulfilment".into(), owner_key: "o-1".into(), name: "expire".into() };
    store.commit(Batch { cancel: vec![cancel], ..Batch::default() }).await.unwrap();
    assert_eq!(store.scheduled_of("Fulfilment", "o-1").await.unwrap(), [soon, again]);
    // The same id twice is refused, with the rest of its batch.
    let batch = Batch { schedule: vec![expire.clone(), expire], ..Batch::default() };
    assert!(store.commit(batch).await.is_err());
    assert_eq!(store.scheduled_of("Fulfilment", "o-1").await.unwrap().len(), 2);
    remove(&path);
}

#[tokio::test]
async fn due_commands_are_claimed_for_a_lease_released_and_completed() {
    let (store, path) = scratch();
    assert_eq!(store.next_due().await.unwrap(), None);
    assert_eq!(store.claim_due(OffsetDateTime::now_utc(), 10, Duration::from_secs(30)).await.unwrap(), []);
    let now = micros(OffsetDateTime::now_utc());
    let early = scheduled("o-1", None, now - Duration::from_secs(10));
    let due = scheduled("o-2", Some("d"), now);
    let later = scheduled("o-3", Some("d"), now + Duration::from_secs(60));
    let batch = Batch { schedule: vec![later.clone(), due.clone(), early.clone()], ..Batch::default() };
    store.commit(batch).await.unwrap();
    assert_eq!(store.next_due().await.unwrap(), Some(early.due_at));

    let lease = Duration::from_secs(30);
    assert_eq!(store.claim_due(now, 1, lease).await.unwrap(), vec![early.clone()], "earliest first, up to the limit");
    assert_eq!(store.claim_due(now, 10, lease).await.unwrap(), vec![due.clone()], "the claimed one is held");
    assert_eq!(store.claim_due(now, 10, lease).await.unwrap(), [], "nothing else is due");
    let owner: Vec<Option<String>> = raw(&path)
        .prepare("SELECT claimed_by FROM protean_scheduled ORDER BY due_at")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(owner, [Some(store.owner().to_string()), Some(store.owner().to_string()), None]);
    // A claimed command is still pending.
    assert_eq!(store.next_due().await.unwrap(), Some(early.due_at));
    assert_eq!(store.scheduled_of("Fulfilment", "o-1").await.unwrap(), vec![early.clone()]);

    // Released: claimable at once.
    store.release_scheduled(vec![early.id]).await.unwrap();
    assert_eq!(store.claim_due(now, 10, lease).await.unwrap(), vec![early.clone()]);
    // Once the lease runs out, claimable again, with whatever else is due by then.
    let after_lease = now + lease;
    assert_eq!(store.claim_due(after_lease, 10, lease).await.unwrap(), [early.clone(), due.clone()]);
    let much_later = now + Duration::from_secs(3600);
    assert_eq!(store.claim_due(much_later, 10, lease).await.unwrap(), [early.clone(), due.clone(), later.clone()]);

    // Completed: forgotten.
    store.complete_scheduled(early.id).await.unwrap();
    store.complete_scheduled(early.id).await.unwrap(); // twice: nothing more
    assert_eq!(store.scheduled_of("Fulfilment", "o-1").await.unwrap(), []);
    assert_eq!(store.next_due().await.unwrap(), Some(due.due_at));

    // Another store on the file (a restarted process) frees this one's claims.
    let restarted = SqliteStore::open(&path).unwrap();
    assert_eq!(restarted.claim_due(now, 10, lease).await.unwrap(), vec![due.clone()]);
    // Releasing frees only the releasing store's own claims.
    store.release_scheduled(vec![due.id]).await.unwrap();
    assert_eq!(restarted.claim_due(now, 10, lease).await.unwrap(), []);
    remove(&path);
}

/// SQLite schema version 5, as protean wrote it before projections: the fixture for the
/// upgrade to 6 and 7.
const SQLITE_SCHEMA_V5: &str = "
CREATE TABLE protean_aggregates (
    aggregate TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, state TEXT,
    last_sequence INTEGER NOT NULL, PRIMARY KEY (aggregate, id)) WITHOUT ROWID;
CREATE TABLE protean_events (
    position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, aggregate TEXT NOT NULL,
    stream_id TEXT NOT NULL, sequence INTEGER NOT NULL, type_name TEXT NOT NULL, version INTEGER NOT NULL,
    payload TEXT NOT NULL, recorded_at INTEGER NOT NULL, correlation_id TEXT NOT NULL, causation_id TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0, claimed_until INTEGER, claimed_by TEXT,
    UNIQUE (aggregate, stream_id, sequence));
CREATE INDEX protean_events_undelivered ON protean_events (position) WHERE delivered = 0;
CREATE TABLE protean_handled (
    handler TEXT NOT NULL, message_id TEXT NOT NULL, outcome TEXT, PRIMARY KEY (handler, message_id)) WITHOUT ROWID;
CREATE TABLE protean_read_models (
    name TEXT NOT NULL, key TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (name, key)) WITHOUT ROWID;
CREATE TABLE protean_snapshots (
    aggregate TEXT NOT NULL, id TEXT NOT NULL, sequence INTEGER NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (aggregate, id, sequence)) WITHOUT ROWID;
CREATE TABLE protean_failures (
    handler TEXT NOT NULL, event_id TEXT NOT NULL, aggregate TEXT NOT NULL, stream_id TEXT NOT NULL,
    sequence INTEGER NOT NULL, position INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
    first_error TEXT NOT NULL, last_error TEXT NOT NULL, first_failed_at INTEGER NOT NULL,
    last_failed_at INTEGER NOT NULL, PRIMARY KEY (handler, event_id));
CREATE INDEX protean_failures_held ON protean_failures (handler, aggregate, stream_id) WHERE status <> 'retrying';
PRAGMA user_version = 5;
";

#[tokio::test]
async fn a_schema_5_file_migrates_to_7_keeping_its_data() {
    assert_eq!(SQLITE_SCHEMA_VERSION, SchemaVersion(7));
    let dir = std::env::temp_dir().join(format!("protean-upgrade-6-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    let (event_id, command_id) = (Uuid::now_v7(), Uuid::now_v7());
    {
        let raw = raw(&path);
        raw.execute_batch(SQLITE_SCHEMA_V5).unwrap();
        raw.execute(
            "INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload,
                 recorded_at, correlation_id, causation_id) VALUES (?1, 'Counter', 'c-1', 1, 'Counter.Bumped', 1,
                 '{\"count\":1}', 1700000000000000, ?2, ?2)",
            rusqlite::params![event_id.to_string(), command_id.to_string()],
        )
        .unwrap();
        raw.execute_batch(
            "INSERT INTO protean_aggregates VALUES ('Counter', 'c-1', 1, '{\"count\":1}', 1);
             INSERT INTO protean_read_models VALUES ('Price', 'pen', '{\"cents\":120}');",
        )
        .unwrap();
        raw.execute("INSERT INTO protean_handled VALUES ('Counter.Bump', ?1, '\"ok\"')", [command_id.to_string()])
            .unwrap();
    }
    // Not opened without migrating: the file is older.
    let error = SqliteStore::open_without_migrating(&path).unwrap_err();
    assert_eq!(error, StoreError::Schema { backend: "sqlite", found: SchemaVersion(5), supported: SchemaVersion(7) });

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SchemaVersion(7));
    let counter = StreamId::new("Counter", "c-1");
    assert_eq!(store.load(&counter).await.unwrap().unwrap().version, 1);
    assert_eq!(store.read_model("Price", "pen").await.unwrap().as_deref(), Some(r#"{"cents":120}"#));
    assert_eq!(store.handled_outcome("Counter.Bump", command_id).await.unwrap(), Some(Some("\"ok\"".into())));
    // The old events are in the positioned log, by type too.
    let log = store.log_after(0, 10, &["Counter.Bumped".to_owned()]).await.unwrap();
    assert_eq!(log.iter().map(|l| (l.position, l.event.id)).collect::<Vec<_>>(), [(1, event_id)]);
    // The new tables work.
    assert!(store.register_projection(spec(1)).await.unwrap().created);
    store.commit(inline(vec![change(1, "a", 0, Some(json!({"balance": 1})))])).await.unwrap();
    assert_eq!(row_json(&store, "a").await, Some((1, json!({"balance": 1}))));
    assert_eq!(store.log_count(0, &[]).await.unwrap(), 2);
    let command = scheduled("o-1", None, micros(OffsetDateTime::now_utc()));
    store.commit(Batch { schedule: vec![command.clone()], ..Batch::default() }).await.unwrap();
    assert_eq!(store.scheduled_of("Fulfilment", "o-1").await.unwrap(), [command]);
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let beat = protean::store::WorkerBeat {
        id: Uuid::now_v7(),
        host: "box".into(),
        pid: 7,
        started_at: now,
        seen_at: now,
        every_ms: 10_000,
        stopped: false,
    };
    store.beat_worker(beat.clone()).await.unwrap();
    assert_eq!(store.worker_beats().await.unwrap(), [beat]);

    // Opening again changes nothing more; and now without migrating too.
    drop(store);
    let store = SqliteStore::open_without_migrating(&path).unwrap();
    assert_eq!(row_json(&store, "a").await, Some((1, json!({"balance": 1}))));
    assert!(!store.register_projection(spec(1)).await.unwrap().created);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

// --- Rows written behind the store's back, and files an older protean wrote. ---

fn stream(aggregate: &'static str, id: &str) -> StreamId {
    StreamId::new(aggregate, id.to_owned())
}

fn state(json: &str) -> Option<Arc<str>> {
    Some(Arc::from(json))
}

fn batch(commits: Vec<Commit>) -> Batch {
    Batch { commits, handled: None, delivered: vec![], ..Batch::default() }
}

/// Rows written behind the store's back, as a bug or a hand edit would: typed errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sqlite_rows_are_typed_errors() {
    let dir = std::env::temp_dir().join(format!("protean-corrupt-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let insert = "INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload,
        recorded_at, correlation_id, causation_id) VALUES (?1, 'Counter', 'bad', ?2, 'Counter.Bumped', ?3, '{}', 0, ?4, ?4)";
    let good = Uuid::now_v7().to_string();
    raw.execute(insert, rusqlite::params!["not-a-uuid", 1, 1, good]).unwrap();
    let error = store.stream(&stream("Counter", "bad")).await.unwrap_err();
    let StoreError::Corrupt { position: 1, reason, .. } = &error else { panic!("{error}") };
    assert!(reason.contains("event id `not-a-uuid`"), "{reason}");
    raw.execute("DELETE FROM protean_events", []).unwrap();
    raw.execute(insert, rusqlite::params![Uuid::now_v7().to_string(), 1, -4, good]).unwrap();
    let error = store.stream(&stream("Counter", "bad")).await.unwrap_err();
    assert!(matches!(&error, StoreError::Corrupt { reason, .. } if reason.contains("version -4")), "{error}");
    // A time out of range, the earliest of the undelivered: the outbox's status names its event.
    raw.execute("UPDATE protean_events SET version = 1, recorded_at = ?1", [i64::MIN]).unwrap();
    let error = store.outbox_status().await.unwrap_err();
    let StoreError::Corrupt { stream: at, position: 1, reason } = &error else { panic!("{error}") };
    assert_eq!(at, &stream("Counter", "bad"));
    assert!(reason.contains(&i64::MIN.to_string()), "{reason}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a replay reads of rows written behind the store's back: text that is not valid
/// UTF-8 or not text at all, a version or sequence out of range, are `Corrupt` naming the
/// stream and position, as when the events are read whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sqlite_rows_are_typed_errors_on_replay() {
    let dir = std::env::temp_dir().join(format!("protean-replay-corrupt-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let bad = stream("Counter", "bad");
    let insert = |sequence: i64, type_name: &str, version: i64, payload: &str| {
        let sql = format!(
            "INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload, recorded_at,
                 correlation_id, causation_id) VALUES (?1, 'Counter', 'bad', ?2, {type_name}, ?3, {payload}, 0, ?1, ?1)"
        );
        raw.execute(&sql, rusqlite::params![Uuid::now_v7().to_string(), sequence, version]).unwrap();
    };
    let replayed = || store.replay_events(&bad, 0, None);
    // A good event first: the error names the bad one's position.
    insert(1, "'Counter.Bumped'", 1, r#"'{"id":"bad","count":1}'"#);
    insert(2, "'Counter.Bumped'", 1, "CAST(X'7B22FF22' AS TEXT)");
    let error = replayed().await.unwrap_err();
    let StoreError::Corrupt { stream: at, position: 2, reason } = &error else { panic!("{error}") };
    assert_eq!(at, &bad);
    assert!(reason.contains("payload") && reason.contains("utf-8"), "{reason}");
    raw.execute("DELETE FROM protean_events WHERE sequence = 2", []).unwrap();
    insert(2, "X'FF'", 1, "'{}'");
    let error = replayed().await.unwrap_err();
    let StoreError::Corrupt { position: 2, reason, .. } = &error else { panic!("{error}") };
    assert!(reason.contains("type name") && reason.contains("Blob"), "{reason}");
    raw.execute("DELETE FROM protean_events WHERE sequence = 2", []).unwrap();
    insert(2, "'Counter.Bumped'", 1, "X'7B7D'");
    let error = replayed().await.unwrap_err();
    let StoreError::Corrupt { position: 2, reason, .. } = &error else { panic!("{error}") };
    assert!(reason.contains("payload") && reason.contains("Blob"), "{reason}");
    raw.execute("DELETE FROM protean_events WHERE sequence = 2", []).unwrap();
    insert(2, "'Counter.Bumped'", -4, "'{}'");
    let error = replayed().await.unwrap_err();
    assert!(
        matches!(&error, StoreError::Corrupt { position: 2, reason, .. } if reason.contains("version -4")),
        "{error}"
    );
    raw.execute("DELETE FROM protean_events WHERE sequence = 2", []).unwrap();
    // A negative sequence is below any range a replay asks for (`after` is a `u64`): not read.
    insert(-1, "'Counter.Bumped'", 1, "'{}'");
    let events = replayed().await.unwrap();
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Stored text that is not valid UTF-8 (or not text at all), written behind the store's
/// back: `Corrupt`, naming the stream and position, for records, events, snapshots and
/// read models alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_sqlite_is_corrupt_data() {
    let dir = std::env::temp_dir().join(format!("protean-utf8-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    // `CAST(blob AS TEXT)` stores the bytes as text unchecked: `{"` then a lone 0xFF.
    let invalid = "CAST(X'7B22FF22' AS TEXT)";
    raw.execute(&format!("INSERT INTO protean_aggregates VALUES ('Counter', 'bad-state', 4, {invalid}, 0)"), [])
        .unwrap();
    let error = store.load(&stream("Counter", "bad-state")).await.unwrap_err();
    let StoreError::Corrupt { stream: at, position: 4, reason } = &error else { panic!("{error}") };
    assert_eq!(at, &stream("Counter", "bad-state"));
    assert!(reason.contains("state") && reason.contains("utf-8"), "{reason}");

    let insert = |stream_id: &str, type_name: &str, payload: &str| {
        let sql = format!(
            "INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload, recorded_at,
                 correlation_id, causation_id) VALUES (?1, 'Counter', {stream_id}, 2, {type_name}, 1, {payload}, 0, ?1, ?1)"
        );
        raw.execute(&sql, [Uuid::now_v7().to_string()]).unwrap();
    };
    insert("'bad-payload'", "'Counter.Bumped'", invalid);
    let error = store.stream(&stream("Counter", "bad-payload")).await.unwrap_err();
    let StoreError::Corrupt { stream: at, position: 2, reason } = &error else { panic!("{error}") };
    assert_eq!(at, &stream("Counter", "bad-payload"));
    assert!(reason.contains("payload"), "{reason}");
    // The event is undelivered: claiming it reports it the same way rather than a backend failure.
    let error = store.claim_undelivered(10, Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(&error, StoreError::Corrupt { position: 2, .. }), "{error}");
    raw.execute("DELETE FROM protean_events", []).unwrap();

    // A blob where the type name belongs.
    insert("'blob-type'", "X'FF'", "'{}'");
    let error = store.stream(&stream("Counter", "blob-type")).await.unwrap_err();
    let StoreError::Corrupt { position: 2, reason, .. } = &error else { panic!("{error}") };
    assert!(reason.contains("type name") && reason.contains("Blob"), "{reason}");
    raw.execute("DELETE FROM protean_events", []).unwrap();

    // An unreadable stream id: the error names the stream as well as it can.
    insert("CAST(X'61FF' AS TEXT)", "'Counter.Bumped'", "'{}'");
    let error = store.events(0, 10).await.unwrap_err();
    let StoreError::Corrupt { stream: at, position: 2, .. } = &error else { panic!("{error}") };
    assert_eq!(&*at.aggregate, "Counter");
    assert!(at.id.starts_with('a'), "{at}");
    raw.execute("DELETE FROM protean_events", []).unwrap();

    raw.execute(&format!("INSERT INTO protean_snapshots VALUES ('Account', 'bad-snapshot', 3, {invalid})"), [])
        .unwrap();
    let error = store.load_snapshot(&stream("Account", "bad-snapshot"), None).await.unwrap_err();
    assert!(
        matches!(&error, StoreError::Corrupt { position: 3, reason, .. } if reason.contains("snapshot")),
        "{error}"
    );

    raw.execute(&format!("INSERT INTO protean_read_models VALUES ('Price', 'pen', {invalid})"), []).unwrap();
    let error = store.read_model("Price", "pen").await.unwrap_err();
    let StoreError::Corrupt { stream: at, reason, .. } = &error else { panic!("{error}") };
    assert_eq!(at, &stream("Price", "pen"));
    assert!(reason.contains("read model"), "{reason}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The tables of SQLite schema version 2 (before versions counted events), as older
/// protean wrote them: a fixture for the upgrade test.
const SQLITE_SCHEMA_V2: &str = "
CREATE TABLE protean_aggregates (
    aggregate TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, state TEXT,
    last_sequence INTEGER NOT NULL, PRIMARY KEY (aggregate, id)) WITHOUT ROWID;
CREATE TABLE protean_events (
    position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, aggregate TEXT NOT NULL,
    stream_id TEXT NOT NULL, sequence INTEGER NOT NULL, type_name TEXT NOT NULL, version INTEGER NOT NULL,
    payload TEXT NOT NULL, recorded_at INTEGER NOT NULL, correlation_id TEXT NOT NULL, causation_id TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0, claimed_until INTEGER, UNIQUE (aggregate, stream_id, sequence));
CREATE INDEX protean_events_undelivered ON protean_events (position) WHERE delivered = 0;
CREATE TABLE protean_handled (
    handler TEXT NOT NULL, message_id TEXT NOT NULL, PRIMARY KEY (handler, message_id)) WITHOUT ROWID;
CREATE TABLE protean_read_models (
    name TEXT NOT NULL, key TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (name, key)) WITHOUT ROWID;
CREATE TABLE protean_snapshots (
    aggregate TEXT NOT NULL, id TEXT NOT NULL, sequence INTEGER NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (aggregate, id, sequence)) WITHOUT ROWID;
PRAGMA user_version = 2;
";

/// A file written by older protean, whose event-sourced versions counted commits, opens
/// with those versions moved to the last sequence; state-stored records keep theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_a_sqlite_file_makes_event_sourced_versions_count_events() {
    let dir = std::env::temp_dir().join(format!("protean-upgrade-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(SQLITE_SCHEMA_V2).unwrap();
        // Two commits of an event-sourced account, five events; a counter bumped twice.
        raw.execute_batch(
            "INSERT INTO protean_aggregates VALUES ('Account', 'a-1', 2, 'null', 5);
             INSERT INTO protean_aggregates VALUES ('Counter', 'c-1', 2, '{\"id\":\"c-1\",\"count\":2}', 2);
             INSERT INTO protean_aggregates VALUES ('Counter', 'gone', 3, NULL, 1);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let version = |aggregate: &'static str, id: &str| {
        let store = store.clone();
        let s = stream(aggregate, id);
        async move { store.load(&s).await.unwrap().map(|r| r.version) }
    };
    assert_eq!(version("Account", "a-1").await, Some(5), "the event-sourced head moved to its last sequence");
    assert_eq!(version("Counter", "c-1").await, Some(2), "a state-stored record keeps its version");
    assert_eq!(version("Counter", "gone").await, None, "a removed one stays removed");
    let raw = rusqlite::Connection::open(&path).unwrap();
    let user_version: i64 = raw.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(user_version, i64::from(protean::store::SQLITE_SCHEMA_VERSION.0));
    let removed: i64 =
        raw.query_row("SELECT version FROM protean_aggregates WHERE id = 'gone'", [], |r| r.get(0)).unwrap();
    assert_eq!(removed, 3, "a removed record keeps its version");
    // The next commit of the account expects the new version.
    let s = stream("Account", "a-1");
    let commit = Commit {
        stream: s.clone(),
        expected_version: 5,
        advance: 1,
        state: state("null"),
        events: vec![],
        snapshot: None,
    };
    assert_eq!(store.commit(batch(vec![commit])).await.unwrap()[0].version, 6);
    // Opening again changes nothing more.
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.load(&s).await.unwrap().unwrap().version, 6);
    let _ = std::fs::remove_dir_all(&dir);
}

/// SQLite schema version 4 (claims record their owner), as older protean wrote it,
/// before handled records kept outcomes and failed deliveries were kept.
const SQLITE_SCHEMA_V4: &str = "
CREATE TABLE protean_aggregates (
    aggregate TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, state TEXT,
    last_sequence INTEGER NOT NULL, PRIMARY KEY (aggregate, id)) WITHOUT ROWID;
CREATE TABLE protean_events (
    position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, aggregate TEXT NOT NULL,
    stream_id TEXT NOT NULL, sequence INTEGER NOT NULL, type_name TEXT NOT NULL, version INTEGER NOT NULL,
    payload TEXT NOT NULL, recorded_at INTEGER NOT NULL, correlation_id TEXT NOT NULL, causation_id TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0, claimed_until INTEGER, claimed_by TEXT,
    UNIQUE (aggregate, stream_id, sequence));
CREATE INDEX protean_events_undelivered ON protean_events (position) WHERE delivered = 0;
CREATE TABLE protean_handled (
    handler TEXT NOT NULL, message_id TEXT NOT NULL, PRIMARY KEY (handler, message_id)) WITHOUT ROWID;
CREATE TABLE protean_read_models (
    name TEXT NOT NULL, key TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (name, key)) WITHOUT ROWID;
CREATE TABLE protean_snapshots (
    aggregate TEXT NOT NULL, id TEXT NOT NULL, sequence INTEGER NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (aggregate, id, sequence)) WITHOUT ROWID;
PRAGMA user_version = 4;
";

/// A schema-4 file upgrades to 5 keeping its handled records (with no outcome) and its
/// events, which are then failed, listed and counted; a failure status that is none of
/// the three, written behind the store's back, is `Corrupt` rather than a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_a_sqlite_file_to_5_keeps_its_records_and_a_bad_failure_status_is_corrupt() {
    let dir = std::env::temp_dir().join(format!("protean-upgrade-5-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    let (event_id, command_id) = (Uuid::now_v7(), Uuid::now_v7());
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(SQLITE_SCHEMA_V4).unwrap();
        raw.execute(
            "INSERT INTO protean_events (id, aggregate, stream_id, sequence, type_name, version, payload,
                 recorded_at, correlation_id, causation_id) VALUES (?1, 'Counter', 'c-1', 1, 'Counter.Bumped', 1,
                 '{\"id\":\"c-1\",\"count\":1}', 1700000000000000, ?2, ?2)",
            rusqlite::params![event_id.to_string(), command_id.to_string()],
        )
        .unwrap();
        raw.execute("INSERT INTO protean_handled VALUES ('Counter.Bump', ?1)", [command_id.to_string()]).unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let user_version: i64 = raw.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    // Migrated through 5 to the current version (the later ones keep what 5 made).
    assert_eq!(user_version, i64::from(protean::store::SQLITE_SCHEMA_VERSION.0));
    assert!(store.is_handled("Counter.Bump", command_id).await.unwrap());
    assert_eq!(store.handled_outcome("Counter.Bump", command_id).await.unwrap(), Some(None), "kept, no outcome");
    let events = store.events(0, 10).await.unwrap();
    assert_eq!(events.iter().map(|e| (e.id, e.sequence)).collect::<Vec<_>>(), [(event_id, 1)]);
    let event = &events[0];
    let status = store.outbox_status().await.unwrap();
    assert_eq!((status.undelivered, status.oldest_undelivered), (1, Some(event.recorded_at)));

    let update = FailureUpdate {
        handler: "H::m".into(),
        event: event.clone(),
        status: FailureStatus::Dead,
        error: "boom".into(),
        at: OffsetDateTime::from_unix_timestamp(1_700_000_001).unwrap(),
    };
    assert_eq!(store.record_failure(update).await.unwrap(), 1);
    let listed = store.failed_deliveries(FailureQuery::default()).await.unwrap();
    assert_eq!(listed.iter().map(|f| (f.event.id, f.status)).collect::<Vec<_>>(), [(event_id, FailureStatus::Dead)]);

    raw.execute("UPDATE protean_failures SET status = 'lost'", []).unwrap();
    let error = store.failed_deliveries(FailureQuery::default()).await.unwrap_err();
    let StoreError::Corrupt { stream: at, position: 1, reason } = &error else { panic!("{error}") };
    assert_eq!(at, &stream("Counter", "c-1"));
    assert!(reason.contains("unknown status `lost`"), "{reason}");
    let error = store.outbox_status().await.unwrap_err();
    assert!(matches!(&error, StoreError::Corrupt { position: 1, reason, .. } if reason.contains("`lost`")), "{error}");
    // A bad attempts count is corrupt data too.
    raw.execute("UPDATE protean_failures SET status = 'dead', attempts = -1", []).unwrap();
    let error = store.handler_state("H::m", event).await.unwrap_err();
    assert!(matches!(&error, StoreError::Corrupt { position: 1, reason, .. } if reason.contains("-1")), "{error}");

    // Opening again changes nothing more.
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.handled_outcome("Counter.Bump", command_id).await.unwrap(), Some(None));
    assert_eq!(store.events(0, 10).await.unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
