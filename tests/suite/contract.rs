//! The contract lock (`protean::contract`): for each rule, one small model before and after
//! a change of one stored event (or command, or projection), and the verdict, outcome and
//! message the check gives; the lock's text round-trips byte for byte and does not depend
//! on the order elements were registered in; [`check_lock`]'s modes write what they say.
//! The e-commerce example's lock is checked in and asserted like a user's would be.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use protean::contract::{check_lock, compare, merge, retire, Change, Lock, LockError, LockMode, Outcome, Verdict};
use protean::runtime::Domain;

/// Declares, in the module where it is used, the aggregate `Shop` and the given items.
macro_rules! shop {
    ($($item:item)*) => {
        #[allow(unused_imports)]
        use protean::prelude::*;
        #[aggregate]
        pub struct Shop {
            pub open: bool,
        }
        $($item)*
    };
}

/// The stored event `Shop.Placed` with the given fields (and attributes).
macro_rules! placed {
    ($(#[$attr:meta])* { $($fields:tt)* }) => {
        shop! {
            #[event(part_of = Shop, name = "Shop.Placed")]
            $(#[$attr])*
            pub struct Placed { $($fields)* }
        }
    };
}

mod base {
    placed!({ pub total: i64, pub note: Option<String> });
}
mod added_optional {
    placed!({ pub total: i64, pub note: Option<String>, pub gift: Option<bool>, pub tags: Vec<String> });
}
mod added_required {
    placed!({ pub total: i64, pub note: Option<String>, pub currency: String });
}
mod added_defaulted {
    placed!({ pub total: i64, pub note: Option<String>, #[field(default = "EUR")] pub currency: String });
}
mod removed {
    placed!({ pub total: i64 });
}
mod total_as_text {
    placed!({ pub total: String, pub note: Option<String> });
}
mod total_widened {
    placed!({ pub total: i128, pub note: Option<String> });
}
mod total_narrowed {
    placed!({ pub total: i32, pub note: Option<String> });
}
mod total_optional {
    placed!({ pub total: Option<i64>, pub note: Option<String> });
}
mod note_required {
    placed!({ pub total: i64, pub note: String });
}
mod renamed {
    placed!({ pub grand_total: i64, pub note: Option<String> });
}
mod renamed_with_alias {
    placed!({ #[serde(alias = "total")] pub grand_total: i64, pub note: Option<String> });
}
mod renamed_all {
    placed!(#[serde(rename_all = "camelCase")] { pub grand_total: i64, pub note: Option<String> });
}
mod renamed_back {
    placed!({ #[serde(rename = "total")] pub grand_total: i64, pub note: Option<String> });
}
mod omitted {
    placed!({ #[serde(skip_serializing_if = "is_zero")] pub total: i64, pub note: Option<String> });
    fn is_zero(n: &i64) -> bool {
        *n == 0
    }
}
mod denied {
    placed!(#[serde(deny_unknown_fields)] { pub total: i64 });
}
mod tagged {
    placed!(#[serde(tag = "type")] { pub total: i64, pub note: Option<String> });
}
mod limited {
    placed!({ #[field(min = 0)] pub total: i64, pub note: Option<String> });
}

/// Sizes before and after a choice is added or removed.
mod sized {
    shop! {
        #[value_object]
        pub enum Size { Small, Large }
        #[event(part_of = Shop, name = "Shop.Placed")]
        pub struct Placed { pub total: i64, pub note: Option<String>, pub size: Size }
    }
}
mod sized_more {
    shop! {
        #[value_object]
        pub enum Size { Small, Large, #[serde(rename = "XL")] ExtraLarge }
        #[event(part_of = Shop, name = "Shop.Placed")]
        pub struct Placed { pub total: i64, pub note: Option<String>, pub size: Size }
    }
}
mod sized_less {
    shop! {
        #[value_object]
        pub enum Size { Small }
        #[event(part_of = Shop, name = "Shop.Placed")]
        pub struct Placed { pub total: i64, pub note: Option<String>, pub size: Size }
    }
}

/// A value object inside the event, whose field changes type.
mod money {
    shop! {
        #[value_object]
        pub struct Money { pub cents: i64, pub currency: String }
        #[event(part_of = Shop, name = "Shop.Placed")]
        pub struct Placed { pub total: Money, pub lines: Vec<Money> }
    }
}
mod money_as_float {
    shop! {
        #[value_object]
        pub struct Money { pub cents: f64, pub currency: String, pub rate: u32 }
        #[event(part_of = Shop, name = "Shop.Placed")]
        pub struct Placed { pub total: Money, pub lines: Vec<Money> }
    }
}

/// Identifiers of another aggregate.
mod customer_ref {
    shop! {
        #[aggregate]
        pub struct Customer { pub name: String }
        #[aggregate]
        pub struct Supplier { pub name: String }
        #[event(part_of = Shop, name = "Shop.Placed")]
        pub struct Placed { pub total: i64, pub note: Option<String>, pub by: Identifier<Customer> }
    }
}
mod supplier_ref {
    shop! {
        #[aggregate]
        pub struct Customer { pub name: String }
        #[aggregate]
        pub struct Supplier { pub name: String }
        #[event(part_of = Shop, name = "Shop.Placed")]
        pub struct Placed { pub total: i64, pub note: Option<String>, pub by: Identifier<Supplier> }
    }
}

/// `Placed` renamed `Submitted` in the code: stored as `Shop.Submitted` now.
mod renamed_type {
    shop! {
        #[event(part_of = Shop)]
        pub struct Submitted { pub total: i64, pub note: Option<String> }
    }
}

/// Nothing a lock records: a value object alone.
mod values_only {
    use protean::prelude::*;

    #[value_object]
    pub struct Note {
        pub text: String,
    }
}

/// No `Shop.Placed` any more.
mod gone {
    shop! {}
}

/// Version 2, with one upcaster for every older version; version 2 without one; version 3
/// with a step from 2 only; a version lowered again.
mod v2_upcast {
    shop! {
        #[event(part_of = Shop, name = "Shop.Placed", version = 2, upcast = total_as_text)]
        pub struct Placed { pub total: String, pub note: Option<String> }
    }
    fn total_as_text(from: u32, mut payload: serde_json::Value) -> Result<serde_json::Value, String> {
        match from {
            1 => {
                let total = payload["total"].as_i64().ok_or("no total")?;
                payload["total"] = serde_json::json!(total.to_string());
                Ok(payload)
            }
            other => Err(format!("no upcaster from version {other} to version 2")),
        }
    }
}
mod v2_no_upcast {
    shop! {
        #[event(part_of = Shop, name = "Shop.Placed", version = 2)]
        pub struct Placed { pub total: String, pub note: Option<String> }
    }
}
mod v3_one_step {
    shop! {
        #[event(part_of = Shop, name = "Shop.Placed", version = 3, upcast(from = 2, with = note_to_remark))]
        pub struct Placed { pub total: String, pub remark: Option<String> }
    }
    fn note_to_remark(mut payload: serde_json::Value) -> Result<serde_json::Value, String> {
        if let Some(object) = payload.as_object_mut() {
            let note = object.remove("note").unwrap_or_default();
            object.insert("remark".into(), note);
        }
        Ok(payload)
    }
}
mod v3_steps {
    shop! {
        #[event(
            part_of = Shop,
            name = "Shop.Placed",
            version = 3,
            upcast(from = 2, with = note_to_remark),
            upcast(from = 1, with = total_as_text),
        )]
        pub struct Placed { pub total: String, pub remark: Option<String> }
    }
    fn total_as_text(mut payload: serde_json::Value) -> Result<serde_json::Value, String> {
        let total = payload["total"].as_i64().ok_or("no total")?;
        payload["total"] = serde_json::json!(total.to_string());
        Ok(payload)
    }
    fn note_to_remark(mut payload: serde_json::Value) -> Result<serde_json::Value, String> {
        if let Some(object) = payload.as_object_mut() {
            let note = object.remove("note").unwrap_or_default();
            object.insert("remark".into(), note);
        }
        Ok(payload)
    }
}
/// An upcaster that claims every older version but only reads version 2.
mod v3_false_claim {
    shop! {
        #[event(part_of = Shop, name = "Shop.Placed", version = 3, upcast = from_two)]
        pub struct Placed { pub total: String, pub remark: Option<String> }
    }
    fn from_two(from: u32, payload: serde_json::Value) -> Result<serde_json::Value, String> {
        match from {
            2 => Ok(payload),
            other => Err(format!("no upcaster from version {other} to version 3")),
        }
    }
}

/// A projection, then changed without and with a version bump.
macro_rules! view {
    ($version:literal, { $($fields:tt)* }) => {
        shop! {
            #[event(part_of = Shop, name = "Shop.Placed")]
            pub struct Placed { pub total: i64, pub note: Option<String> }
            #[projection(version = $version)]
            pub struct Totals { #[key] pub shop: String, $($fields)* }
            pub struct Totaller;
            #[projector(projection = Totals)]
            impl Totaller {
                async fn placed(rows: &mut Rows<Totals>, e: &Placed) -> Result<(), DomainError> {
                    let _ = (rows, e);
                    Ok(())
                }
            }
        }
    };
}
mod view_1 {
    view!(1, { pub sum: i64 });
}
mod view_1_indexed {
    view!(1, { #[index] pub sum: i64 });
}
mod view_2_indexed {
    view!(2, { #[index] pub sum: i64 });
}

/// A state-stored aggregate with entities, before and after fields are added; an
/// event-sourced one, which has no block (its state is its events).
mod stored_cart {
    shop! {
        #[aggregate]
        pub struct Cart { pub owner: String, pub items: HasMany<Item> }
        #[entity(part_of = Cart)]
        pub struct Item { pub sku: String }
        #[aggregate(event_sourced)]
        pub struct Ledger { pub balance: i64 }
    }
}
mod stored_cart_changed {
    shop! {
        #[aggregate]
        pub struct Cart { pub owner: String, pub items: HasMany<Item>, pub coupon: Option<String> }
        #[entity(part_of = Cart)]
        pub struct Item { pub sku: String, pub quantity: u32 }
        #[aggregate(event_sourced)]
        pub struct Ledger { pub balance: i64, pub owner: String }
    }
}

fn domain(module: &str) -> Domain {
    Domain::builder()
        .module(format!("{}::{module}", module_path!()))
        .build()
        .unwrap_or_else(|e| panic!("{module}: {e}"))
}

/// The lock of `module`, through its text.
fn lock(module: &str) -> Lock {
    Lock::parse(&Lock::of(domain(module).model()).to_text()).expect("a written lock reads")
}

/// The changes from the lock of `old` to the model of `new`.
fn changes_from(old: &Lock, new: &str) -> Vec<Change> {
    let new = domain(new);
    compare(new.model(), old, &Lock::of(new.model())).0
}

fn changes(old: &str, new: &str) -> Vec<Change> {
    changes_from(&lock(old), new)
}

/// The one change of rule `rule`, with the verdict and outcome expected.
#[track_caller]
fn one(changes: &[Change], rule: &str, verdict: Verdict, outcome: Outcome) -> Change {
    let found: Vec<&Change> = changes.iter().filter(|c| c.rule == rule).collect();
    assert_eq!(found.len(), 1, "one `{rule}` among {changes:#?}");
    assert_eq!((found[0].verdict, found[0].outcome), (verdict, outcome), "{:#?}", found[0]);
    found[0].clone()
}

fn breaking(changes: &[Change]) -> Vec<&'static str> {
    changes.iter().filter(|c| c.outcome == Outcome::Breaking).map(|c| c.rule).collect()
}

#[test]
fn an_unchanged_model_has_no_change() {
    assert_eq!(changes("base", "base"), vec![]);
    assert_eq!(changes("v3_steps", "v3_steps"), vec![]);
}

#[test]
fn a_field_added_optional_or_defaulted_is_safe_and_a_required_one_breaks() {
    let c = changes("base", "added_optional");
    assert_eq!(c.len(), 2, "{c:#?}");
    assert!(c.iter().all(|c| c.rule == "field-added-optional" && c.verdict == Verdict::Full));
    assert!(c.iter().all(|c| c.outcome == Outcome::Safe));
    let c = changes("base", "added_defaulted");
    one(&c, "field-added-optional", Verdict::Full, Outcome::Safe);

    let c = changes("base", "added_required");
    let change = one(&c, "field-added-required", Verdict::Forward, Outcome::Breaking);
    assert_eq!(change.path.as_deref(), Some("currency"));
    assert_eq!(
        change.message,
        "`Placed.currency` is new and required: payloads stored before it have no `currency`. Give it a default \
         (`#[field(default = ..)]`, or make it an `Option`), or bump `#[event(version = 2)]` and add an upcaster \
         from 1, or leave it out"
    );
}

#[test]
fn a_field_removed_is_safe_unless_unknown_fields_are_refused() {
    let c = changes("base", "removed");
    one(&c, "field-removed", Verdict::Full, Outcome::Safe);
    let c = changes("base", "denied");
    one(&c, "field-removed", Verdict::None, Outcome::Breaking);
    one(&c, "unknown-fields-denied", Verdict::Backward, Outcome::Safe);
}

#[test]
fn a_type_change_names_the_field_both_types_and_the_fix() {
    let c = changes("base", "total_as_text");
    let change = one(&c, "type-changed", Verdict::None, Outcome::Breaking);
    assert_eq!(
        change.message,
        "`Placed.total` changed from integer to text: bump `#[event(version = 2)]` and add an upcaster from 1, or \
         keep the old field"
    );
    one(&changes("base", "total_widened"), "type-widened", Verdict::Backward, Outcome::Safe);
    one(&changes("base", "total_narrowed"), "type-narrowed", Verdict::Forward, Outcome::Breaking);
    let c = changes("base", "total_optional");
    one(&c, "type-widened", Verdict::Backward, Outcome::Safe);
    one(&c, "field-made-optional", Verdict::Full, Outcome::Safe);
    // And back: an optional field made required breaks twice over.
    let c = changes("total_optional", "base");
    one(&c, "type-narrowed", Verdict::Forward, Outcome::Breaking);
    one(&c, "field-made-required", Verdict::Forward, Outcome::Breaking);
}

#[test]
fn a_defaulted_field_made_required_breaks() {
    let c = changes("base", "note_required");
    one(&c, "field-made-required", Verdict::Forward, Outcome::Breaking);
    let c = changes("added_defaulted", "added_required");
    let change = one(&c, "field-made-required", Verdict::Forward, Outcome::Breaking);
    assert!(change.message.starts_with("`Placed.currency` was defaulted and is now required"), "{change:#?}");
}

#[test]
fn a_rename_breaks_unless_the_old_name_is_read_as_an_alias() {
    let c = changes("base", "renamed");
    let change = one(&c, "field-renamed", Verdict::Forward, Outcome::Breaking);
    assert!(
        change.message.starts_with(
            "`Placed.grand_total` was stored as `total`: stored payloads have no `grand_total`. Add \
             `#[serde(alias = \"total\")]` to the field"
        ),
        "{}",
        change.message
    );
    assert_eq!(breaking(&c), ["field-renamed"], "the old field is not also reported removed");

    let c = changes("base", "renamed_with_alias");
    one(&c, "field-renamed-with-alias", Verdict::Backward, Outcome::Safe);
    assert_eq!(breaking(&c), Vec::<&str>::new());
    // A serde rename back to the stored name changes nothing that is stored.
    assert_eq!(changes("base", "renamed_back"), vec![]);
}

#[test]
fn serde_rename_all_is_read_as_the_stored_names() {
    // `rename_all = "camelCase"` on `grand_total`: stored as `grandTotal`.
    let text = Lock::of(domain("renamed_all").model()).to_text();
    assert!(text.contains("field grandTotal int64 required\n"), "{text}");
    let text = Lock::of(domain("added_optional").model()).to_text();
    assert!(text.contains("field gift optional(bool) defaulted\n"), "{text}");
    let text = Lock::of(domain("renamed_with_alias").model()).to_text();
    assert!(text.contains("field grand_total int64 required alias=total\n"), "{text}");
}

#[test]
fn a_required_field_left_out_when_written_breaks() {
    let c = changes("base", "omitted");
    let change = one(&c, "required-field-may-be-omitted", Verdict::None, Outcome::Breaking);
    assert_eq!(change.path.as_deref(), Some("total"));
}

#[test]
fn a_tag_and_limits_change_nothing_stored() {
    one(&changes("base", "tagged"), "tag-changed", Verdict::Full, Outcome::Safe);
    one(&changes("base", "limited"), "limits-changed", Verdict::Full, Outcome::Safe);
}

#[test]
fn choices_may_be_added_not_removed() {
    let c = changes("sized", "sized_more");
    let change = one(&c, "choice-added", Verdict::Backward, Outcome::Safe);
    assert!(change.message.contains("(XL)"), "{}", change.message);
    let c = changes("sized", "sized_less");
    let change = one(&c, "choice-removed", Verdict::Forward, Outcome::Breaking);
    assert!(change.message.contains("lost choices (Large)"), "{}", change.message);
}

#[test]
fn a_value_object_change_shows_in_every_event_that_stores_it() {
    let text = Lock::of(domain("money").model()).to_text();
    for line in ["field lines list(object) defaulted", "field lines[].cents int64 required", "field total.cents int64"]
    {
        assert!(text.contains(line), "{line} in {text}");
    }
    let c = changes("money", "money_as_float");
    let paths: BTreeMap<&str, &str> = c.iter().map(|c| (c.path.as_deref().unwrap_or("-"), c.rule)).collect();
    assert_eq!(
        paths,
        BTreeMap::from([
            ("lines[].cents", "type-widened"),
            ("lines[].rate", "field-added-required"),
            ("total.cents", "type-widened"),
            ("total.rate", "field-added-required"),
        ])
    );
}

#[test]
fn an_identifier_of_another_aggregate_reads_with_another_meaning() {
    let c = changes("customer_ref", "supplier_ref");
    let change = one(&c, "identifier-target-changed", Verdict::Full, Outcome::Safe);
    assert!(change.message.contains("from an identifier of Customer to an identifier of Supplier"));
}

#[test]
fn an_event_removed_breaks_until_it_is_retired() {
    let c = changes("base", "gone");
    let change = one(&c, "element-removed", Verdict::None, Outcome::Breaking);
    assert!(change.message.contains("`ops schema retire Shop.Placed`"), "{}", change.message);
    assert_eq!(change.element, "Shop.Placed", "the model no longer names it");

    let dir = scratch("retire");
    let path = dir.join("protean.lock");
    check_lock(domain("base").model(), &path, LockMode::Check).unwrap();
    assert!(matches!(check_lock(domain("gone").model(), &path, LockMode::Check), Err(LockError::Breaking { .. })));
    assert!(retire(&path, "Shop.Placed").unwrap());
    assert!(!retire(&path, "Shop.Unknown").unwrap());
    let report = check_lock(domain("gone").model(), &path, LockMode::Update).unwrap();
    assert_eq!(breaking(&report.changes), Vec::<&str>::new());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("[event Shop.Placed v1]\naggregate Shop\nupcast none\nretired\n"), "{text}");
    // An update keeps the retired block: the type stays taken.
    check_lock(domain("gone").model(), &path, LockMode::Update).unwrap();
    assert!(std::fs::read_to_string(&path).unwrap().contains("retired\n"));
}

#[test]
fn a_new_version_passes_only_when_its_upcasters_read_every_version_the_lock_holds() {
    let c = changes("base", "v2_upcast");
    one(&c, "version-bumped", Verdict::Backward, Outcome::Mitigated);
    assert_eq!(breaking(&c), Vec::<&str>::new(), "field changes are the upcaster's: {c:#?}");

    let c = changes("base", "v2_no_upcast");
    let change = one(&c, "upcaster-gap", Verdict::None, Outcome::Breaking);
    assert_eq!(
        change.message,
        "`Placed` is at version 2; the lock holds version 1, and no upcaster goes from 1: add `upcast(from = 1, \
         with = ..)` to `#[event(..)]` (or one `upcast = function` for every older version)"
    );

    // The lock after v2 holds v1 (superseded) and v2: v3 needs steps from both.
    let v2 = merge(&lock("base"), &lock("v2_upcast"));
    let text = v2.to_text();
    assert!(text.contains("[event Shop.Placed v1]\naggregate Shop\nupcast none\nsuperseded\n"), "{text}");
    assert!(text.contains("[event Shop.Placed v2]\naggregate Shop\nupcast all\n"), "{text}");
    let c = changes_from(&v2, "v3_one_step");
    let change = one(&c, "upcaster-gap", Verdict::None, Outcome::Breaking);
    assert!(change.message.contains("the lock holds version 1, and no upcaster goes from 1"), "{}", change.message);
    let c = changes_from(&v2, "v3_steps");
    one(&c, "version-bumped", Verdict::Backward, Outcome::Mitigated);
    assert!(Lock::of(domain("v3_steps").model()).to_text().contains("upcast steps 1,2\n"));

    // An upcaster that claims every version is tried on a payload of each: one that
    // refuses version 1 is a gap.
    let c = changes_from(&v2, "v3_false_claim");
    let change = one(&c, "upcaster-gap", Verdict::None, Outcome::Breaking);
    assert!(change.message.contains("its upcaster refuses it (no upcaster from version 1"), "{}", change.message);
    assert!(c.iter().all(|c| c.rule != "version-bumped"));
}

#[test]
fn a_renamed_type_is_told_to_keep_its_stored_name() {
    let c = changes("base", "renamed_type");
    let change = one(&c, "element-removed", Verdict::None, Outcome::Breaking);
    assert!(
        change.message.starts_with(
            "`Shop.Placed` is no longer in the domain, and `Shop.Submitted` is new with the same fields: if the Rust \
             type was renamed, keep the name it is stored under with `#[event(name = \"Shop.Placed\")]`; otherwise \
             keep the type, or mark it retired"
        ),
        "{}",
        change.message
    );
    one(&c, "element-added", Verdict::Full, Outcome::Safe);
}

#[test]
fn a_new_event_is_safe() {
    let c = changes("gone", "base");
    let change = one(&c, "element-added", Verdict::Full, Outcome::Safe);
    assert_eq!((change.element.as_str(), change.message.as_str()), ("Placed", "`Placed` is new (event version 1)"));
}

#[test]
fn a_version_never_goes_down() {
    let c = changes("v2_upcast", "base");
    one(&c, "version-lowered", Verdict::None, Outcome::Breaking);
}

#[test]
fn a_projection_changed_needs_a_new_version_to_be_rebuilt() {
    let text = Lock::of(domain("view_2_indexed").model()).to_text();
    assert!(text.contains("[projection Totals v2]\nkey shop\nindexed sum\nfield shop text required\n"), "{text}");
    let c = changes("view_1", "view_1_indexed");
    let change = one(&c, "projection-changed-without-version", Verdict::None, Outcome::Breaking);
    assert!(change.message.contains("bump `#[projection(version = 2)]`"), "{}", change.message);
    one(&changes("view_1", "view_2_indexed"), "projection-rebuilt", Verdict::Full, Outcome::Safe);
}

#[test]
fn a_state_stored_aggregate_and_its_entities_are_in_the_lock() {
    let text = Lock::of(domain("stored_cart").model()).to_text();
    for line in ["[aggregate Cart v1]\nfield id identifier(Cart) required\n", "field items list(object) defaulted\n"] {
        assert!(text.contains(line), "{line} in {text}");
    }
    assert!(text.contains("field items[].id identifier(Item) required\nfield items[].sku text required\n"), "{text}");
    assert!(!text.contains("Ledger"), "an event-sourced aggregate's state is its events: {text}");
    // A process manager's state is stored per flow: it has its block.
    let shop = Domain::builder().module(crate::example("ecommerce")).build().unwrap();
    let text = Lock::of(shop.model()).to_text();
    assert!(text.contains("[process_manager Fulfilment v1]\n"), "{text}");
    let c = changes("stored_cart", "stored_cart_changed");
    one(&c, "field-added-optional", Verdict::Full, Outcome::Safe);
    let change = one(&c, "field-added-required", Verdict::Forward, Outcome::Breaking);
    assert_eq!(change.path.as_deref(), Some("items[].quantity"));
    assert!(
        change.message.ends_with("records stored before the change no longer load: leave it out, or migrate them"),
        "{}",
        change.message
    );
}

#[test]
fn the_lock_text_round_trips_byte_for_byte_and_has_no_paths_or_times() {
    for module in ["base", "money", "sized_more", "v3_steps", "view_2_indexed", "tagged", "renamed_with_alias"] {
        let text = Lock::of(domain(module).model()).to_text();
        let parsed = Lock::parse(&text).unwrap();
        assert_eq!(parsed.to_text(), text, "{module}");
        assert!(!text.contains("::"), "no module path in {text}");
        assert!(!text.contains('\r'));
    }
    // Blocks by kind (events, commands, projections), then type name and version;
    // fields by path: the order elements were registered in plays no part.
    let ecommerce = Domain::builder().module(crate::example("ecommerce")).build().unwrap();
    let text = Lock::of(ecommerce.model()).to_text();
    let titles: Vec<&str> = text.lines().filter(|l| l.starts_with('[')).collect();
    let rank = |t: &str| {
        ["[event ", "[command ", "[aggregate ", "[process_manager ", "[projection "]
            .iter()
            .position(|k| t.starts_with(k))
            .unwrap()
    };
    let mut sorted = titles.clone();
    sorted.sort_by_key(|t| (rank(t), t.to_string()));
    assert_eq!(titles, sorted);
    for block in text.split("\n\n").skip(1) {
        let fields: Vec<&str> = block.lines().filter(|l| l.starts_with("field ")).collect();
        let mut sorted = fields.clone();
        sorted.sort();
        assert_eq!(fields, sorted, "{block}");
    }
}

/// A directory of its own under the system's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("protean-contract-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn each_mode_writes_what_it_says() {
    let dir = scratch("modes");
    let path = dir.join("protean.lock");
    // No lock: `Verify` (CI) fails, `Check` writes one.
    assert!(matches!(check_lock(domain("base").model(), &path, LockMode::Verify), Err(LockError::Missing { .. })));
    let report = check_lock(domain("base").model(), &path, LockMode::Check).unwrap();
    assert!(report.written && report.changes.is_empty());
    let base = std::fs::read_to_string(&path).unwrap();
    assert_eq!(base, Lock::of(domain("base").model()).to_text());

    // A safe change: passes, the lock stays as it was (stale) until updated, and the lock
    // it proposes is written beside it, where `git status` shows it.
    let report = check_lock(domain("added_optional").model(), &path, LockMode::Check).unwrap();
    assert!(report.stale() && !report.written);
    let proposal = dir.join("protean.lock.new");
    assert_eq!(report.proposed.as_deref(), Some(proposal.as_path()));
    assert!(report.to_string().contains("protean.lock.new and rename it over the lock"), "{report}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), base);
    let proposed = std::fs::read_to_string(&proposal).unwrap();
    assert!(proposed.contains("field gift optional(bool) defaulted"), "{proposed}");
    // `Verify` (CI) writes no proposal; `Update` writes the lock, the same text, and
    // removes the proposal.
    std::fs::remove_file(&proposal).unwrap();
    assert!(check_lock(domain("added_optional").model(), &path, LockMode::Verify).unwrap().stale());
    assert!(!proposal.exists());
    check_lock(domain("added_optional").model(), &path, LockMode::Check).unwrap();
    let report = check_lock(domain("added_optional").model(), &path, LockMode::Update).unwrap();
    assert!(report.written && report.proposed.is_none());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), proposed);
    assert!(!proposal.exists(), "the proposal is gone once accepted");

    // A breaking change: fails in every mode but `Force`, and nothing is written.
    let before = std::fs::read_to_string(&path).unwrap();
    for mode in [LockMode::Check, LockMode::Verify, LockMode::Update] {
        let error = check_lock(domain("total_as_text").model(), &path, mode).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("breaking change(s) to what is stored"), "{text}");
        assert!(text.contains("`Placed.total` changed from integer to text"), "{text}");
        assert!(text.contains("PROTEAN_UPDATE_LOCK=force"), "{text}");
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    let report = check_lock(domain("total_as_text").model(), &path, LockMode::Force).unwrap();
    assert!(report.written);
    assert!(std::fs::read_to_string(&path).unwrap().contains("field total text required"));

    // A model with nothing to lock is refused, not checked against nothing, and the lock
    // is left as it was.
    let empty = Domain::builder().module(format!("{}::values_only", module_path!())).build().unwrap();
    let before = std::fs::read_to_string(&path).unwrap();
    let error = check_lock(empty.model(), &path, LockMode::Update);
    assert!(matches!(error, Err(LockError::EmptyModel { .. })), "{error:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);

    // A lock that does not read is an error with its line.
    std::fs::write(&path, "protean-lock 1\n[event Shop.Placed v1]\nfield total int64 maybe\n").unwrap();
    let error = check_lock(domain("base").model(), &path, LockMode::Check).unwrap_err();
    assert!(matches!(&error, LockError::Parse { source, .. } if source.line == 3), "{error:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_json_schema_of_an_event_lists_its_stored_keys() {
    let lock = Lock::of(domain("money").model());
    let block = lock.blocks.values().find(|b| b.type_name == "Shop.Placed").unwrap();
    let schema = protean::contract::json_schema(block);
    assert!(protean::contract::json_schemas(domain("money").model())
        .values()
        .all(|s| s["$id"] != "urn:protean:Shop:v1"));
    assert_eq!(schema["$id"], "urn:protean:Shop.Placed:v1");
    assert_eq!(schema["required"], serde_json::json!(["total"]));
    assert_eq!(schema["properties"]["total"]["properties"]["cents"]["type"], "integer");
    assert_eq!(schema["properties"]["lines"]["items"]["required"], serde_json::json!(["cents", "currency"]));
}

/// The e-commerce example's lock, checked in: what a user's test looks like.
#[test]
fn the_ecommerce_contract_holds() {
    let domain = Domain::builder().module(crate::example("ecommerce")).build().unwrap();
    protean::contract::assert_lock!(domain.model(), "examples/ecommerce/protean.lock");
}

/// `Domain::check` reports the contract: without a lock, an event whose upcasters do not
/// reach back to version 1 (E002); with one, each change from it by its outcome.
#[test]
fn domain_check_reports_upcaster_gaps_and_the_lock_by_code() {
    use protean::registry::CheckConfig;
    let codes = |module: &str, config: &CheckConfig| -> Vec<(&'static str, String)> {
        let mut found: Vec<(&'static str, String)> = domain(module)
            .check(config)
            .into_iter()
            .filter(|d| ["E002", "E003", "W006"].contains(&d.code))
            .map(|d| (d.code, d.message))
            .collect();
        found.sort();
        found
    };
    let plain = CheckConfig::default();
    let gap = codes("v2_no_upcast", &plain);
    assert_eq!(gap.len(), 1, "{gap:?}");
    assert!(gap[0].1.starts_with("`Placed` is at version 2, and no upcaster reads version 1"), "{gap:?}");
    assert_eq!(codes("v2_upcast", &plain), vec![]);
    assert_eq!(codes("v3_steps", &plain), vec![]);
    let gap = codes("v3_one_step", &plain);
    assert!(gap[0].1.contains("no upcaster reads version 1 "), "{gap:?}");

    let dir = scratch("check");
    let path = dir.join("protean.lock");
    let with_lock = CheckConfig::default().lock(&path);
    let missing = codes("base", &with_lock);
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].0, "W006");
    std::fs::write(&path, Lock::of(domain("base").model()).to_text()).unwrap();
    assert_eq!(codes("base", &with_lock), vec![]);
    let stale = codes("added_optional", &with_lock);
    assert!(stale.len() == 2 && stale.iter().all(|(code, _)| *code == "W006"), "{stale:?}");
    let breaking = codes("total_as_text", &with_lock);
    assert_eq!(breaking.len(), 1, "{breaking:?}");
    assert_eq!(breaking[0].0, "E003");
    assert!(breaking[0].1.ends_with("or keep the old field [type-changed, NONE]"), "{breaking:?}");
    let gap = codes("v2_no_upcast", &with_lock);
    assert_eq!(gap.iter().map(|(c, _)| *c).collect::<Vec<_>>(), ["E002"], "{gap:?}");
    // The lock knows the versions stored: a new event at version 2 with no lock entry
    // before it is no gap there.
    std::fs::write(&path, Lock::of(domain("v2_no_upcast").model()).to_text()).unwrap();
    assert_eq!(codes("v2_no_upcast", &with_lock), vec![]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What a consumer in another service does with `ops schema export`: validate what it
/// receives against the event's JSON Schema (here with the `boon` validator, draft
/// 2020-12). An `OrderPlaced` as the e-commerce domain stores it passes, limits included;
/// one whose total is text, or lacks a required key, does not.
#[test]
fn a_stored_event_validates_against_its_exported_json_schema() {
    use crate::ecommerce::{Money, OrderLine, OrderPlaced};
    use protean::model::Identifier;
    let domain = Domain::builder().module(crate::example("ecommerce")).build().unwrap();
    let schema =
        protean::contract::json_schemas(domain.model()).remove("Order.OrderPlaced").expect("OrderPlaced has a schema");
    assert_eq!(schema["$id"], "urn:protean:Order.OrderPlaced:v1");
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    compiler.add_resource("urn:protean:Order.OrderPlaced:v1", schema).unwrap();
    let index = compiler.compile("urn:protean:Order.OrderPlaced:v1", &mut schemas).unwrap();

    let price = Money::new(1250, "EUR").unwrap();
    let placed = OrderPlaced {
        order_id: Identifier::generate(),
        customer_id: Identifier::generate(),
        lines: vec![OrderLine::new("BOOK-1", 2, price).unwrap()],
        total: Money::new(2500, "EUR").unwrap(),
    };
    let payload = serde_json::to_value(&placed).unwrap();
    assert!(schemas.validate(&payload, index).is_ok(), "{payload}");

    let mut text_total = payload.clone();
    text_total["total"] = serde_json::json!("25.00");
    assert!(schemas.validate(&text_total, index).is_err());
    let mut no_customer = payload.clone();
    no_customer.as_object_mut().unwrap().remove("customer_id");
    assert!(schemas.validate(&no_customer, index).is_err());
    let mut too_many = payload.clone();
    too_many["lines"][0]["quantity"] = serde_json::json!(1001);
    assert!(schemas.validate(&too_many, index).is_err(), "`max = 1000` is `maximum` in the schema");
    let mut bad_currency = payload;
    bad_currency["total"]["currency"] = serde_json::json!("EURO");
    assert!(schemas.validate(&bad_currency, index).is_err(), "`length = 3`");
}
