#!/usr/bin/env python3
"""Writes the two crates that `run.sh` times: one domain of N aggregates written with
protean's macros, and the same domain written by hand with serde derives.

    python3 benches/build_cost/generate.py [N] [OUT_DIR] [PROTEAN_SRC] [PROTEAN_CRATE]

N defaults to 100; OUT_DIR to target/build-cost (under the worktree). It writes
OUT_DIR/PROTEAN_CRATE (default `protean_domain`), depending on the protean at
PROTEAN_SRC (default: this worktree; another checkout, such as `git archive` of an
earlier commit, to compare), and OUT_DIR/hand_domain, each its own workspace with a copy
of the worktree's Cargo.lock, so both build against the same dependency versions.

Per aggregate `i`, both crates hold:
- a value object `Amount{i}` (validated: value >= 0, unit 1..=8 chars);
- an aggregate `Agg{i}` (name 1..=100 chars, an amount, a list of entities, a flag);
- an entity `Item{i}` of it (label non-empty, quantity 1..=1000);
- two commands, `Create{i}` and `AddItem{i}`, and two events, `Created{i}` and `ItemAdded{i}`;
- a handler with two methods: `create` builds the aggregate, raises `Created{i}` and adds
  it to the unit of work; `add_item` loads it, adds an entity, raises `ItemAdded{i}`.

The protean crate uses `#[value_object]`, `#[aggregate]`, `#[entity(part_of = ..)]`,
`#[command]`, `#[event]` and `#[handler]` (which registers each method with the domain).

The hand-written crate derives `Serialize, Deserialize, Clone, Debug, PartialEq` on the
same structs, with hand-written `validate` functions (every field rule checked, every
error collected) and `new` constructors, and two async handler functions per aggregate
doing the same work against a trivial in-memory store (`Store`: a tokio mutex over a
map from (type, id) to (version, JSON state) plus a list of JSON events; a commit
checks the expected version, writes the state and appends the events). A
`dispatch(store, type_name, json)` function routes a command given as JSON to its
handler through a boxed future: the stand-in for protean's registration (without it,
rustc would not generate code for the handlers of a library at all, since nothing would
call them, and the comparison would time no code generation on the hand-written side).
"""
import os
import shutil
import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "target", "build-cost")
PROTEAN_SRC = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else ROOT
PROTEAN_CRATE = sys.argv[4] if len(sys.argv) > 4 else "protean_domain"
# With BUILD_COST_OPT_MACROS set, both crates build their proc macros (and the rest of
# their build dependencies) optimized, in every profile; cargo's default is unoptimized.
OPT_MACROS = """
[profile.dev.build-override]
opt-level = 3

[profile.release.build-override]
opt-level = 3
"""


def protean_aggregate(i: int) -> str:
    return f"""
/// The amount of aggregate {i}.
#[value_object]
pub struct Amount{i} {{
    #[field(min = 0)]
    pub value: i64,
    #[field(min_length = 1, max_length = 8)]
    pub unit: String,
}}

/// Aggregate {i}.
#[aggregate]
pub struct Agg{i} {{
    #[field(min_length = 1, max_length = 100)]
    pub name: String,
    pub amount: Amount{i},
    pub items: HasMany<Item{i}>,
    #[field(default = false)]
    pub closed: bool,
}}

impl Agg{i} {{
    /// Adds an item, raising [`ItemAdded{i}`].
    pub fn add_item(&mut self, label: &str, quantity: u32) -> Result<(), DomainError> {{
        self.change(|agg| {{
            if agg.closed {{
                return Err(DomainError::rule("a closed aggregate takes no items"));
            }}
            let item = Item{i}::builder().label(label).quantity(quantity).build()?;
            agg.items.add(item);
            let event = ItemAdded{i} {{ id: agg.id.clone(), label: label.to_string(), quantity }};
            agg.raise(event);
            Ok(())
        }})
    }}
}}

/// An item of aggregate {i}.
#[entity(part_of = Agg{i})]
pub struct Item{i} {{
    #[field(min_length = 1)]
    pub label: String,
    #[field(min = 1, max = 1000)]
    pub quantity: u32,
}}

/// Creates aggregate {i}.
#[command(part_of = Agg{i})]
pub struct Create{i} {{
    pub id: Identifier<Agg{i}>,
    #[field(min_length = 1, max_length = 100)]
    pub name: String,
    pub amount: Amount{i},
}}

/// Adds an item to aggregate {i}.
#[command(part_of = Agg{i})]
pub struct AddItem{i} {{
    pub id: Identifier<Agg{i}>,
    #[field(min_length = 1)]
    pub label: String,
    #[field(min = 1, max = 1000)]
    pub quantity: u32,
}}

/// Aggregate {i} was created.
#[event(part_of = Agg{i})]
pub struct Created{i} {{
    pub id: Identifier<Agg{i}>,
    pub name: String,
}}

/// An item was added to aggregate {i}.
#[event(part_of = Agg{i})]
pub struct ItemAdded{i} {{
    pub id: Identifier<Agg{i}>,
    pub label: String,
    pub quantity: u32,
}}

/// The commands of aggregate {i}.
pub struct Agg{i}Commands;

#[handler(part_of = Agg{i})]
impl Agg{i}Commands {{
    /// Creates the aggregate, raising [`Created{i}`].
    async fn create(ctx: &mut Context<Agg{i}>, command: Create{i}) -> Result<(), DomainError> {{
        let mut agg = Agg{i}::builder().id(command.id).name(command.name).amount(command.amount).build()?;
        let event = Created{i} {{ id: agg.id.clone(), name: agg.name.clone() }};
        agg.raise(event);
        ctx.add(agg)?;
        Ok(())
    }}

    /// Adds an item.
    async fn add_item(ctx: &mut Context<Agg{i}>, command: AddItem{i}) -> Result<(), DomainError> {{
        ctx.load(&command.id).await?.add_item(&command.label, command.quantity)
    }}
}}
"""


