//! The lock: what the domain stores and accepts, as a canonical, line-based text.
//!
//! One block per event and command version and per projection, sorted by kind, stored
//! type name and version; one line per stored field, sorted by its path. Value objects
//! are written inline, as dotted paths (`total.cents`, `lines[].sku`), so a change to a
//! value object shows in every event that stores it. No module paths, no Rust type
//! names of value objects, no times: moving or renaming a type in the code changes
//! nothing that is stored, and so nothing in the lock.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use super::ty::{escape, unescape, Ty};
use crate::model::element::ElementKind;
use crate::model::field::FieldShape;
use crate::registry::{ElementDescriptor, FieldDescriptor, Model, Presence, Upcasts};

/// The first line of every lock after its comments: the format's version.
pub(crate) const FORMAT_LINE: &str = "protean-lock 1";

/// The comment a written lock opens with.
const HEADER: &str = "# protean.lock: the stored contract of this domain (events, commands, projections).\n\
# Generated: check it in. Rewrite it after an accepted change with\n\
#   PROTEAN_UPDATE_LOCK=1 cargo test   (or: <your binary> ops schema update)\n";

/// Which kind of element a [`Block`] is about, in the order blocks are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BlockKind {
    /// A stored event.
    Event,
    /// A command: what callers send, and what the schedule stores.
    Command,
    /// A state-stored aggregate's record, with its entities (an event-sourced aggregate's
    /// state is its events: it has no block).
    Aggregate,
    /// A process manager's state, stored per flow.
    ProcessManager,
    /// A projection's rows.
    Projection,
}

impl BlockKind {
    /// Whether it is a message (an event or a command): what has a JSON Schema.
    pub const fn is_message(self) -> bool {
        matches!(self, BlockKind::Event | BlockKind::Command)
    }
}

impl BlockKind {
    /// `"event"`, `"command"` or `"projection"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BlockKind::Event => "event",
            BlockKind::Command => "command",
            BlockKind::Aggregate => "aggregate",
            BlockKind::ProcessManager => "process_manager",
            BlockKind::Projection => "projection",
        }
    }

    fn parse(text: &str) -> Option<BlockKind> {
        match text {
            "event" => Some(BlockKind::Event),
            "command" => Some(BlockKind::Command),
            "aggregate" => Some(BlockKind::Aggregate),
            "process_manager" => Some(BlockKind::ProcessManager),
            "projection" => Some(BlockKind::Projection),
            _ => None,
        }
    }
}

/// One stored field of a block: a line `field <path> <type> <presence> [..]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldLine {
    /// Its path: the stored key, with its value objects' keys after dots (`total.cents`)
    /// and `[]` after a list (`lines[].sku`).
    pub path: String,
    /// Its type.
    pub ty: Ty,
    /// What a stored record lacking it reads as.
    pub presence: Presence,
    /// `#[serde(skip_serializing_if = ..)]`: may be left out when written.
    pub may_be_omitted: bool,
    /// `#[serde(alias = ..)]`: other keys it is read from, sorted.
    pub aliases: Vec<String>,
    /// `#[field(..)]` limits, as `min=1`, `max_length=20`, in a fixed order.
    pub limits: Vec<String>,
}

/// One element version in the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Event, command or projection.
    pub kind: BlockKind,
    /// The stored type name (`Order.OrderPlaced`); a projection's name.
    pub type_name: String,
    /// The version.
    pub version: u32,
    /// The aggregate an event or command is part of.
    pub aggregate: Option<String>,
    /// An event's upcasters: `none`, `all` or `steps 1,2`.
    pub upcasts: LockUpcasts,
    /// `#[serde(tag = ..)]` of the element.
    pub tag: Option<String>,
    /// `#[serde(deny_unknown_fields)]` of the element.
    pub deny_unknown_fields: bool,
    /// A projection's key, by stored name.
    pub key: Option<String>,
    /// A projection's indexed fields, by stored name, sorted.
    pub indexed: Vec<String>,
    /// Marked retired: no stream holds it any more, so it may leave the model.
    pub retired: bool,
    /// An older version of an event kept because streams hold it: the current version's
    /// upcasters must read it.
    pub superseded: bool,
    /// The stored fields, by path.
    pub fields: BTreeMap<String, FieldLine>,
}

/// An event's upcasters as the lock records them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LockUpcasts {
    /// No upcaster.
    #[default]
    None,
    /// One function for every older version.
    All,
    /// One step per version read, sorted.
    Steps(Vec<u32>),
}

impl LockUpcasts {
    pub(crate) fn of(upcasts: Upcasts) -> LockUpcasts {
        match upcasts {
            Upcasts::None => LockUpcasts::None,
            Upcasts::All => LockUpcasts::All,
            Upcasts::Steps(steps) => LockUpcasts::Steps(steps.to_vec()),
        }
    }
}

