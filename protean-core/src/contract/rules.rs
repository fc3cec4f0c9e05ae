//! What a change between the lock and the model does to what is stored: each change
//! classified by a rule, with a verdict in Avro's sense and an outcome.

use std::collections::{BTreeMap, BTreeSet};

pub use super::change::{Change, Outcome, Verdict};
use super::lock::{Block, BlockKind, FieldLine, Lock, LockUpcasts};
use super::ty::{compat, Compat, Ty};
use crate::registry::Presence;

/// Every difference between `old` (the lock) and `new` (the model's lock). `names` maps
/// stored type names to Rust names, for messages.
pub fn diff(old: &Lock, new: &Lock, names: &BTreeMap<String, String>) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut elements: BTreeSet<(BlockKind, &str)> = BTreeSet::new();
    for block in old.blocks.values().chain(new.blocks.values()) {
        elements.insert((block.kind, &block.type_name));
    }
    for (kind, type_name) in elements {
        let (was, now) = (old.current(kind, type_name).cloned(), new.current(kind, type_name).cloned());
        let name = names.get(type_name).cloned().unwrap_or_else(|| type_name.to_owned());
        let mut c = Changes { out: &mut changes, name: &name, kind, type_name };
        match (was, now) {
            (None, Some(now)) => c.add(
                None,
                "element-added",
                Verdict::Full,
                Outcome::Safe,
                format!("`{name}` is new ({} version {})", kind.as_str(), now.version),
            ),
            (Some(was), None) => c.removed(&was),
            (Some(was), Some(now)) => match kind {
                BlockKind::Projection => c.projection(&was, &now),
                BlockKind::Event => {
                    let older: Vec<u32> = old.versions(kind, type_name).map(|b| b.version).collect();
                    c.event(&was, &now, &older)
                }
                BlockKind::Command | BlockKind::Aggregate | BlockKind::ProcessManager => c.fields(&was, &now),
            },
            (None, None) => {}
        }
    }
    name_renames(old, new, &mut changes);
    changes
}

/// A message (event or command) removed, and one added with the same fields: most likely
/// the Rust type was renamed, which renames what it is stored as. The removal's message
/// says how to keep the stored name.
fn name_renames(old: &Lock, new: &Lock, changes: &mut [Change]) {
    let added: Vec<(BlockKind, String)> = changes
        .iter()
        .filter(|c| c.rule == "element-added" && c.kind.is_message())
        .map(|c| (c.kind, c.type_name.clone()))
        .collect();
    for change in changes.iter_mut().filter(|c| c.rule == "element-removed" && c.outcome == Outcome::Breaking) {
        let Some(was) = old.current(change.kind, &change.type_name) else { continue };
        let renamed = added.iter().find(|(kind, name)| {
            *kind == change.kind
                && new
                    .current(*kind, name)
                    .is_some_and(|now| now.fields == was.fields && now.aggregate == was.aggregate)
        });
        if let Some((kind, name)) = renamed {
            change.message = format!(
                "`{}` is no longer in the domain, and `{name}` is new with the same fields: if the Rust type was \
                 renamed, keep the name it is stored under with `#[{}(name = \"{}\")]`; otherwise {}",
                change.type_name,
                kind.as_str(),
                change.type_name,
                change.message.split_once(": ").map_or(change.message.as_str(), |(_, fix)| fix)
            );
        }
    }
}

/// Collects the changes of one element.
struct Changes<'a> {
    out: &'a mut Vec<Change>,
    name: &'a str,
    kind: BlockKind,
    type_name: &'a str,
}

