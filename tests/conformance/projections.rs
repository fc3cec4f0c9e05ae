//! Conformance cases for the `Projections` port: rows in copies and the rule every store
//! follows for row changes (`protean_core::store::projection`'s module docs), rebuilds,
//! queries over the rows' JSON, reads a unit of work re-checks, and read models.
//!
//! Log positions are only assumed to start at 1 and increase in commit order (a
//! database sequence may leave gaps): a case finds an event's position with `log_after`.

use std::sync::Arc;
use std::time::Duration;

use protean::store::{Batch, Envelope, Store, StoreError, StreamId};
use protean::store::{
    FilterOp, ProjectionSpec, ProjectionState, Row, RowChange, RowFilter, RowOrder, RowQuery, RowRead, RowVersion,
};
use serde_json::{json, Value};
use uuid::Uuid;

use super::records::{append, raising, types};

/// A projection named `name` at `version`, with these indexed fields.
fn spec(name: &'static str, version: u32, indexed: &[&'static str]) -> ProjectionSpec {
    ProjectionSpec { name: name.into(), version, indexed: indexed.iter().map(|f| (*f).into()).collect() }
}

/// A change of row `key` of `projection`'s copy `generation`, read at `expected`.
fn change(projection: &'static str, generation: u64, key: &str, expected: u64, json: Option<&str>) -> RowChange {
    RowChange {
        projection: projection.into(),
        generation,
        key: key.to_owned(),
        expected_version: expected,
        json: json.map(Arc::from),
    }
}

/// A batch of row changes alone (no events: nothing decides a rebuild covered them).
fn rows(rows: Vec<RowChange>) -> Batch {
    Batch { rows, ..Batch::default() }
}

/// Row changes from the stored event `from`, as an async projector commits them.
fn rows_from(from: &Envelope, rows: Vec<RowChange>) -> Batch {
    Batch { rows, rows_from: Some(from.id), ..Batch::default() }
}

/// The log position of `event`.
async fn position_of(store: &Arc<dyn Store>, event: &Envelope) -> u64 {
    let logged = store.log_after(0, 10_000, &[]).await.unwrap();
    logged.iter().find(|l| l.event.id == event.id).expect("the event is in the log").position
}

/// The log's last position.
async fn last_position(store: &Arc<dyn Store>) -> u64 {
    store.log_after(0, 10_000, &[]).await.unwrap().last().map_or(0, |l| l.position)
}

/// Row `key` of `name` (of the serving copy when `generation` is `None`): its
/// generation, version and JSON.
async fn row(store: &Arc<dyn Store>, name: &str, generation: Option<u64>, key: &str) -> Option<(u64, u64, String)> {
    let row = store.projection_row(name, generation, key).await.unwrap()?;
    assert_eq!(row.key, key);
    Some((row.generation, row.version, canonical(&row.json)))
}

/// JSON text in one form (PostgreSQL's jsonb reorders keys and adds spaces): what a
/// store must keep is the value, not the spelling.
fn canonical(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json).expect("a row is JSON").to_string()
}

async fn state_of(store: &Arc<dyn Store>, name: &str) -> ProjectionState {
    store.projection_state(name).await.unwrap().expect("the projection is kept")
}

fn conflict_on<T: std::fmt::Debug>(result: Result<T, StoreError>, projection: &str, key: &str) -> (u64, u64) {
    match result {
        Err(StoreError::Conflict(conflict)) => {
            assert_eq!(conflict.stream, StreamId::new(projection.to_owned(), key.to_owned()));
            (conflict.expected, conflict.actual)
        }
        other => panic!("a conflict on ({projection}, {key}), not {other:?}"),
    }
}

async fn registering_a_projection_creates_it_once(store: Arc<dyn Store>) {
    assert_eq!(store.projection_state("Cards").await.unwrap(), None);
    let created = store.register_projection(spec("Cards", 1, &["n"])).await.unwrap();
    let expected = ProjectionState {
        name: "Cards".into(),
        version: 1,
        generation: 1,
        built_through: 0,
        checkpoint: 0,
        build: None,
        created: true,
    };
    assert_eq!(created, expected);
    let again = store.register_projection(spec("Cards", 1, &["n"])).await.unwrap();
    assert_eq!(again, ProjectionState { created: false, ..expected.clone() });
    // Another version is left for a rebuild to change.
    let newer = store.register_projection(spec("Cards", 2, &["n", "m"])).await.unwrap();
    assert_eq!(newer, ProjectionState { created: false, ..expected.clone() });
    assert_eq!(state_of(&store, "Cards").await, ProjectionState { created: false, ..expected });
    assert_eq!(store.projection_state("Others").await.unwrap(), None);
    assert_eq!(store.projection_row("Others", None, "a").await.unwrap(), None);
}

