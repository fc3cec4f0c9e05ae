//! [`check_lock`]: the model against its checked-in lock, as one line of a test
//! ([`assert_lock!`](crate::assert_lock)) or the CLI's `ops schema check`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::lock::{Block, BlockKind, Lock, LockParseError};
use super::rules::{diff, Change, Outcome, Verdict};
use super::ty::Ty;
use crate::model::element::ElementKind;
use crate::registry::Model;

/// What [`check_lock`] may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Compare; write the lock only when there is none yet. A stale lock (safe changes)
    /// passes, with a note on stderr.
    Check,
    /// Compare and never write: a missing lock fails too. What CI runs.
    Verify,
    /// Compare, and rewrite the lock when no change is breaking.
    Update,
    /// Rewrite the lock whatever changed, listing the breaking changes on stderr: for a
    /// change that is meant, and that no stored data holds.
    Force,
}

impl LockMode {
    /// From the environment, like insta's `INSTA_UPDATE`: `PROTEAN_UPDATE_LOCK=1` (or
    /// `yes`, `true`, `always`) is [`Update`](Self::Update), `PROTEAN_UPDATE_LOCK=force` is
    /// [`Force`](Self::Force); otherwise [`Verify`](Self::Verify) when `CI` is set (as CI
    /// services set it) and [`Check`](Self::Check) when not.
    pub fn from_env() -> LockMode {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        match var("PROTEAN_UPDATE_LOCK").as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("1" | "yes" | "true" | "always") => LockMode::Update,
            Some("force") => LockMode::Force,
            _ if var("CI").is_some_and(|v| v != "0" && v != "false") => LockMode::Verify,
            _ => LockMode::Check,
        }
    }
}

/// What [`check_lock`] found, when nothing breaks (or [`LockMode::Force`] wrote it anyway).
#[derive(Debug, Clone)]
pub struct LockReport {
    /// Where the lock is.
    pub path: PathBuf,
    /// Every difference between the lock and the model, safe, mitigated and (with
    /// [`LockMode::Force`]) breaking.
    pub changes: Vec<Change>,
    /// Whether the lock was written: it was missing, or rewritten by
    /// [`Update`](LockMode::Update) or [`Force`](LockMode::Force).
    pub written: bool,
    /// What could not be checked: an upcaster that refused the sample payload of an older
    /// version for a reason of its own (the sample is made of zeros and empty texts).
    pub notes: Vec<String>,
    /// Where [`LockMode::Check`] wrote the lock it proposes for a stale one:
    /// `protean.lock.new` beside it, to review and rename (or accept with
    /// `PROTEAN_UPDATE_LOCK=1`). A passing test's output is not shown, a new file is.
    pub proposed: Option<PathBuf>,
}

impl LockReport {
    /// Whether the lock on disk differs from the model: changes left to accept.
    pub fn stale(&self) -> bool {
        !self.written && !self.changes.is_empty()
    }
}

/// Why [`check_lock`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// No lock at `path`, and the mode does not write one ([`LockMode::Verify`]).
    #[error(
        "no contract lock at {}: run `PROTEAN_UPDATE_LOCK=1 cargo test` (or `ops schema update`) and check it in",
        path.display()
    )]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The lock could not be read or written.
    #[error("could not {what} the contract lock at {}", path.display())]
    Io {
        /// `read` or `write`.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The lock is not a lock.
    #[error("the contract lock at {} does not read", path.display())]
    Parse {
        /// Where.
        path: PathBuf,
        /// The line and what is wrong.
        #[source]
        source: LockParseError,
    },
    /// The model has nothing the lock records (no event, command, aggregate, process
    /// manager or projection): checking it would pass on nothing, and writing it would
    /// empty the lock. In an integration test of a library, the library is linked (and its
    /// elements registered) only when the test names one of its items.
    #[error(
        "the domain's model has no event, command, aggregate, process manager or projection, so there is nothing to \
         check against {}: in a test of a library crate, build the domain through a function of that crate, or name \
         one of its types, so that the crate is linked and its elements are registered",
        path.display()
    )]
    EmptyModel {
        /// The lock it would have been checked against.
        path: PathBuf,
    },
    /// Changes that stored data (or callers) do not survive.
    #[error("{}", breaking_text(path, changes))]
    Breaking {
        /// Where the lock is.
        path: PathBuf,
        /// Every change, the breaking ones among them.
        changes: Vec<Change>,
    },
}

fn breaking_text(path: &Path, changes: &[Change]) -> String {
    let breaking: Vec<&Change> = changes.iter().filter(|c| c.outcome == Outcome::Breaking).collect();
    let mut text = format!(
        "{} breaking change(s) to what is stored, against the contract lock {}:\n",
        breaking.len(),
        path.display()
    );
    for c in breaking {
        text.push_str(&format!("  - {} [{}, {}]\n", c.message, c.rule, c.verdict.as_str()));
    }
    text.push_str(
        "If the change is meant and no stored event, scheduled command or caller holds the old shape, accept it \
         with `PROTEAN_UPDATE_LOCK=force cargo test` (or `ops schema update --force`).",
    );
    text
}