impl Changes<'_> {
    fn add(&mut self, path: Option<&str>, rule: &'static str, verdict: Verdict, outcome: Outcome, message: String) {
        self.out.push(Change {
            element: self.name.to_owned(),
            kind: self.kind,
            type_name: self.type_name.to_owned(),
            path: path.map(str::to_owned),
            rule,
            verdict,
            outcome,
            message,
        });
    }

    /// The fix of a breaking change to a stored event or a command at version `v`.
    fn fix(&self, v: u32, keep: &str) -> String {
        match self.kind {
            BlockKind::Event => {
                format!("bump `#[event(version = {})]` and add an upcaster from {v}, or {keep}", v.saturating_add(1))
            }
            BlockKind::Aggregate => format!("records stored before the change no longer load: {keep}, or migrate them"),
            BlockKind::ProcessManager => {
                format!("flows stored before the change no longer load: {keep}, or let them end first")
            }
            _ => format!("callers and scheduled commands still send the old shape: {keep}"),
        }
    }

    fn removed(&mut self, was: &Block) {
        let name = self.name.to_owned();
        match self.kind {
            BlockKind::Projection | BlockKind::Aggregate | BlockKind::ProcessManager => self.add(
                None,
                "element-removed",
                Verdict::Full,
                Outcome::Safe,
                format!(
                    "the {} `{name}` is no longer in the domain (or is event-sourced now); what it stored is left as \
                     it is",
                    self.kind.as_str()
                ),
            ),
            _ if was.retired => {}
            BlockKind::Event => self.add(
                None,
                "element-removed",
                Verdict::None,
                Outcome::Breaking,
                format!(
                    "`{name}` is in the lock but no longer in the domain, and streams still hold it: keep the type, \
                     or mark it retired (`ops schema retire {}`) once no stream holds it",
                    was.type_name
                ),
            ),
            BlockKind::Command => self.add(
                None,
                "element-removed",
                Verdict::None,
                Outcome::Breaking,
                format!(
                    "the command `{name}` is in the lock but no longer in the domain: callers still send it and the \
                     schedule may hold it; keep it, or mark it retired (`ops schema retire {}`) once nothing sends it",
                    was.type_name
                ),
            ),
        }
    }

    fn projection(&mut self, was: &Block, now: &Block) {
        let name = self.name.to_owned();
        let mut what = Vec::new();
        if was.key != now.key {
            what.push(format!(
                "key `{}` is now `{}`",
                was.key.as_deref().unwrap_or("-"),
                now.key.as_deref().unwrap_or("-")
            ));
        }
        if was.indexed != now.indexed {
            what.push(format!("indexed fields `{}` are now `{}`", was.indexed.join(","), now.indexed.join(",")));
        }
        let fields =
            |b: &Block| b.fields.values().map(|f| (f.path.clone(), f.ty.clone(), f.presence)).collect::<Vec<_>>();
        if fields(was) != fields(now) || was.tag != now.tag || was.deny_unknown_fields != now.deny_unknown_fields {
            what.push("its stored fields changed".to_owned());
        }
        if now.version < was.version {
            self.add(
                None,
                "version-lowered",
                Verdict::None,
                Outcome::Breaking,
                format!(
                    "`{name}` is at version {} but the lock holds version {}: versions only go up; set \
                     `#[projection(version = {})]`",
                    now.version,
                    was.version,
                    was.version + 1
                ),
            );
        } else if what.is_empty() {
        } else if now.version == was.version {
            self.add(
                None,
                "projection-changed-without-version",
                Verdict::None,
                Outcome::Breaking,
                format!(
                    "`{name}` changed ({}) but its version is still {}: bump `#[projection(version = {})]` so \
                     that it is rebuilt",
                    what.join("; "),
                    now.version,
                    now.version + 1
                ),
            );
        } else {
            self.add(
                None,
                "projection-rebuilt",
                Verdict::Full,
                Outcome::Safe,
                format!(
                    "`{name}` changed ({}) and is at version {}: it is rebuilt from the events when the domain \
                     next starts",
                    what.join("; "),
                    now.version
                ),
            );
        }
    }

    fn event(&mut self, was: &Block, now: &Block, older: &[u32]) {
        let name = self.name.to_owned();
        if now.version < was.version {
            return self.add(
                None,
                "version-lowered",
                Verdict::None,
                Outcome::Breaking,
                format!(
                    "`{name}` is at version {} but the lock holds version {}: streams hold version {1}, which this \
                     build refuses; set `#[event(version = {})]` again",
                    now.version, was.version, was.version
                ),
            );
        }
        let mut gaps = Vec::new();
        for &v in older.iter().filter(|v| **v < now.version) {
            if !covers(&now.upcasts, v, now.version) {
                gaps.push(v);
            }
        }
        for v in &gaps {
            let (v, n) = (*v, now.version);
            self.add(
                None,
                "upcaster-gap",
                Verdict::None,
                Outcome::Breaking,
                format!(
                    "`{name}` is at version {n}; the lock holds version {v}, and no upcaster goes from {v}: add \
                     `upcast(from = {v}, with = ..)` to `#[event(..)]` (or one `upcast = function` for every \
                     older version)"
                ),
            );
        }
        if now.version > was.version {
            if gaps.is_empty() {
                self.add(
                    None,
                    "version-bumped",
                    Verdict::Backward,
                    Outcome::Mitigated,
                    format!(
                        "`{name}` is now at version {} and its upcasters ({}) read version {} that streams hold",
                        now.version, now.upcasts, was.version
                    ),
                );
            }
            return;
        }
        self.fields(was, now);
    }

    /// The field rules, between two blocks of the same version.
    fn fields(&mut self, was: &Block, now: &Block) {
        let name = self.name.to_owned();
        let v = now.version;
        if was.tag != now.tag {
            self.add(
                None,
                "tag-changed",
                Verdict::Full,
                Outcome::Safe,
                format!(
                    "`{name}`'s serde tag changed from {} to {}: serde does not read a struct's tag back, so stored \
                     payloads still read",
                    was.tag.as_deref().map_or("none".to_owned(), |t| format!("`{t}`")),
                    now.tag.as_deref().map_or("none".to_owned(), |t| format!("`{t}`"))
                ),
            );
        }
        if !was.deny_unknown_fields && now.deny_unknown_fields {
            self.add(
                None,
                "unknown-fields-denied",
                Verdict::Backward,
                Outcome::Safe,
                format!(
                    "`{name}` now refuses unknown fields: a payload stored with a field since removed no longer \
                     reads; check no stored payload has one"
                ),
            );
        }
        let added: Vec<&FieldLine> = now
            .fields
            .values()
            .filter(|f| !was.fields.contains_key(&f.path))
            // Only the topmost new field of a new value object.
            .filter(|f| !parent_paths(&f.path).any(|p| now.fields.contains_key(p) && !was.fields.contains_key(p)))
            .collect();
        let removed: Vec<&FieldLine> = was
            .fields
            .values()
            .filter(|f| !now.fields.contains_key(&f.path))
            .filter(|f| !parent_paths(&f.path).any(|p| was.fields.contains_key(p) && !now.fields.contains_key(p)))
            .collect();
        let mut renamed_from: BTreeSet<String> = BTreeSet::new();
        for f in &added {
            let path = f.path.as_str();
            let field = format!("`{name}.{path}`");
            // A removed field of the same parent that this one reads under an alias.
            let old = removed
                .iter()
                .find(|r| same_parent(&r.path, path) && f.aliases.iter().any(|a| last_segment(&r.path) == a.as_str()));
            if let Some(old) = old {
                renamed_from.insert(old.path.clone());
                self.add(
                    Some(path),
                    "field-renamed-with-alias",
                    Verdict::Backward,
                    Outcome::Safe,
                    format!(
                        "{field} was stored as `{}` and reads it through `#[serde(alias = \"{}\")]`",
                        old.path,
                        last_segment(&old.path)
                    ),
                );
                self.compare(&name, v, old, f);
                continue;
            }
            if f.presence == Presence::Required {
                let renamed = removed.iter().find(|r| same_parent(&r.path, path) && r.ty == f.ty);
                let message = match renamed {
                    Some(r) => {
                        renamed_from.insert(r.path.clone());
                        format!(
                            "{field} was stored as `{}`: stored payloads have no `{}`. Add `#[serde(alias = \"{}\")]` \
                             to the field, or keep the old name with `#[serde(rename = \"{1}\")]`, or {}",
                            r.path,
                            last_segment(path),
                            last_segment(&r.path),
                            self.fix(v, "keep the old field")
                        )
                    }
                    None => format!(
                        "{field} is new and required: payloads stored before it have no `{}`. Give it a default \
                         (`#[field(default = ..)]`, or make it an `Option`), or {}",
                        last_segment(path),
                        self.fix(v, "leave it out")
                    ),
                };
                let rule = if renamed.is_some() { "field-renamed" } else { "field-added-required" };
                self.add(Some(path), rule, Verdict::Forward, Outcome::Breaking, message);
            } else {
                self.add(
                    Some(path),
                    "field-added-optional",
                    if now.deny_unknown_fields { Verdict::Backward } else { Verdict::Full },
                    Outcome::Safe,
                    format!("{field} is new and {}: payloads stored before it read without it", f.presence.as_str()),
                );
            }
        }
        for f in removed.iter().filter(|r| !renamed_from.contains(&r.path)) {
            let path = f.path.as_str();
            if now.deny_unknown_fields {
                self.add(
                    Some(path),
                    "field-removed",
                    Verdict::None,
                    Outcome::Breaking,
                    format!(
                        "`{name}.{path}` was removed, and `{name}` refuses unknown fields: payloads stored with \
                         `{}` no longer read. Drop `deny_unknown_fields`, or {}",
                        last_segment(path),
                        self.fix(v, "keep the field")
                    ),
                );
            } else {
                self.add(
                    Some(path),
                    "field-removed",
                    if f.presence == Presence::Required { Verdict::Backward } else { Verdict::Full },
                    Outcome::Safe,
                    format!(
                        "`{name}.{path}` was removed: stored payloads still read (the key is ignored); a consumer \
                         on older code that needs it does not"
                    ),
                );
            }
        }
        for (path, old) in &was.fields {
            if let Some(new) = now.fields.get(path) {
                self.compare(&name, v, old, new);
            }
        }
    }

    /// The rules of one field present on both sides.
    fn compare(&mut self, name: &str, v: u32, old: &FieldLine, new: &FieldLine) {
        let path = new.path.as_str();
        let field = format!("`{name}.{path}`");
        match compat(&old.ty, &new.ty) {
            Compat::Same => {}
            Compat::Widened => self.add(
                Some(path),
                "type-widened",
                Verdict::Backward,
                Outcome::Safe,
                format!(
                    "{field} changed from {} to {}: every stored value still reads",
                    old.ty.words(),
                    new.ty.words()
                ),
            ),
            Compat::TargetChanged => self.add(
                Some(path),
                "identifier-target-changed",
                Verdict::Full,
                Outcome::Safe,
                format!(
                    "{field} changed from {} to {}: both are stored as text, so stored values read, with another \
                     meaning",
                    old.ty.words(),
                    new.ty.words()
                ),
            ),
            Compat::ChoicesAdded => self.add(
                Some(path),
                "choice-added",
                Verdict::Backward,
                Outcome::Safe,
                format!(
                    "{field} has new choices ({}): stored values read; a consumer on older code refuses the new ones",
                    new_choices(&old.ty, &new.ty).join(", ")
                ),
            ),
            Compat::ChoicesRemoved => self.add(
                Some(path),
                "choice-removed",
                Verdict::Forward,
                Outcome::Breaking,
                format!(
                    "{field} lost choices ({}): stored values with them no longer read; {}",
                    new_choices(&new.ty, &old.ty).join(", "),
                    self.fix(v, "keep the choices (rename one back with `#[serde(rename = ..)]`)")
                ),
            ),
            Compat::Narrowed | Compat::Changed => {
                let narrowed = compat(&old.ty, &new.ty) == Compat::Narrowed;
                self.add(
                    Some(path),
                    if narrowed { "type-narrowed" } else { "type-changed" },
                    if narrowed { Verdict::Forward } else { Verdict::None },
                    Outcome::Breaking,
                    format!(
                        "{field} changed from {} to {}: {}",
                        old.ty.words(),
                        new.ty.words(),
                        self.fix(v, "keep the old field")
                    ),
                );
            }
        }
        match (old.presence, new.presence) {
            (Presence::Defaulted | Presence::Skipped, Presence::Required) => self.add(
                Some(path),
                "field-made-required",
                Verdict::Forward,
                Outcome::Breaking,
                format!(
                    "{field} was {} and is now required: payloads stored without it no longer read; {}",
                    old.presence.as_str(),
                    self.fix(v, "keep its default")
                ),
            ),
            (Presence::Required, Presence::Defaulted | Presence::Skipped) => self.add(
                Some(path),
                "field-made-optional",
                Verdict::Full,
                Outcome::Safe,
                format!("{field} was required and is now {}: stored payloads still read", new.presence.as_str()),
            ),
            _ => {}
        }
        if !old.may_be_omitted && new.may_be_omitted && new.presence == Presence::Required {
            self.add(
                Some(path),
                "required-field-may-be-omitted",
                Verdict::None,
                Outcome::Breaking,
                format!(
                    "{field} is required when read but now left out when written (`skip_serializing_if`): what is \
                     written without it does not read back. Give it a default (`#[serde(default)]`), or drop \
                     `skip_serializing_if`"
                ),
            );
        }
        if old.limits != new.limits {
            self.add(
                Some(path),
                "limits-changed",
                Verdict::Full,
                Outcome::Safe,
                format!(
                    "{field}'s limits changed from `{}` to `{}`: stored values are not checked again when read",
                    if old.limits.is_empty() { "none".to_owned() } else { old.limits.join(" ") },
                    if new.limits.is_empty() { "none".to_owned() } else { new.limits.join(" ") }
                ),
            );
        }
    }
}