async fn rows_are_written_at_their_versions(store: Arc<dyn Store>) {
    store.register_projection(spec("Cards", 1, &["n"])).await.unwrap();
    let c = |key, expected, json| change("Cards", 1, key, expected, json);
    store.commit(rows(vec![c("a", 0, Some(r#"{"n":1}"#)), c("b", 0, Some(r#"{"n":2}"#))])).await.unwrap();
    assert_eq!(row(&store, "Cards", None, "a").await, Some((1, 1, r#"{"n":1}"#.into())));
    assert_eq!(row(&store, "Cards", None, "b").await, Some((1, 1, r#"{"n":2}"#.into())));
    // Updated: one more; deleted: gone; added again: from 1.
    store.commit(rows(vec![c("a", 1, Some(r#"{"n":3}"#)), c("b", 1, None)])).await.unwrap();
    assert_eq!(row(&store, "Cards", None, "a").await, Some((1, 2, r#"{"n":3}"#.into())));
    assert_eq!(row(&store, "Cards", None, "b").await, None);
    store.commit(rows(vec![c("b", 0, Some(r#"{"n":4}"#))])).await.unwrap();
    assert_eq!(row(&store, "Cards", None, "b").await, Some((1, 1, r#"{"n":4}"#.into())));

    // A stale version, an add over a row, a delete of a row changed meanwhile: refused.
    assert_eq!(conflict_on(store.commit(rows(vec![c("a", 1, Some("{}"))])).await, "Cards", "a"), (1, 2));
    assert_eq!(conflict_on(store.commit(rows(vec![c("a", 0, Some("{}"))])).await, "Cards", "a"), (0, 2));
    assert_eq!(conflict_on(store.commit(rows(vec![c("b", 2, None)])).await, "Cards", "b").0, 2);
    // A change naming a copy that does not serve: refused.
    let other_copy = change("Cards", 2, "a", 2, Some("{}"));
    assert_eq!(conflict_on(store.commit(rows(vec![other_copy])).await, "Cards", "a").0, 2);
    assert_eq!(row(&store, "Cards", None, "a").await, Some((1, 2, r#"{"n":3}"#.into())), "unchanged");
    assert_eq!(row(&store, "Cards", None, "b").await, Some((1, 1, r#"{"n":4}"#.into())), "unchanged");

    // The serving copy by its generation reads the same; a copy that does not exist has no rows.
    assert_eq!(row(&store, "Cards", Some(1), "a").await, Some((1, 2, r#"{"n":3}"#.into())));
    assert_eq!(row(&store, "Cards", Some(7), "a").await, None);
    assert_eq!(row(&store, "Cards", None, "nobody").await, None);
    // Rows of an aggregate-free batch come from no event: the checkpoint stays.
    assert_eq!(state_of(&store, "Cards").await.checkpoint, 0);
}

async fn a_conflicting_row_refuses_the_whole_batch(store: Arc<dyn Store>) {
    store.register_projection(spec("Cards", 1, &[])).await.unwrap();
    store.commit(rows(vec![change("Cards", 1, "a", 0, Some("{}"))])).await.unwrap();
    let commit = raising(&["Test.Opened"]);
    let handled = protean::store::Handled::event("Cards::project", Uuid::now_v7());
    let stale = Batch {
        commits: vec![commit.clone()],
        handled: Some(handled.clone()),
        rows: vec![change("Cards", 1, "x", 0, Some("{}")), change("Cards", 1, "a", 0, Some(r#"{"n":2}"#))],
        ..Batch::default()
    };
    assert_eq!(conflict_on(store.commit(stale.clone()).await, "Cards", "a"), (0, 1));
    assert_eq!(store.load(&commit.stream).await.unwrap(), None, "the aggregate was not written");
    assert!(store.stream(&commit.stream).await.unwrap().is_empty(), "nor its event");
    assert_eq!(store.log_count(0, &[]).await.unwrap(), 0);
    assert!(!store.is_handled("Cards::project", handled.message_id).await.unwrap(), "nor the handled record");
    assert_eq!(row(&store, "Cards", None, "x").await, None, "nor the other row");
    assert_eq!(row(&store, "Cards", None, "a").await, Some((1, 1, "{}".into())));

    // With the version it has now, all of it is written.
    let fresh = Batch { rows: vec![change("Cards", 1, "x", 0, Some("{}")), change("Cards", 1, "a", 1, None)], ..stale };
    let committed = store.commit(fresh).await.unwrap();
    assert_eq!(committed[0].version, 1);
    assert!(store.is_handled("Cards::project", handled.message_id).await.unwrap());
    assert_eq!(row(&store, "Cards", None, "x").await, Some((1, 1, "{}".into())));
    assert_eq!(row(&store, "Cards", None, "a").await, None);
}

async fn the_checkpoint_moves_to_the_highest_applied_position(store: Arc<dyn Store>) {
    store.register_projection(spec("Cards", 1, &[])).await.unwrap();
    store.register_projection(spec("Tags", 1, &[])).await.unwrap();
    // An inline projector's changes come from the batch's own events: the last one counts.
    let inline = Batch {
        commits: vec![raising(&["Test.Opened", "Test.Noted"])],
        rows: vec![change("Cards", 1, "a", 0, Some("{}"))],
        ..Batch::default()
    };
    let events = store.commit(inline).await.unwrap().remove(0).events;
    let (first, second) = (&events[0], &events[1]);
    assert_eq!(state_of(&store, "Cards").await.checkpoint, position_of(&store, second).await);
    assert_eq!(state_of(&store, "Tags").await.checkpoint, 0, "a projection without changes stays");

    // An async projector's come from one stored event: an earlier one does not move it back.
    let third = append(&store, &["Test.Noted"]).await.remove(0);
    store.commit(rows_from(first, vec![change("Cards", 1, "b", 0, Some("{}"))])).await.unwrap();
    assert_eq!(row(&store, "Cards", None, "b").await.map(|r| r.1), Some(1), "applied: nothing was rebuilt");
    assert_eq!(state_of(&store, "Cards").await.checkpoint, position_of(&store, second).await);
    store.commit(rows_from(&third, vec![change("Cards", 1, "b", 1, Some("{}"))])).await.unwrap();
    assert_eq!(state_of(&store, "Cards").await.checkpoint, position_of(&store, &third).await);
    store.commit(rows_from(first, vec![change("Tags", 1, "t", 0, Some("{}"))])).await.unwrap();
    assert_eq!(state_of(&store, "Tags").await.checkpoint, position_of(&store, first).await);
}

async fn row_changes_are_skipped_while_a_rebuild_runs(store: Arc<dyn Store>) {
    store.register_projection(spec("Cards", 1, &[])).await.unwrap();
    store.register_projection(spec("Tags", 1, &[])).await.unwrap();
    store.commit(rows(vec![change("Cards", 1, "a", 0, Some(r#"{"n":1}"#))])).await.unwrap();
    let build = store.begin_build("Cards", 2, Duration::from_secs(3600)).await.unwrap().expect("a rebuild starts");
    let commit = raising(&["Test.Opened"]);
    let during = Batch {
        commits: vec![commit.clone()],
        rows: vec![
            change("Cards", 1, "a", 1, Some(r#"{"n":2}"#)),
            // Skipped, so not even checked: a stale version is no conflict.
            change("Cards", 1, "z", 9, Some("{}")),
            change("Tags", 1, "t", 0, Some("{}")),
        ],
        ..Batch::default()
    };
    store.commit(during).await.unwrap();
    assert!(store.load(&commit.stream).await.unwrap().is_some(), "the rest of the batch is written");
    assert_eq!(row(&store, "Cards", None, "a").await, Some((1, 1, r#"{"n":1}"#.into())), "the serving copy stays");
    assert_eq!(row(&store, "Cards", None, "z").await, None);
    assert_eq!(row(&store, "Cards", Some(build.generation), "a").await, None, "the rebuild's copy is its own");
    assert_eq!(row(&store, "Tags", None, "t").await.map(|r| r.1), Some(1), "another projection is not rebuilt");
    let state = state_of(&store, "Cards").await;
    assert_eq!((state.generation, state.checkpoint), (1, 0));
    assert_eq!(state.build.map(|b| b.generation), Some(build.generation));
}

async fn changes_from_events_a_rebuild_covered_are_skipped(store: Arc<dyn Store>) {
    store.register_projection(spec("Cards", 1, &[])).await.unwrap();
    let events = append(&store, &["Test.Opened", "Test.Noted"]).await;
    let (first, second) = (&events[0], &events[1]);
    let build = store.begin_build("Cards", 2, Duration::from_secs(3600)).await.unwrap().unwrap();
    let g = build.generation;
    let through = position_of(&store, second).await;
    store.write_build("Cards", g, vec![("a".into(), Some(Arc::from(r#"{"n":10}"#)))], through).await.unwrap();
    assert!(store.finish_build("Cards", g, through, &[]).await.unwrap());
    let state = state_of(&store, "Cards").await;
    assert_eq!((state.generation, state.version, state.built_through, state.build), (g, 2, through, None));

    // The rebuild applied both events: what an async projector sends for them now is
    // skipped, without a version check.
    for from in [first, second] {
        store.commit(rows_from(from, vec![change("Cards", g, "a", 1, Some(r#"{"n":11}"#))])).await.unwrap();
        store.commit(rows_from(from, vec![change("Cards", g, "a", 7, None)])).await.unwrap();
    }
    assert_eq!(row(&store, "Cards", None, "a").await, Some((g, 1, r#"{"n":10}"#.into())));
    assert_eq!(state_of(&store, "Cards").await.checkpoint, through);

    // A later event's changes apply, checked.
    let third = append(&store, &["Test.Noted"]).await.remove(0);
    let stale = store.commit(rows_from(&third, vec![change("Cards", g, "a", 7, None)])).await;
    assert_eq!(conflict_on(stale, "Cards", "a"), (7, 1));
    store.commit(rows_from(&third, vec![change("Cards", g, "a", 1, Some(r#"{"n":11}"#))])).await.unwrap();
    assert_eq!(row(&store, "Cards", None, "a").await, Some((g, 2, r#"{"n":11}"#.into())));
    assert_eq!(state_of(&store, "Cards").await.checkpoint, position_of(&store, &third).await);
}

async fn a_rebuild_fills_a_new_copy_and_switches_to_it(store: Arc<dyn Store>) {
    let hour = Duration::from_secs(3600);
    store.register_projection(spec("Cards", 1, &["n"])).await.unwrap();
    let serving = vec![change("Cards", 1, "a", 0, Some(r#"{"n":1}"#)), change("Cards", 1, "b", 0, Some(r#"{"n":2}"#))];
    store.commit(rows(serving)).await.unwrap();
    let events = append(&store, &["Test.Opened", "Test.Noted"]).await;
    let (opened, noted) = (position_of(&store, &events[0]).await, position_of(&store, &events[1]).await);

    let build = store.begin_build("Cards", 2, hour).await.unwrap().expect("a rebuild starts");
    // A new copy: the next generation after every one used.
    assert_eq!((build.generation, build.version, build.position), (2, 2, 0));
    let g = build.generation;
    let state = state_of(&store, "Cards").await;
    assert_eq!((state.generation, state.version), (1, 1), "the old copy serves meanwhile");
    let running = state.build.expect("a rebuild under way");
    assert_eq!((running.generation, running.version, running.position), (g, 2, 0));
    assert!(store.begin_build("Cards", 2, hour).await.unwrap().is_none(), "another builder is at work");
    assert!(store.begin_build("Cards", 3, hour).await.unwrap().is_none(), "whatever version it asks for");

    let put = |key: &str, json: Option<&str>| (key.to_owned(), json.map(Arc::from));
    store
        .write_build("Cards", g, vec![put("a", Some(r#"{"n":10}"#)), put("c", Some(r#"{"n":30}"#))], opened)
        .await
        .unwrap();
    assert_eq!(row(&store, "Cards", Some(g), "a").await, Some((g, 1, r#"{"n":10}"#.into())));
    assert_eq!(row(&store, "Cards", None, "a").await, Some((1, 1, r#"{"n":1}"#.into())), "not served yet");
    assert_eq!(row(&store, "Cards", None, "c").await, None);
    let everything = RowQuery { projection: "Cards".into(), filters: vec![], order: vec![], limit: 100, offset: 0 };
    let keys = |found: Vec<Row>| found.into_iter().map(|r| (r.key, r.generation)).collect::<Vec<_>>();
    let served = store.query_projection(everything.clone()).await.unwrap();
    assert_eq!(keys(served), [("a".into(), 1), ("b".into(), 1)], "queries read the serving copy");
    store.write_build("Cards", g, vec![put("a", Some(r#"{"n":11}"#)), put("c", None)], opened).await.unwrap();
    assert_eq!(row(&store, "Cards", Some(g), "a").await, Some((g, 2, r#"{"n":11}"#.into())));
    assert_eq!(row(&store, "Cards", Some(g), "c").await, None);
    assert_eq!(state_of(&store, "Cards").await.build.map(|b| b.position), Some(opened));

    // An event of the types lies past the position: not finished, nothing changed.
    assert!(!store.finish_build("Cards", g, opened, &types(&["Test.Noted"])).await.unwrap());
    assert!(!store.finish_build("Cards", g, opened, &[]).await.unwrap(), "any type, when none is given");
    let state = state_of(&store, "Cards").await;
    assert_eq!((state.generation, state.version, state.build.map(|b| b.generation)), (1, 1, Some(g)));
    assert_eq!(row(&store, "Cards", None, "b").await, Some((1, 1, r#"{"n":2}"#.into())));

    store.write_build("Cards", g, vec![], noted).await.unwrap();
    assert!(store.finish_build("Cards", g, noted, &types(&["Test.Opened", "Test.Noted"])).await.unwrap());
    let state = state_of(&store, "Cards").await;
    let last = last_position(&store).await;
    assert_eq!((state.generation, state.version, state.built_through, state.checkpoint), (g, 2, last, last));
    assert_eq!(state.build, None);
    assert_eq!(row(&store, "Cards", None, "a").await, Some((g, 2, r#"{"n":11}"#.into())), "the new copy serves");
    assert_eq!(row(&store, "Cards", None, "b").await, None, "a row the rebuild did not write is gone");
    assert_eq!(row(&store, "Cards", Some(1), "a").await, None, "the old copy is dropped");
    assert_eq!(keys(store.query_projection(everything).await.unwrap()), [("a".into(), g)]);

    // The finished build takes no more writes; the old copy takes no more changes.
    let late = store.write_build("Cards", g, vec![put("z", Some("{}"))], noted).await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    let late = store.finish_build("Cards", g, noted, &[]).await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    let old = store.commit(rows(vec![change("Cards", 1, "a", 2, Some("{}"))])).await;
    conflict_on(old, "Cards", "a");
    store.commit(rows(vec![change("Cards", g, "a", 2, Some(r#"{"n":12}"#))])).await.unwrap();
    assert_eq!(row(&store, "Cards", None, "a").await, Some((g, 3, r#"{"n":12}"#.into())));

    // The next rebuild: only events of its types hold it back, and it is built through
    // the log's last position whatever it was given.
    let later = append(&store, &["Test.Noted"]).await.remove(0);
    let next = store.begin_build("Cards", 3, hour).await.unwrap().unwrap();
    assert_eq!(next.generation, g + 1);
    assert!(store.finish_build("Cards", next.generation, noted, &types(&["Test.Opened"])).await.unwrap());
    let state = state_of(&store, "Cards").await;
    let last = position_of(&store, &later).await;
    assert_eq!((state.generation, state.version, state.built_through), (next.generation, 3, last));
    assert_eq!(row(&store, "Cards", None, "a").await, None, "the new copy is what the rebuild wrote: nothing");
}

async fn a_silent_rebuild_is_taken_over(store: Arc<dyn Store>) {
    let hour = Duration::from_secs(3600);
    store.register_projection(spec("Cards", 1, &[])).await.unwrap();
    let first = append(&store, &["Test.Opened"]).await.remove(0);
    let at = position_of(&store, &first).await;
    let build = store.begin_build("Cards", 2, hour).await.unwrap().unwrap();
    store.write_build("Cards", build.generation, vec![("a".into(), Some(Arc::from("{}")))], at).await.unwrap();
    assert!(store.begin_build("Cards", 2, hour).await.unwrap().is_none(), "its builder wrote just now");

    tokio::time::sleep(Duration::from_millis(50)).await;
    let taken = store.begin_build("Cards", 2, Duration::from_millis(10)).await.unwrap().expect("taken over");
    assert_eq!((taken.version, taken.position), (2, at), "it resumes where the silent builder was");
    assert_eq!(row(&store, "Cards", Some(taken.generation), "a").await.map(|r| r.2), Some("{}".into()));
    assert!(store.begin_build("Cards", 2, hour).await.unwrap().is_none(), "its new builder wrote just now");
    // The silent builder's copy is no longer being built.
    let late = store.write_build("Cards", build.generation, vec![], at).await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    let late = store.finish_build("Cards", build.generation, at, &[]).await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");

    store.write_build("Cards", taken.generation, vec![("b".into(), Some(Arc::from("{}")))], at).await.unwrap();
    assert!(store.finish_build("Cards", taken.generation, at, &[]).await.unwrap());
    let state = state_of(&store, "Cards").await;
    assert_eq!((state.generation, state.build), (taken.generation, None));
    let everything = RowQuery { projection: "Cards".into(), filters: vec![], order: vec![], limit: 10, offset: 0 };
    let served: Vec<String> = store.query_projection(everything).await.unwrap().into_iter().map(|r| r.key).collect();
    assert_eq!(served, ["a", "b"]);
}

/// The rows the query cases read: every kind of value, and values of another kind in
/// `k4` (which must match nothing but filters of its own kinds).
const ITEMS: [(&str, &str); 5] = [
    ("k1", r#"{"n":1,"price":1.5,"name":"apple","ok":true,"tag":null}"#),
    ("k2", r#"{"n":2,"price":2.25,"name":"banana","ok":false,"tag":"x"}"#),
    ("k3", r#"{"n":10,"price":-0.5,"name":"cherry","ok":true}"#),
    ("k4", r#"{"n":"10","price":"cheap","name":5,"ok":"yes","tag":"y"}"#),
    ("k5", r#"{"n":-3,"price":2.25,"name":"apple","ok":false,"tag":"x"}"#),
];

async fn items(store: &Arc<dyn Store>) {
    store.register_projection(spec("Items", 1, &["n", "price", "name", "ok", "tag"])).await.unwrap();
    let all = ITEMS.iter().map(|(key, json)| change("Items", 1, key, 0, Some(json))).collect();
    store.commit(rows(all)).await.unwrap();
}

fn filter(field: &str, op: FilterOp, value: Value) -> RowFilter {
    RowFilter { field: field.into(), op, value }
}

fn order(field: &str, descending: bool) -> RowOrder {
    RowOrder { field: field.into(), descending }
}

/// The keys of the rows of `Items` that `filters` select, in `order`, paged.
async fn select(
    store: &Arc<dyn Store>,
    filters: Vec<RowFilter>,
    order: Vec<RowOrder>,
    offset: usize,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let query = RowQuery { projection: "Items".into(), filters, order, limit, offset };
    let found = store.query_projection(query).await?;
    for row in &found {
        let (_, json) = ITEMS.iter().find(|(key, _)| *key == row.key).expect("a row of the set");
        assert_eq!((row.generation, row.version, canonical(&row.json)), (1, 1, canonical(json)), "the row whole");
    }
    Ok(found.into_iter().map(|row| row.key).collect())
}

async fn keys_of(store: &Arc<dyn Store>, filters: Vec<RowFilter>) -> Vec<String> {
    select(store, filters, vec![], 0, 100).await.unwrap()
}

async fn queries_filter_rows_by_kind_and_value(store: Arc<dyn Store>) {
    use FilterOp::{Eq, Ge, Gt, Le, Lt, Ne};
    items(&store).await;
    let s = &store;
    let f = filter;
    assert_eq!(keys_of(s, vec![]).await, ["k1", "k2", "k3", "k4", "k5"], "no filter: every row, by key");
    // Integers.
    assert_eq!(keys_of(s, vec![f("n", Eq, json!(10))]).await, ["k3"], "the string \"10\" is not 10");
    assert_eq!(keys_of(s, vec![f("n", Ne, json!(10))]).await, ["k1", "k2", "k5"]);
    assert_eq!(keys_of(s, vec![f("n", Lt, json!(2))]).await, ["k1", "k5"]);
    assert_eq!(keys_of(s, vec![f("n", Le, json!(2))]).await, ["k1", "k2", "k5"]);
    assert_eq!(keys_of(s, vec![f("n", Gt, json!(2))]).await, ["k3"], "10 > 2 as numbers, not as text");
    assert_eq!(keys_of(s, vec![f("n", Ge, json!(2))]).await, ["k2", "k3"]);
    assert_eq!(keys_of(s, vec![f("n", Eq, json!(1.0))]).await, ["k1"], "numbers compare as numbers");
    // Floats, and integers against them.
    assert_eq!(keys_of(s, vec![f("price", Eq, json!(2.25))]).await, ["k2", "k5"]);
    assert_eq!(keys_of(s, vec![f("price", Ne, json!(2.25))]).await, ["k1", "k3"]);
    assert_eq!(keys_of(s, vec![f("price", Lt, json!(1.5))]).await, ["k3"]);
    assert_eq!(keys_of(s, vec![f("price", Le, json!(1.5))]).await, ["k1", "k3"]);
    assert_eq!(keys_of(s, vec![f("price", Gt, json!(2))]).await, ["k2", "k5"]);
    assert_eq!(keys_of(s, vec![f("price", Ge, json!(-0.5))]).await, ["k1", "k2", "k3", "k5"]);
    // Strings.
    assert_eq!(keys_of(s, vec![f("name", Eq, json!("apple"))]).await, ["k1", "k5"]);
    assert_eq!(keys_of(s, vec![f("name", Ne, json!("apple"))]).await, ["k2", "k3"], "5 is no string");
    assert_eq!(keys_of(s, vec![f("name", Lt, json!("b"))]).await, ["k1", "k5"]);
    assert_eq!(keys_of(s, vec![f("name", Le, json!("banana"))]).await, ["k1", "k2", "k5"]);
    assert_eq!(keys_of(s, vec![f("name", Gt, json!("banana"))]).await, ["k3"]);
    assert_eq!(keys_of(s, vec![f("name", Ge, json!("banana"))]).await, ["k2", "k3"]);
    // Booleans.
    assert_eq!(keys_of(s, vec![f("ok", Eq, json!(true))]).await, ["k1", "k3"]);
    assert_eq!(keys_of(s, vec![f("ok", Ne, json!(true))]).await, ["k2", "k5"], "\"yes\" is no boolean");
    assert_eq!(keys_of(s, vec![f("ok", Lt, json!(true))]).await, ["k2", "k5"]);
    assert_eq!(keys_of(s, vec![f("ok", Le, json!(false))]).await, ["k2", "k5"]);
    assert_eq!(keys_of(s, vec![f("ok", Gt, json!(false))]).await, ["k1", "k3"]);
    assert_eq!(keys_of(s, vec![f("ok", Ge, json!(false))]).await, ["k1", "k2", "k3", "k5"]);
    // Null: equal is null or missing, not equal is present and not null.
    assert_eq!(keys_of(s, vec![f("tag", Eq, Value::Null)]).await, ["k1", "k3"]);
    assert_eq!(keys_of(s, vec![f("tag", Ne, Value::Null)]).await, ["k2", "k4", "k5"]);
    assert_eq!(keys_of(s, vec![f("missing", Eq, Value::Null)]).await, ["k1", "k2", "k3", "k4", "k5"]);
    assert!(keys_of(s, vec![f("missing", Ne, Value::Null)]).await.is_empty());
    // A null or missing field matches no comparison with a value.
    assert_eq!(keys_of(s, vec![f("tag", Ne, json!("x"))]).await, ["k4"]);
    assert!(keys_of(s, vec![f("missing", Ne, json!(1))]).await.is_empty());
    // Values of another kind never match, whatever the comparison.
    for op in [Eq, Ne, Lt, Le, Gt, Ge] {
        assert_eq!(
            keys_of(s, vec![f("name", op, json!(5))]).await,
            if matches!(op, Ne | Lt | Gt) { vec![] } else { vec!["k4"] }
        );
        assert!(keys_of(s, vec![f("ok", op, json!(1))]).await.is_empty(), "a boolean is no number ({op:?})");
        assert!(keys_of(s, vec![f("n", op, json!(true))]).await.is_empty(), "a number is no boolean ({op:?})");
        assert!(keys_of(s, vec![f("n", op, json!("1"))]).await.iter().all(|k| k == "k4"), "text only in k4 ({op:?})");
    }
    assert_eq!(keys_of(s, vec![f("n", Gt, json!("1"))]).await, ["k4"], "text by text: \"10\" > \"1\"");
    assert_eq!(keys_of(s, vec![f("price", Lt, json!("d"))]).await, ["k4"]);
    // Every filter must hold.
    assert_eq!(keys_of(s, vec![f("ok", Eq, json!(true)), f("n", Gt, json!(1))]).await, ["k3"]);
    assert_eq!(keys_of(s, vec![f("name", Eq, json!("apple")), f("price", Ge, json!(2))]).await, ["k5"]);
    assert!(keys_of(s, vec![f("name", Eq, json!("apple")), f("name", Eq, json!("banana"))]).await.is_empty());
    // Null compared by order, or a value that is no scalar: refused.
    for op in [Lt, Le, Gt, Ge] {
        let refused = select(s, vec![f("tag", op, Value::Null)], vec![], 0, 100).await;
        assert!(matches!(refused, Err(StoreError::Unsupported(_))), "{op:?} null: {refused:?}");
    }
    for value in [json!([1]), json!({"a": 1})] {
        let refused = select(s, vec![f("n", Eq, value.clone())], vec![], 0, 100).await;
        assert!(matches!(refused, Err(StoreError::Unsupported(_))), "{value}: {refused:?}");
    }
}

async fn exact_integers_are_compared_exactly(store: Arc<dyn Store>) {
    store.register_projection(spec("Items", 1, &["n"])).await.unwrap();
    let big = [("a", "9007199254740993"), ("b", "9007199254740992"), ("c", "-9223372036854775808")];
    let all = big.iter().map(|(key, n)| change("Items", 1, key, 0, Some(format!(r#"{{"n":{n}}}"#).as_str()))).collect();
    store.commit(rows(all)).await.unwrap();
    let query = |op, value: Value, descending| RowQuery {
        projection: "Items".into(),
        filters: vec![filter("n", op, value)],
        order: vec![order("n", descending)],
        limit: 10,
        offset: 0,
    };
    let keys = |found: Vec<Row>| found.into_iter().map(|r| r.key).collect::<Vec<_>>();
    let gt = store.query_projection(query(FilterOp::Gt, json!(9007199254740992_i64), false)).await.unwrap();
    assert_eq!(keys(gt), ["a"]);
    let eq = store.query_projection(query(FilterOp::Eq, json!(9007199254740993_i64), false)).await.unwrap();
    assert_eq!(keys(eq), ["a"]);
    let all = store.query_projection(query(FilterOp::Le, json!(i64::MAX), true)).await.unwrap();
    assert_eq!(keys(all), ["a", "b", "c"]);
}

async fn queries_order_then_by_key_and_page(store: Arc<dyn Store>) {
    use FilterOp::Lt;
    items(&store).await;
    let s = &store;
    // Numbers only (k4's price is text): ties by key, ascending either way.
    let numbers = || vec![filter("price", Lt, json!(100))];
    assert_eq!(select(s, numbers(), vec![order("price", false)], 0, 100).await.unwrap(), ["k3", "k1", "k2", "k5"]);
    assert_eq!(select(s, numbers(), vec![order("price", true)], 0, 100).await.unwrap(), ["k2", "k5", "k1", "k3"]);
    // Null and missing first ascending (last descending), equal to each other.
    assert_eq!(select(s, vec![], vec![order("tag", false)], 0, 100).await.unwrap(), ["k1", "k3", "k2", "k5", "k4"]);
    assert_eq!(select(s, vec![], vec![order("tag", true)], 0, 100).await.unwrap(), ["k4", "k2", "k5", "k1", "k3"]);
    // Several orderings, each after the one before.
    let integers = || vec![filter("n", Lt, json!(100))];
    let by_name_then_n = || vec![order("name", false), order("n", true)];
    assert_eq!(select(s, integers(), by_name_then_n(), 0, 100).await.unwrap(), ["k1", "k5", "k2", "k3"]);
    let by_ok_then_price = || vec![order("ok", true), order("price", false)];
    assert_eq!(select(s, integers(), by_ok_then_price(), 0, 100).await.unwrap(), ["k3", "k1", "k2", "k5"]);

    // Pages cover every row exactly once, in the same order.
    let whole = select(s, vec![], vec![order("tag", false)], 0, 100).await.unwrap();
    let mut paged = Vec::new();
    for offset in (0..6).step_by(2) {
        let page = select(s, vec![], vec![order("tag", false)], offset, 2).await.unwrap();
        assert!(page.len() <= 2);
        paged.extend(page);
    }
    assert_eq!(paged, whole);
    assert_eq!(select(s, numbers(), vec![order("price", true)], 1, 2).await.unwrap(), ["k5", "k1"]);
    assert!(select(s, vec![], vec![], 5, 10).await.unwrap().is_empty(), "past the end");
    assert_eq!(select(s, vec![], vec![], 0, 3).await.unwrap(), ["k1", "k2", "k3"]);
}

/// What reading `key` of `projection` now records.
async fn read_key(store: &Arc<dyn Store>, projection: &'static str, key: &str) -> RowRead {
    let found = store.projection_row(projection, None, key).await.unwrap().as_ref().map(RowVersion::of);
    RowRead::Key { projection: projection.into(), key: key.to_owned(), found }
}

/// What running `query` now records.
async fn read_query(store: &Arc<dyn Store>, query: RowQuery) -> RowRead {
    let found = store.query_projection(query.clone()).await.unwrap().iter().map(RowVersion::of).collect();
    RowRead::Query { query, found }
}

/// A batch that writes row `key` of `Tally` (at `expected`) after reading `reads`: a
/// unit of work that decided on what it read.
fn deciding(reads: Vec<RowRead>, key: &str, expected: u64) -> Batch {
    Batch { reads, rows: vec![change("Tally", 1, key, expected, Some(r#"{"n":1}"#))], ..Batch::default() }
}

async fn a_row_read_that_changed_since_refuses_the_batch(store: Arc<dyn Store>) {
    store.register_projection(spec("Limits", 1, &["member"])).await.unwrap();
    store.register_projection(spec("Tally", 1, &[])).await.unwrap();
    let l = |key, expected, json| change("Limits", 1, key, expected, Some(json));
    store.commit(rows(vec![l("m1", 0, r#"{"member":"m1","loans":1}"#)])).await.unwrap();
    // Read, then changed by another unit: the decision is refused, nothing is written.
    let stale = read_key(&store, "Limits", "m1").await;
    store.commit(rows(vec![l("m1", 1, r#"{"member":"m1","loans":2}"#)])).await.unwrap();
    assert_eq!(conflict_on(store.commit(deciding(vec![stale], "t", 0)).await, "Limits", "m1"), (1, 2));
    assert_eq!(row(&store, "Tally", None, "t").await, None);
    // Read again, unchanged: it commits.
    let fresh = read_key(&store, "Limits", "m1").await;
    store.commit(deciding(vec![fresh.clone()], "t", 0)).await.unwrap();
    assert_eq!(row(&store, "Tally", None, "t").await.map(|r| r.1), Some(1));
    // A row read as absent that appeared since, and one read as present that went.
    let absent = read_key(&store, "Limits", "m2").await;
    store.commit(rows(vec![l("m2", 0, r#"{"member":"m2","loans":0}"#)])).await.unwrap();
    assert_eq!(conflict_on(store.commit(deciding(vec![absent], "u", 0)).await, "Limits", "m2"), (0, 1));
    let present = read_key(&store, "Limits", "m2").await;
    store.commit(rows(vec![change("Limits", 1, "m2", 1, None)])).await.unwrap();
    assert_eq!(conflict_on(store.commit(deciding(vec![present], "u", 0)).await, "Limits", "m2"), (1, 0));
    // A read checks only its own row: another row changing is no conflict.
    let unrelated = read_key(&store, "Limits", "m1").await;
    store.commit(rows(vec![l("m3", 0, r#"{"member":"m3","loans":5}"#)])).await.unwrap();
    store.commit(deciding(vec![unrelated], "u", 0)).await.unwrap();
    // A read with no other write still commits (and a batch of reads alone writes nothing).
    let alone = read_key(&store, "Limits", "m1").await;
    store.commit(Batch { reads: vec![alone], ..Batch::default() }).await.unwrap();
}

async fn a_query_read_whose_rows_changed_since_refuses_the_batch(store: Arc<dyn Store>) {
    store.register_projection(spec("Loans", 1, &["member", "open"])).await.unwrap();
    store.register_projection(spec("Tally", 1, &[])).await.unwrap();
    let open_of = |member: &str| RowQuery {
        projection: "Loans".into(),
        filters: vec![
            RowFilter { field: "member".into(), op: FilterOp::Eq, value: json!(member) },
            RowFilter { field: "open".into(), op: FilterOp::Eq, value: json!(true) },
        ],
        order: vec![],
        limit: 100,
        offset: 0,
    };
    let loan = |key, expected, member: &str, open: bool| {
        let json: &'static str = Box::leak(json!({"member": member, "open": open}).to_string().into_boxed_str());
        change("Loans", 1, key, expected, Some(json))
    };
    store.commit(rows(vec![loan("l1", 0, "m1", true)])).await.unwrap();
    // A matching row appears after the query ran: refused, naming the new row.
    let read = read_query(&store, open_of("m1")).await;
    store.commit(rows(vec![loan("l2", 0, "m1", true)])).await.unwrap();
    let (expected, actual) = match store.commit(deciding(vec![read], "t", 0)).await {
        Err(StoreError::Conflict(conflict)) => (conflict.expected, conflict.actual),
        other => panic!("a conflict, not {other:?}"),
    };
    assert_eq!((expected, actual), (0, 1));
    // A returned row changes (it no longer matches): refused.
    let read = read_query(&store, open_of("m1")).await;
    store.commit(rows(vec![loan("l1", 1, "m1", false)])).await.unwrap();
    assert!(matches!(store.commit(deciding(vec![read], "t", 0)).await, Err(StoreError::Conflict(_))));
    assert_eq!(row(&store, "Tally", None, "t").await, None);
    // Rows the query does not match may change: no conflict.
    let read = read_query(&store, open_of("m1")).await;
    store.commit(rows(vec![loan("l3", 0, "m2", true), loan("l1", 2, "m1", false)])).await.unwrap();
    store.commit(deciding(vec![read], "t", 0)).await.unwrap();
    assert_eq!(row(&store, "Tally", None, "t").await.map(|r| r.1), Some(1));
    // A value with a quote in it is a value, not SQL.
    let mut quoted = open_of("o'brien");
    quoted.filters.pop();
    let read = read_query(&store, quoted).await;
    store.commit(Batch { reads: vec![read], ..Batch::default() }).await.unwrap();
}

async fn reads_are_checked_per_unit_in_a_group(store: Arc<dyn Store>) {
    store.register_projection(spec("Limits", 1, &[])).await.unwrap();
    store.register_projection(spec("Tally", 1, &[])).await.unwrap();
    store.commit(rows(vec![change("Limits", 1, "m1", 0, Some(r#"{"loans":0}"#))])).await.unwrap();
    let read = read_key(&store, "Limits", "m1").await;
    // Two units decided on the same row: the first changes it, so the second, which
    // sees what the first wrote, is refused alone.
    let first = Batch {
        reads: vec![read.clone()],
        rows: vec![change("Limits", 1, "m1", 1, Some(r#"{"loans":1}"#))],
        ..Batch::default()
    };
    let second = Batch {
        reads: vec![read.clone()],
        rows: vec![change("Tally", 1, "x", 0, Some(r#"{"n":1}"#))],
        ..Batch::default()
    };
    let third = Batch { rows: vec![change("Tally", 1, "y", 0, Some(r#"{"n":1}"#))], ..Batch::default() };
    let outcomes = store.commit_group(vec![first, second, third]).await;
    assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
    assert_eq!(conflict_on(outcomes[1].clone(), "Limits", "m1"), (1, 2));
    assert!(outcomes[2].is_ok(), "{:?}", outcomes[2]);
    assert_eq!(row(&store, "Tally", None, "x").await, None);
    assert!(row(&store, "Tally", None, "y").await.is_some());
}

async fn read_models_are_kept(store: Arc<dyn Store>) {
    assert!(store.read_model("Price", "pen").await.unwrap().is_none());
    store.put_read_model("Price", "pen", r#"{"cents":40}"#.into()).await.unwrap();
    store.put_read_model("Price", "pen", r#"{"cents":45}"#.into()).await.unwrap();
    assert_eq!(store.read_model("Price", "pen").await.unwrap().as_deref(), Some(r#"{"cents":45}"#));
}

cases!(
    registering_a_projection_creates_it_once,
    rows_are_written_at_their_versions,
    a_conflicting_row_refuses_the_whole_batch,
    the_checkpoint_moves_to_the_highest_applied_position,
    row_changes_are_skipped_while_a_rebuild_runs,
    changes_from_events_a_rebuild_covered_are_skipped,
    a_rebuild_fills_a_new_copy_and_switches_to_it,
    a_silent_rebuild_is_taken_over,
    queries_filter_rows_by_kind_and_value,
    exact_integers_are_compared_exactly,
    queries_order_then_by_key_and_page,
    a_row_read_that_changed_since_refuses_the_batch,
    a_query_read_whose_rows_changed_since_refuses_the_batch,
    reads_are_checked_per_unit_in_a_group,
    read_models_are_kept,
);