def hand_aggregate(i: int) -> str:
    return f"""
/// The amount of aggregate {i}.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Amount{i} {{
    pub value: i64,
    pub unit: String,
}}

impl Amount{i} {{
    /// A validated amount.
    pub fn new(value: i64, unit: impl Into<String>) -> Result<Self, ValidationError> {{
        let amount = Amount{i} {{ value, unit: unit.into() }};
        amount.validate()?;
        Ok(amount)
    }}

    /// Checks every field rule.
    pub fn validate(&self) -> Result<(), ValidationError> {{
        let mut errors = ValidationError::default();
        check_min(&mut errors, "value", self.value as f64, 0.0);
        check_length(&mut errors, "unit", &self.unit, 1, 8);
        errors.into_result()
    }}
}}

/// Aggregate {i}.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Agg{i} {{
    pub id: Uuid,
    pub name: String,
    pub amount: Amount{i},
    pub items: Vec<Item{i}>,
    #[serde(default)]
    pub closed: bool,
}}

impl Agg{i} {{
    /// Checks every field rule, and the amount's and items' own.
    pub fn validate(&self) -> Result<(), ValidationError> {{
        let mut errors = ValidationError::default();
        check_length(&mut errors, "name", &self.name, 1, 100);
        errors.nest("amount", self.amount.validate());
        for (n, item) in self.items.iter().enumerate() {{
            errors.nest(&format!("items[{{n}}]"), item.validate());
        }}
        errors.into_result()
    }}

    /// Adds an item, returning [`ItemAdded{i}`]; the aggregate is unchanged on an error.
    pub fn add_item(&mut self, label: &str, quantity: u32) -> Result<ItemAdded{i}, DomainError> {{
        if self.closed {{
            return Err(DomainError::Rule("a closed aggregate takes no items".into()));
        }}
        let item = Item{i}::new(label, quantity)?;
        let mut changed = self.clone();
        changed.items.push(item);
        changed.validate()?;
        *self = changed;
        Ok(ItemAdded{i} {{ id: self.id, label: label.to_string(), quantity }})
    }}
}}

/// An item of aggregate {i}.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Item{i} {{
    pub id: Uuid,
    pub label: String,
    pub quantity: u32,
}}

impl Item{i} {{
    /// A validated item with a new id.
    pub fn new(label: impl Into<String>, quantity: u32) -> Result<Self, ValidationError> {{
        let item = Item{i} {{ id: Uuid::now_v7(), label: label.into(), quantity }};
        item.validate()?;
        Ok(item)
    }}

    /// Checks every field rule.
    pub fn validate(&self) -> Result<(), ValidationError> {{
        let mut errors = ValidationError::default();
        check_length(&mut errors, "label", &self.label, 1, usize::MAX);
        check_range(&mut errors, "quantity", f64::from(self.quantity), 1.0, 1000.0);
        errors.into_result()
    }}
}}

/// Creates aggregate {i}.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Create{i} {{
    pub id: Uuid,
    pub name: String,
    pub amount: Amount{i},
}}

impl Create{i} {{
    /// Checks every field rule.
    pub fn validate(&self) -> Result<(), ValidationError> {{
        let mut errors = ValidationError::default();
        check_length(&mut errors, "name", &self.name, 1, 100);
        errors.nest("amount", self.amount.validate());
        errors.into_result()
    }}
}}

/// Adds an item to aggregate {i}.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AddItem{i} {{
    pub id: Uuid,
    pub label: String,
    pub quantity: u32,
}}

impl AddItem{i} {{
    /// Checks every field rule.
    pub fn validate(&self) -> Result<(), ValidationError> {{
        let mut errors = ValidationError::default();
        check_length(&mut errors, "label", &self.label, 1, usize::MAX);
        check_range(&mut errors, "quantity", f64::from(self.quantity), 1.0, 1000.0);
        errors.into_result()
    }}
}}

/// Aggregate {i} was created.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Created{i} {{
    pub id: Uuid,
    pub name: String,
}}

/// An item was added to aggregate {i}.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ItemAdded{i} {{
    pub id: Uuid,
    pub label: String,
    pub quantity: u32,
}}

/// Creates aggregate {i}, recording [`Created{i}`].
pub async fn create{i}(store: &Store, command: Create{i}) -> Result<(), DomainError> {{
    command.validate()?;
    let agg = Agg{i} {{ id: command.id, name: command.name, amount: command.amount, items: Vec::new(), closed: false }};
    agg.validate()?;
    let event = Created{i} {{ id: agg.id, name: agg.name.clone() }};
    store.commit("Agg{i}", agg.id, None, to_json(&agg)?, vec![("Created{i}", to_json(&event)?)]).await
}}

/// Adds an item to aggregate {i}, recording [`ItemAdded{i}`].
pub async fn add_item{i}(store: &Store, command: AddItem{i}) -> Result<(), DomainError> {{
    command.validate()?;
    let (version, json) = store.load("Agg{i}", command.id).await?;
    let mut agg: Agg{i} = from_json(&json)?;
    let event = agg.add_item(&command.label, command.quantity)?;
    store.commit("Agg{i}", agg.id, Some(version), to_json(&agg)?, vec![("ItemAdded{i}", to_json(&event)?)]).await
}}
"""