impl fmt::Display for LockUpcasts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockUpcasts::None => f.write_str("none"),
            LockUpcasts::All => f.write_str("all"),
            LockUpcasts::Steps(steps) => {
                let steps: Vec<String> = steps.iter().map(u32::to_string).collect();
                write!(f, "steps {}", steps.join(","))
            }
        }
    }
}

/// The key a block is sorted and found by.
pub type BlockKey = (BlockKind, String, u32);

/// The stored contract of a domain: every event and command version and projection,
/// with its stored fields. [`Lock::of`] builds it from a model; [`Lock::to_text`] and
/// [`Lock::parse`] write and read `protean.lock`, byte for byte.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    /// The blocks, by kind, type name and version.
    pub blocks: BTreeMap<BlockKey, Block>,
}

/// A lock file that does not read: the line and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protean.lock, line {line}: {message}")]
pub struct LockParseError {
    /// The line, from 1.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl Lock {
    /// The lock of `model`: its events, commands and projections as stored now.
    pub fn of(model: &Model) -> Lock {
        let mut blocks = BTreeMap::new();
        let kinds = [
            (ElementKind::Event, BlockKind::Event),
            (ElementKind::Command, BlockKind::Command),
            (ElementKind::Aggregate, BlockKind::Aggregate),
            (ElementKind::ProcessManager, BlockKind::ProcessManager),
            (ElementKind::Projection, BlockKind::Projection),
        ];
        for (element_kind, kind) in kinds {
            for el in model.of_kind(element_kind).filter(|el| !el.event_sourced()) {
                let block = Block::of(model, el, kind);
                blocks.insert((kind, block.type_name.clone(), block.version), block);
            }
        }
        Lock { blocks }
    }

    /// The block of an element's newest version.
    pub fn current(&self, kind: BlockKind, type_name: &str) -> Option<&Block> {
        self.versions(kind, type_name).max_by_key(|b| b.version)
    }

    /// The blocks of one element, oldest version first.
    pub fn versions<'a, 'n>(
        &'a self,
        kind: BlockKind,
        type_name: &'n str,
    ) -> impl Iterator<Item = &'a Block> + use<'a, 'n> {
        self.blocks.values().filter(move |b| b.kind == kind && b.type_name == type_name)
    }

    /// The lock as `protean.lock` holds it: a header comment, the format line, and one
    /// block per element version, each after an empty line. Only `\n` line ends.
    pub fn to_text(&self) -> String {
        let mut out = String::from(HEADER);
        out.push_str(FORMAT_LINE);
        out.push('\n');
        for block in self.blocks.values() {
            out.push('\n');
            block.write(&mut out);
        }
        out
    }

    /// Reads a lock written by [`to_text`](Self::to_text) (comments and blank lines
    /// anywhere are skipped).
    pub fn parse(text: &str) -> Result<Lock, LockParseError> {
        let mut blocks = BTreeMap::new();
        let mut current: Option<Block> = None;
        let mut format_seen = false;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let error = |message: String| LockParseError { line: i + 1, message };
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !format_seen {
                if line != FORMAT_LINE {
                    return Err(error(format!("expected `{FORMAT_LINE}`, found `{line}`")));
                }
                format_seen = true;
                continue;
            }
            if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                if let Some(done) = current.take() {
                    blocks.insert((done.kind, done.type_name.clone(), done.version), done);
                }
                current = Some(Block::parse_header(header).map_err(error)?);
                continue;
            }
            let Some(block) = current.as_mut() else {
                return Err(error(format!("`{line}` comes before any `[kind Name vN]` block")));
            };
            block.parse_line(line).map_err(error)?;
        }
        if !format_seen {
            return Err(LockParseError { line: 1, message: format!("no `{FORMAT_LINE}` line") });
        }
        if let Some(done) = current.take() {
            blocks.insert((done.kind, done.type_name.clone(), done.version), done);
        }
        Ok(Lock { blocks })
    }
}

impl Block {
    fn of(model: &Model, el: &ElementDescriptor, kind: BlockKind) -> Block {
        let mut fields = BTreeMap::new();
        collect_fields(model, el.fields(), "", &mut Vec::new(), &mut fields);
        let serde = el.serde();
        let key = (kind == BlockKind::Projection)
            .then(|| el.identity().and_then(|id| el.fields().iter().find(|f| f.name() == id)))
            .flatten()
            .map(|f| f.stored().to_owned());
        let mut indexed: Vec<String> = el.indexed().iter().map(|i| (*i).to_owned()).collect();
        indexed.sort();
        Block {
            kind,
            type_name: el.type_name().to_owned(),
            version: el.version(),
            aggregate: el.part_of().map(str::to_owned),
            upcasts: LockUpcasts::of(el.upcasts()),
            tag: serde.tag.map(str::to_owned),
            deny_unknown_fields: serde.deny_unknown_fields,
            key,
            indexed,
            retired: false,
            superseded: false,
            fields,
        }
    }