/// The lock of `model` beside the lock at `path`: every change classified, the lock
/// written as `mode` says. Fails with [`LockError::Breaking`] when a change breaks what is
/// stored (unless `mode` is [`LockMode::Force`]).
pub fn check_lock(model: &Model, path: impl AsRef<Path>, mode: LockMode) -> Result<LockReport, LockError> {
    let path = path.as_ref().to_path_buf();
    let now = Lock::of(model);
    if now.blocks.is_empty() {
        return Err(LockError::EmptyModel { path });
    }
    let old = read_lock(&path)?.map(|(_, lock)| lock);
    let Some(old) = old else {
        if mode == LockMode::Verify {
            return Err(LockError::Missing { path });
        }
        write(&path, &now)?;
        return Ok(LockReport { path, changes: Vec::new(), written: true, notes: Vec::new(), proposed: None });
    };
    let (changes, notes) = compare(model, &old, &now);
    let breaking = changes.iter().any(|c| c.outcome == Outcome::Breaking);
    if breaking && mode != LockMode::Force {
        return Err(LockError::Breaking { path, changes });
    }
    let merged = merge(&old, &now);
    let differs = merged != old;
    let written = differs && matches!(mode, LockMode::Update | LockMode::Force);
    if written {
        write(&path, &merged)?;
    }
    let new = proposal_path(&path);
    let proposed = (differs && mode == LockMode::Check).then(|| new.clone());
    match &proposed {
        Some(new) => write(new, &merged)?,
        // Accepted, or nothing left to accept: a proposal left from before is stale.
        None if mode != LockMode::Verify => match std::fs::remove_file(&new) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(LockError::Io { what: "write", path: new, source }),
        },
        None => {}
    }
    Ok(LockReport { path, changes, written, notes, proposed })
}

/// `protean.lock.new` for `protean.lock`: where a proposed lock is written.
fn proposal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

/// The changes from `old` to `now`, with the upcasters of `model` tried on a sample
/// payload of each older version the lock holds; and the notes of what could not be tried.
pub fn compare(model: &Model, old: &Lock, now: &Lock) -> (Vec<Change>, Vec<String>) {
    let names: BTreeMap<String, String> =
        model.elements().iter().map(|el| (el.type_name().to_owned(), el.name().to_owned())).collect();
    let mut changes = diff(old, now, &names);
    let mut notes = Vec::new();
    for el in model.of_kind(ElementKind::Event) {
        let (Some(upcast), Some(decode)) = (el.upcaster, el.decode) else { continue };
        for block in old.versions(BlockKind::Event, el.type_name()).filter(|b| b.version < el.version()) {
            // A version the declared upcasters do not cover is already a gap.
            if !el.upcasts().covers(block.version, el.version()) {
                continue;
            }
            let result = upcast(block.version, sample(block)).and_then(decode);
            match result {
                Ok(()) => {}
                Err(e) if e.starts_with("no upcaster from version") => changes.push(Change {
                    element: el.name().to_owned(),
                    kind: BlockKind::Event,
                    type_name: el.type_name().to_owned(),
                    path: None,
                    rule: "upcaster-gap",
                    verdict: Verdict::None,
                    outcome: Outcome::Breaking,
                    message: format!(
                        "`{}` is at version {}; the lock holds version {}, and its upcaster refuses it ({e}): make \
                         the upcaster read version {2}",
                        el.name(),
                        el.version(),
                        block.version
                    ),
                }),
                Err(e) => notes.push(format!(
                    "could not check the upcaster of `{}` from version {} with a sample payload (zeros, empty texts): {e}",
                    el.name(),
                    block.version
                )),
            }
        }
    }
    // A gap found by trying the upcaster also makes a mitigated bump no longer so.
    let gaps: Vec<String> = changes.iter().filter(|c| c.rule == "upcaster-gap").map(|c| c.type_name.clone()).collect();
    changes.retain(|c| !(c.rule == "version-bumped" && gaps.contains(&c.type_name)));
    (changes, notes)
}

/// The lock to write once the changes from `old` to `now` are accepted: the model's
/// blocks; the older versions of its events, which streams still hold, marked
/// superseded; and the retired blocks of elements no longer in the model.
pub fn merge(old: &Lock, now: &Lock) -> Lock {
    let mut merged = now.clone();
    for ((kind, type_name, version), block) in &old.blocks {
        let current = now.current(*kind, type_name).map(|b| b.version);
        let keep = match current {
            Some(current) => *kind == BlockKind::Event && *version < current,
            None => block.retired,
        };
        if keep {
            let mut kept = block.clone();
            kept.superseded |= current.is_some();
            merged.blocks.entry((*kind, type_name.clone(), *version)).or_insert(kept);
        }
    }
    merged
}