HAND_PRELUDE = """//! A domain written by hand, generated by benches/build_cost/generate.py.
#![allow(clippy::all)]

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A boxed future, as the dispatcher returns it.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Field errors, by path.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ValidationError {
    /// (path, message) pairs.
    pub fields: Vec<(String, String)>,
}

impl ValidationError {
    fn add(&mut self, path: &str, message: String) {
        self.fields.push((path.to_string(), message));
    }

    fn nest(&mut self, prefix: &str, inner: Result<(), ValidationError>) {
        if let Err(inner) = inner {
            for (path, message) in inner.fields {
                self.fields.push((format!("{prefix}.{path}"), message));
            }
        }
    }

    fn into_result(self) -> Result<(), ValidationError> {
        if self.fields.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (path, message) in &self.fields {
            writeln!(f, "{path}: {message}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}

fn check_length(errors: &mut ValidationError, path: &str, value: &str, min: usize, max: usize) {
    let n = value.chars().count();
    if n < min {
        errors.add(path, format!("must have at least {min} characters"));
    }
    if n > max {
        errors.add(path, format!("must have at most {max} characters"));
    }
}

fn check_min(errors: &mut ValidationError, path: &str, value: f64, min: f64) {
    if value < min {
        errors.add(path, format!("must be at least {min}"));
    }
}

fn check_range(errors: &mut ValidationError, path: &str, value: f64, min: f64, max: f64) {
    check_min(errors, path, value, min);
    if value > max {
        errors.add(path, format!("must be at most {max}"));
    }
}

/// What a handler refuses.
#[derive(Debug)]
pub enum DomainError {
    /// A field rule.
    Validation(ValidationError),
    /// A business rule.
    Rule(String),
    /// No such aggregate.
    NotFound(&'static str, Uuid),
    /// Someone else changed it first.
    Conflict,
    /// JSON that does not read or write.
    Json(serde_json::Error),
    /// No handler for the command.
    Unhandled(String),
}

impl From<ValidationError> for DomainError {
    fn from(e: ValidationError) -> Self {
        DomainError::Validation(e)
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String, DomainError> {
    serde_json::to_string(value).map_err(DomainError::Json)
}

fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, DomainError> {
    serde_json::from_str(json).map_err(DomainError::Json)
}

/// A trivial in-memory store: state by (type, id) with a version, and every event.
#[derive(Default)]
pub struct Store {
    inner: tokio::sync::Mutex<StoreInner>,
}

#[derive(Default)]
struct StoreInner {
    states: HashMap<(&'static str, Uuid), (u64, String)>,
    events: Vec<(&'static str, Uuid, String)>,
}

impl Store {
    /// The state of `kind` `id`, with its version.
    pub async fn load(&self, kind: &'static str, id: Uuid) -> Result<(u64, String), DomainError> {
        let inner = self.inner.lock().await;
        inner.states.get(&(kind, id)).cloned().ok_or(DomainError::NotFound(kind, id))
    }

    /// Writes the state if its version is still `expected` (`None`: new), and the events.
    pub async fn commit(
        &self,
        kind: &'static str,
        id: Uuid,
        expected: Option<u64>,
        state: String,
        events: Vec<(&'static str, String)>,
    ) -> Result<(), DomainError> {
        let mut inner = self.inner.lock().await;
        let current = inner.states.get(&(kind, id)).map(|(v, _)| *v);
        if current != expected {
            return Err(DomainError::Conflict);
        }
        inner.states.insert((kind, id), (expected.map_or(1, |v| v + 1), state));
        inner.events.extend(events.into_iter().map(|(name, json)| (name, id, json)));
        Ok(())
    }

    /// How many events were recorded.
    pub async fn event_count(&self) -> usize {
        self.inner.lock().await.events.len()
    }
}
"""