    /// The fields of the object at `prefix` (`""` for the element itself, `"total."` or
    /// `"lines[]."` for a value object it holds), with their keys; the skipped ones left out.
    pub(crate) fn children<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a FieldLine)> {
        self.fields.values().filter_map(move |f| {
            let key = f.path.strip_prefix(prefix)?;
            (!key.contains('.') && !key.contains("[]") && f.presence != Presence::Skipped).then_some((key, f))
        })
    }

    /// The block's `[event Order.OrderPlaced v1]` line.
    pub fn title(&self) -> String {
        format!("[{} {} v{}]", self.kind.as_str(), escape(&self.type_name), self.version)
    }

    fn write(&self, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{}", self.title());
        if let Some(aggregate) = &self.aggregate {
            let _ = writeln!(out, "aggregate {}", escape(aggregate));
        }
        if self.kind == BlockKind::Event {
            let _ = writeln!(out, "upcast {}", self.upcasts);
        }
        if let Some(key) = &self.key {
            let _ = writeln!(out, "key {}", escape(key));
        }
        if !self.indexed.is_empty() {
            let indexed: Vec<String> = self.indexed.iter().map(|i| escape(i)).collect();
            let _ = writeln!(out, "indexed {}", indexed.join(","));
        }
        if let Some(tag) = &self.tag {
            let _ = writeln!(out, "serde tag={}", escape(tag));
        }
        if self.deny_unknown_fields {
            let _ = writeln!(out, "serde deny_unknown_fields");
        }
        if self.superseded {
            let _ = writeln!(out, "superseded");
        }
        if self.retired {
            let _ = writeln!(out, "retired");
        }
        for field in self.fields.values() {
            let _ = write!(out, "field {} {} {}", escape(&field.path), field.ty, field.presence.as_str());
            if field.may_be_omitted {
                out.push_str(" omitted-when-empty");
            }
            if !field.aliases.is_empty() {
                let aliases: Vec<String> = field.aliases.iter().map(|a| escape(a)).collect();
                let _ = write!(out, " alias={}", aliases.join("|"));
            }
            for limit in &field.limits {
                let _ = write!(out, " {limit}");
            }
            out.push('\n');
        }
    }

    fn parse_header(header: &str) -> Result<Block, String> {
        let bad = || format!("`[{header}]` is not a block title like `[event Order.OrderPlaced v1]`");
        let mut words = header.split(' ');
        let (Some(kind), Some(name), Some(version), None) = (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(bad());
        };
        let kind = BlockKind::parse(kind).ok_or_else(bad)?;
        let version = version.strip_prefix('v').and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        Ok(Block {
            kind,
            type_name: unescape(name),
            version,
            aggregate: None,
            upcasts: LockUpcasts::None,
            tag: None,
            deny_unknown_fields: false,
            key: None,
            indexed: Vec::new(),
            retired: false,
            superseded: false,
            fields: BTreeMap::new(),
        })
    }

    fn parse_line(&mut self, line: &str) -> Result<(), String> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "aggregate" => self.aggregate = Some(unescape(rest)),
            "key" => self.key = Some(unescape(rest)),
            "indexed" => self.indexed = rest.split(',').map(unescape).collect(),
            "superseded" => self.superseded = true,
            "retired" => self.retired = true,
            "serde" if rest == "deny_unknown_fields" => self.deny_unknown_fields = true,
            "serde" if rest.starts_with("tag=") => self.tag = Some(unescape(&rest["tag=".len()..])),
            "upcast" => {
                self.upcasts = match rest {
                    "none" => LockUpcasts::None,
                    "all" => LockUpcasts::All,
                    _ => {
                        let steps = rest.strip_prefix("steps ").ok_or_else(|| format!("unknown upcast `{rest}`"))?;
                        let steps: Result<Vec<u32>, _> = steps.split(',').map(str::parse).collect();
                        LockUpcasts::Steps(steps.map_err(|_| format!("unknown upcast `{rest}`"))?)
                    }
                }
            }
            "field" => {
                let field = parse_field(rest)?;
                self.fields.insert(field.path.clone(), field);
            }
            _ => return Err(format!("unknown line `{line}`")),
        }
        Ok(())
    }
}