/// Whether an event's upcasters bring version `from` to `to`.
pub(crate) fn covers(upcasts: &LockUpcasts, from: u32, to: u32) -> bool {
    match upcasts {
        LockUpcasts::None => from >= to,
        LockUpcasts::All => true,
        LockUpcasts::Steps(steps) => (from..to).all(|v| steps.contains(&v)),
    }
}

/// The choices of `b` not in `a`.
fn new_choices(a: &Ty, b: &Ty) -> Vec<String> {
    fn choices(t: &Ty) -> Vec<String> {
        match t {
            Ty::Choice(c) => c.clone(),
            Ty::List(of) | Ty::Optional(of) => choices(of),
            _ => Vec::new(),
        }
    }
    let a = choices(a);
    choices(b).into_iter().filter(|c| !a.contains(c)).collect()
}

/// `a.b[].c` → `a.b[]`, `a`: the paths of the fields holding this one.
fn parent_paths(path: &str) -> impl Iterator<Item = &str> {
    path.char_indices().filter(|(_, c)| *c == '.').map(move |(i, _)| path[..i].trim_end_matches("[]"))
}

/// The stored key of the field at `path` (`sku` of `lines[].sku`).
fn last_segment(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// Whether two paths are keys of the same object.
fn same_parent(a: &str, b: &str) -> bool {
    a.rsplit_once('.').map(|(p, _)| p) == b.rsplit_once('.').map(|(p, _)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_of_a_path() {
        assert_eq!(parent_paths("lines[].unit_price.cents").collect::<Vec<_>>(), ["lines", "lines[].unit_price"]);
        assert!(same_parent("total.cents", "total.amount"));
        assert!(!same_parent("total.cents", "cents"));
    }
}