/// The lock at `path`, as written and as read; `None` when there is no file.
pub(crate) fn read_lock(path: &Path) -> Result<Option<(String, Lock)>, LockError> {
    match std::fs::read_to_string(path) {
        Ok(text) => match Lock::parse(&text) {
            Ok(lock) => Ok(Some((text, lock))),
            Err(source) => Err(LockError::Parse { path: path.to_path_buf(), source }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LockError::Io { what: "read", path: path.to_path_buf(), source }),
    }
}

/// Marks the element stored as `type_name` retired in the lock at `path`: it may then
/// leave the model. Fails when the lock does not hold it.
pub fn retire(path: impl AsRef<Path>, type_name: &str) -> Result<bool, LockError> {
    let path = path.as_ref().to_path_buf();
    let Some((_, mut lock)) = read_lock(&path)? else {
        return Err(LockError::Missing { path });
    };
    let mut found = false;
    for block in lock.blocks.values_mut().filter(|b| b.type_name == type_name && b.kind.is_message()) {
        found = true;
        block.retired = true;
    }
    if found {
        write(&path, &lock)?;
    }
    Ok(found)
}

/// Writes the lock through a temporary file renamed over `path`: a reader never sees
/// half a lock.
fn write(path: &Path, lock: &Lock) -> Result<(), LockError> {
    let io = |source| LockError::Io { what: "write", path: path.to_path_buf(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let temporary = path.with_extension("lock.tmp");
    std::fs::write(&temporary, lock.to_text()).map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

/// A payload of `block`'s shape: zeros, empty texts, the first choice, one element per
/// list, every optional value present.
pub(crate) fn sample(block: &Block) -> Value {
    sample_object(block, "")
}

/// A sample of the object whose fields are the block's lines under `prefix`.
fn sample_object(block: &Block, prefix: &str) -> Value {
    let object: Map<String, Value> =
        block.children(prefix).map(|(key, f)| (key.to_owned(), sample_value(block, &f.ty, &f.path))).collect();
    Value::Object(object)
}

fn sample_value(block: &Block, ty: &Ty, path: &str) -> Value {
    match ty {
        Ty::Bool => json!(false),
        Ty::Char => json!("a"),
        Ty::Int(_) | Ty::Uint(_) => json!(0),
        Ty::Float(_) => json!(0.0),
        Ty::Text => json!(""),
        Ty::Uuid | Ty::Identifier(_) => json!("00000000-0000-0000-0000-000000000000"),
        Ty::Timestamp => json!({ "secs_since_epoch": 0, "nanos_since_epoch": 0 }),
        Ty::Choice(names) => names.first().map_or(Value::Null, |n| json!(n)),
        Ty::List(of) => json!([sample_value(block, of, &format!("{path}[]"))]),
        Ty::Optional(of) => sample_value(block, of, path),
        Ty::Object => sample_object(block, &format!("{path}.")),
        Ty::Other(_) => Value::Null,
    }
}

impl fmt::Display for LockReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changes.is_empty() {
            return write!(f, "{}: up to date", self.path.display());
        }
        let state = match (&self.proposed, self.written) {
            (_, true) => "written".to_owned(),
            (Some(new), false) => format!(
                "stale: review {} and rename it over the lock, or run `PROTEAN_UPDATE_LOCK=1 cargo test`",
                new.display()
            ),
            (None, false) => "stale: run `PROTEAN_UPDATE_LOCK=1 cargo test`".to_owned(),
        };
        writeln!(f, "{}: {} change(s), {state}", self.path.display(), self.changes.len())?;
        for c in &self.changes {
            writeln!(f, "  - {c}")?;
        }
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
        Ok(())
    }
}

/// Checks the domain model against its contract lock, `protean.lock` at the root of the
/// crate under test (or the path given, relative to that root), in one line of a test:
///
/// ```no_run
/// # extern crate protean_core as protean;
/// # use protean::runtime::Domain;
/// # fn domain() -> Domain { unimplemented!() }
/// #[test]
/// fn stored_events_keep_their_shape() {
///     protean::contract::assert_lock!(domain().model());
/// }
/// ```
///
/// Panics with each breaking change, its rule and its fix; passes on safe changes, with
/// a note on stderr that the lock is stale and the lock it proposes written beside it
/// (`protean.lock.new`: rename it over the lock once reviewed). The mode comes from the environment
/// ([`LockMode::from_env`]): `PROTEAN_UPDATE_LOCK=1 cargo test` rewrites the lock for
/// accepted changes, and a missing lock is written, except under CI (`CI` set).
#[macro_export]
macro_rules! assert_lock {
    ($model:expr) => {
        $crate::assert_lock!($model, "protean.lock")
    };
    ($model:expr, $path:expr) => {{
        let path = ::std::path::Path::new(::core::env!("CARGO_MANIFEST_DIR")).join($path);
        match $crate::contract::check_lock($model, &path, $crate::contract::LockMode::from_env()) {
            ::core::result::Result::Ok(report) => {
                if report.stale() || !report.notes.is_empty() {
                    ::std::eprintln!("{report}");
                }
            }
            ::core::result::Result::Err(error) => ::core::panic!("{error}"),
        }
    }};
}