fn parse_field(rest: &str) -> Result<FieldLine, String> {
    let mut words = rest.split(' ');
    let (Some(path), Some(ty), Some(presence)) = (words.next(), words.next(), words.next()) else {
        return Err(format!("`field {rest}` is not `field <path> <type> <presence>`"));
    };
    let ty = Ty::parse(ty).ok_or_else(|| format!("unknown type `{ty}`"))?;
    let presence = match presence {
        "required" => Presence::Required,
        "defaulted" => Presence::Defaulted,
        "skipped" => Presence::Skipped,
        other => return Err(format!("unknown presence `{other}`: required, defaulted or skipped")),
    };
    let mut field = FieldLine {
        path: unescape(path),
        ty,
        presence,
        may_be_omitted: false,
        aliases: Vec::new(),
        limits: Vec::new(),
    };
    for word in words {
        if word == "omitted-when-empty" {
            field.may_be_omitted = true;
        } else if let Some(aliases) = word.strip_prefix("alias=") {
            field.aliases = aliases.split('|').map(unescape).collect();
        } else if LIMITS.iter().any(|l| word.strip_prefix(l).is_some_and(|v| v.starts_with('='))) {
            field.limits.push(word.to_owned());
        } else {
            return Err(format!("unknown word `{word}` in `field {rest}`"));
        }
    }
    Ok(field)
}

/// The `#[field(..)]` limits a field line may carry, in the order they are written.
const LIMITS: [&str; 5] = ["min", "max", "length", "min_length", "max_length"];

/// Adds the lines of `fields` under `prefix`, and of the value objects they hold.
/// `seen` holds the value objects on the way down: a value object inside itself (through
/// a list or an option) is written once, as `object`.
fn collect_fields(
    model: &Model,
    fields: &[FieldDescriptor],
    prefix: &str,
    seen: &mut Vec<&'static str>,
    out: &mut BTreeMap<String, FieldLine>,
) {
    for f in fields {
        // `#[serde(skip)]`: neither written nor read, no part of what is stored.
        if f.presence() == Presence::Skipped && f.may_be_omitted() {
            continue;
        }
        let shape = f.shape();
        let object = nested_of(&shape).and_then(|name| model.element(name).map(|el| (name, el)));
        if f.flatten() {
            if let Some((name, el)) = object.filter(|(name, _)| !seen.contains(name)) {
                seen.push(name);
                collect_fields(model, el.fields(), prefix, seen, out);
                seen.pop();
                continue;
            }
        }
        let path = format!("{prefix}{}", f.stored());
        let o = f.options();
        let limits = [
            o.min().map(|l| format!("min={l}")),
            o.max().map(|l| format!("max={l}")),
            o.length().map(|l| format!("length={l}")),
            o.min_length().map(|l| format!("min_length={l}")),
            o.max_length().map(|l| format!("max_length={l}")),
        ];
        out.insert(
            path.clone(),
            FieldLine {
                path: path.clone(),
                ty: Ty::of(&shape),
                presence: f.presence(),
                may_be_omitted: f.may_be_omitted(),
                aliases: f.aliases().iter().map(|a| (*a).to_owned()).collect(),
                limits: limits.into_iter().flatten().collect(),
            },
        );
        if let Some((name, el)) = object.filter(|(name, _)| !seen.contains(name)) {
            seen.push(name);
            let nested = format!("{path}{}.", list_marks(&shape));
            collect_fields(model, el.fields(), &nested, seen, out);
            seen.pop();
        }
    }
}

/// The value object (or the entity) a shape holds, through options and lists, whose
/// fields are written after the field's.
fn nested_of(shape: &FieldShape) -> Option<&'static str> {
    match shape {
        FieldShape::ValueObject { name } => Some(name),
        FieldShape::HasMany { entity } | FieldShape::HasOne { entity } => Some(entity),
        FieldShape::Optional { of } | FieldShape::List { of } => nested_of(of),
        _ => None,
    }
}

/// `[]` for each list between a field and the value object (or entities) it holds.
fn list_marks(shape: &FieldShape) -> String {
    match shape {
        FieldShape::HasMany { .. } => "[]".to_owned(),
        FieldShape::List { of } => format!("[]{}", list_marks(of)),
        FieldShape::Optional { of } => list_marks(of),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_that_does_not_read_says_where() {
        let text = "protean-lock 1\n\n[event Shop.Placed v1]\nfield total int64 sometimes\n";
        let e = Lock::parse(text).unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.message.contains("unknown presence `sometimes`"), "{e}");
        assert_eq!(Lock::parse("[event A v1]\n").unwrap_err().line, 1);
        assert!(Lock::parse("protean-lock 1\nfield a int64 required\n").unwrap_err().message.contains("before any"));
    }
}