def hand_dispatch(n: int) -> str:
    arms = []
    for i in range(n):
        for (name, fun) in ((f"Create{i}", f"create{i}"), (f"AddItem{i}", f"add_item{i}")):
            arms.append(
                f'        "{name}" => Box::pin(async move {{ {fun}(store, from_json::<{name}>(json)?).await }}),'
            )
    return (
        "\n/// Runs the command `type_name`, given as JSON, through its handler.\n"
        "pub fn dispatch<'a>(store: &'a Store, type_name: &str, json: &'a str) -> BoxFuture<'a, Result<(), DomainError>> {\n"
        "    match type_name {\n"
        + "\n".join(arms)
        + "\n        other => { let other = other.to_string(); Box::pin(async move { Err(DomainError::Unhandled(other)) }) }\n"
        "    }\n}\n"
    )


def write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Unchanged files are not rewritten, so a rerun keeps the target dirs warm.
    if os.path.exists(path) and open(path).read() == text:
        return
    with open(path, "w") as f:
        f.write(text)


def crate(name: str, deps: str, source: str) -> None:
    d = os.path.join(OUT, name)
    # The crate's name is always the same; only its folder differs.
    package = "protean_domain" if name == PROTEAN_CRATE else name
    write(
        os.path.join(d, "Cargo.toml"),
        f'[package]\nname = "{package}"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n'
        f"[dependencies]\n{deps}\n"
        # Its own workspace: not a member of protean's.
        "[workspace]\n"
        + (OPT_MACROS if os.environ.get("BUILD_COST_OPT_MACROS") else ""),
    )
    lock = os.path.join(d, "Cargo.lock")
    if not os.path.exists(lock):
        shutil.copy(os.path.join(ROOT, "Cargo.lock"), lock)
    write(os.path.join(d, "src", "lib.rs"), source)


def main() -> None:
    protean = (
        "//! A domain written with protean's macros, generated by benches/build_cost/generate.py.\n"
        "#![allow(clippy::all)]\n\nuse protean::prelude::*;\n"
        + "".join(protean_aggregate(i) for i in range(N))
    )
    hand = HAND_PRELUDE + "".join(hand_aggregate(i) for i in range(N)) + hand_dispatch(N)
    # The memory store only: the store features change nothing in the user's crate.
    crate(PROTEAN_CRATE, f'protean = {{ path = "{PROTEAN_SRC}", default-features = false }}\n', protean)
    crate(
        "hand_domain",
        'serde = { version = "1", features = ["derive", "rc"] }\n'
        'serde_json = { version = "1", features = ["float_roundtrip", "raw_value"] }\n'
        'uuid = { version = "1", features = ["v7", "v4", "serde", "fast-rng"] }\n'
        'tokio = { version = "1", features = ["sync"] }\n',
        hand,
    )
    print(f"wrote {N} aggregates to {OUT}/{PROTEAN_CRATE} (protean at {PROTEAN_SRC}) and {OUT}/hand_domain")


if __name__ == "__main__":
    main()
