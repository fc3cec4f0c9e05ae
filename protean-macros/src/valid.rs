//! Every check of a parsed element that the macros make themselves: unknown, repeated
//! and conflicting keys, values that make no sense, the shape rules of identity,
//! invariants and choices, and the boundary rules visible in the item alone (a value
//! object holding entities). Each check records its error in [`Errors`] and goes on, so
//! that every mistake is reported at once, each on its own span.
//!
//! The rules that need the other types (what `part_of` names, what a `HasMany` holds)
//! are checked by the compiler, through the code `expand` generates.

use syn::Ident;

use crate::ast::{Body, Element, Field, Kind, Variant};
use crate::attr::{key_list, Args, FieldOptions, Invariants, FIELD_KEYS, VERSION_RANGE};
use crate::errors::Errors;
use crate::symbol::{PART_OF, POST, PRE};

/// Checks everything about `el`.
pub fn check(el: &Element, errors: &mut Errors) {
    check_args(el.kind, el.args, errors);
    if !el.generics.params.is_empty() || el.generics.where_clause.is_some() {
        errors.error_at(
            &el.generics,
            "domain elements cannot be generic: the registry and the stored type names need one concrete type",
        );
    }
    invariants(el.kind, &el.invariants, errors);
    serde_attributes(el, errors);
    match &el.body {
        Body::Struct(fields) => {
            for field in fields {
                self::field(el.kind, field, errors);
            }
            if el.kind == Kind::Projection {
                projection_key(el, fields, errors);
                indexed_names(el, fields, errors);
            } else if !el.kind.fed_by_events() {
                identity(el.kind, fields, errors);
            }
        }
        Body::Choices(variants) => choices(el, variants, errors),
    }
}

/// Checks the arguments of an element macro, also when its item is not one it expands.
pub fn check_args(kind: Kind, args: &Args, errors: &mut Errors) {
    macro_args(kind.macro_name(), kind.keys(), args, errors);
    if kind.keys().contains(&PART_OF) && !args.written(PART_OF) {
        let whose = match kind {
            Kind::Entity => "aggregate (or entity of it) this entity belongs to",
            Kind::Command => "aggregate this command changes",
            _ => "aggregate that raises this event",
        };
        errors.push(syn::Error::new(
            proc_macro2::Span::call_site(),
            format!("`#[{0}]` needs `part_of`: write `#[{0}(part_of = Order)]`, naming the {whose}", kind.macro_name()),
        ));
    }
}

/// Checks the arguments of `#[macro_name(..)]`, which takes the keys `accepted`: each key
/// known and given once, and the values in range.
pub fn macro_args(macro_name: &str, accepted: &[&str], args: &Args, errors: &mut Errors) {
    keys(&args.keys, accepted, errors, |key| {
        let hint = if accepted.is_empty() {
            format!("`#[{macro_name}]` takes no arguments")
        } else {
            format!("expected one of: {}", key_list(accepted))
        };
        format!("unknown key `{key}` for `#[{macro_name}]`: {hint}")
    });
    if let Some((0, span)) = args.version {
        errors.push(syn::Error::new(span, VERSION_RANGE));
    }
    if let Some(name) = args.name.as_ref().filter(|n| n.value().trim().is_empty()) {
        errors.error_at(name, "`name` cannot be empty");
    }
    upcast_steps(args, errors);
}

/// Each `upcast(from = N, ..)` reads a version below the event's and is given once, and
/// the steps are not mixed with `upcast = function`.
fn upcast_steps(args: &Args, errors: &mut Errors) {
    let version = args.version.map_or(1, |(v, _)| v);
    for (i, step) in args.upcast_steps.iter().enumerate() {
        if step.from == 0 || step.from >= version {
            errors.push(syn::Error::new(
                step.span,
                format!(
                    "`upcast(from = {0}, ..)` on an event at version {version}: a step brings a payload stored at \
                     version `from` to `from + 1`, so `from` is from 1 up to {1}{2}",
                    step.from,
                    version.saturating_sub(1),
                    if version == 1 { " (bump `version` first)" } else { "" }
                ),
            ));
        } else if args.upcast_steps[..i].iter().any(|s| s.from == step.from) {
            errors.push(syn::Error::new(
                step.span,
                format!("two upcaster steps from version {}: give each step once", step.from),
            ));
        }
    }
    if let (Some(path), Some(_)) = (&args.upcast, args.upcast_steps.first()) {
        errors.error_at(
            path,
            "`upcast = function` and `upcast(from = .., with = ..)` steps together: give one function for every \
             older version, or one step per version, not both",
        );
    }
}

/// Reports each key of `written` that is not `accepted` (with the message `unknown`
/// makes) and each key written a second time.
fn keys(written: &[Ident], accepted: &[&str], errors: &mut Errors, unknown: impl Fn(&Ident) -> String) {
    for (i, key) in written.iter().enumerate() {
        if !accepted.iter().any(|k| key == k) {
            errors.error_at(key, unknown(key));
        } else if written[..i].contains(key) {
            errors.error_at(key, format!("duplicate key `{key}`: give it once"));
        }
    }
}

/// Invariant keys known, `pre` only where state changes, each declared once, and none
/// on commands and events.
fn invariants(kind: Kind, invariants: &Invariants, errors: &mut Errors) {
    for key in invariants.keys.iter().filter(|k| *k != PRE && *k != POST) {
        errors.error_at(
            key,
            format!("unknown key `{key}` in `#[invariant(..)]`: expected `pre = method` or `post = method`"),
        );
    }
    for (i, invariant) in invariants.list.iter().enumerate() {
        if let (true, Kind::ValueObject, Some(key)) = (invariant.pre, kind, &invariant.key) {
            errors.error_at(key, "value objects are immutable, so they have no `pre` invariants: use `post`");
        }
        let method = &invariant.method;
        if invariants.list[..i].iter().any(|earlier| earlier.method == *method && earlier.pre == invariant.pre) {
            errors.error_at(method, format!("invariant `{method}` is declared twice"));
        }
    }
    let Some(first) = invariants.list.first() else { return };
    let message = match kind {
        Kind::Command | Kind::Event => {
            "invariants belong to aggregates, entities and value objects; commands and events are checked with `#[field(..)]` options"
        }
        Kind::Projection => {
            "a projection has no invariants: its rows are what its projectors make of events that already happened"
        }
        Kind::ProcessManager => {
            "a process manager has no invariants: its steps decide, from the events, which commands to send"
        }
        _ => return,
    };
    errors.error_at(&first.method, message);
}

/// A field's name, options, and (outside aggregates and entities) no entities held.
fn field(kind: Kind, f: &Field, errors: &mut Errors) {
    if f.ident.to_string().starts_with("__") {
        errors.error_at(&f.ident, "field names starting with `__` are reserved for protean");
    }
    match (kind, f.options.keys.first()) {
        (Kind::Projection, Some(key)) => errors.error_at(
            key,
            "a projection's rows are written by its projectors, not built and validated: drop `#[field(..)]`",
        ),
        (Kind::ProcessManager, Some(key)) => errors.error_at(
            key,
            "the state of a process manager is written by its steps, not built and validated: drop `#[field(..)]`",
        ),
        _ => field_options(&f.options, errors),
    }
    if !kind.has_identity() && f.shape.holds_entities() {
        let what = match kind {
            Kind::ValueObject => "a value object",
            Kind::Command => "a command",
            Kind::Projection => "a projection",
            Kind::ProcessManager => "a process manager",
            _ => "an event",
        };
        errors.error_at(
            &f.ty,
            format!(
                "{what} cannot hold entities: `HasMany`/`HasOne` belong in an aggregate or entity; \
                 carry values instead (a `#[value_object]`, or `Identifier<T>` of the entity)"
            ),
        );
    }
}

/// Field keys known and given once, and bounds that some value can meet.
fn field_options(options: &FieldOptions, errors: &mut Errors) {
    keys(&options.keys, FIELD_KEYS, errors, |key| {
        format!("unknown key `{key}` in `#[field(..)]`: expected one of {}", key_list(FIELD_KEYS))
    });
    if let (Some((min, span)), Some((max, _))) = (&options.min, &options.max) {
        if min.as_f64() > max.as_f64() {
            errors.push(syn::Error::new(*span, "`min` is greater than `max`: no value could be valid"));
        }
    }
    if let (Some((lo, span)), Some((hi, _))) = (options.min_length, options.max_length) {
        if lo > hi {
            errors.push(syn::Error::new(span, "`min_length` is greater than `max_length`: no value could be valid"));
        }
    }
    if let (Some((_, span)), true) = (options.length, options.min_length.is_some() || options.max_length.is_some()) {
        errors.push(syn::Error::new(span, "`length` fixes the length: drop `min_length`/`max_length` beside it"));
    }
}

/// Exactly one `#[key]` field in a projection.
fn projection_key(el: &Element, fields: &[Field], errors: &mut Errors) {
    let keys: Vec<&Field> = fields.iter().filter(|f| f.key.is_some()).collect();
    match keys.as_slice() {
        [] => errors.error_at(
            &el.ident,
            format!(
                "projection `{}` has no key: mark the field whose value keys its rows with `#[key]` \
                 (`#[key] pub customer_id: Identifier<Customer>`)",
                el.ident
            ),
        ),
        [_] => {}
        [first, rest @ ..] => {
            for f in rest {
                errors.push(syn::Error::new(
                    f.key.unwrap_or_else(proc_macro2::Span::call_site),
                    format!(
                        "two `#[key]` fields: `{}` already keys the rows, and a projection has exactly one key; \
                         drop this `#[key]`, and mark the fields that queries filter on with `#[index]`",
                        first.ident
                    ),
                ));
            }
        }
    }
}

/// The keys indexed fields are stored under: names stores can index (letters, digits
/// and `_`), which serde's `rename_all` or a field's `rename` may have changed.
fn indexed_names(el: &Element, fields: &[Field], errors: &mut Errors) {
    for f in fields.iter().filter(|f| f.index.is_some()) {
        let key = el.stored_name(f);
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            errors.error_at(
                &f.ident,
                format!(
                    "`{}` is stored under the key `{key}`, which stores cannot index: \
                     an indexed field's key is letters, digits and `_` (use `camelCase`, `PascalCase` or \
                     `SCREAMING_SNAKE_CASE`, or give this field its own `#[serde(rename = \"..\")]`)",
                    f.ident
                ),
            );
        }
    }
}

/// Exactly one identity field in an aggregate or entity, none elsewhere.
fn identity(kind: Kind, fields: &[Field], errors: &mut Errors) {
    let marked: Vec<&Field> = fields.iter().filter(|f| f.options.identifier.is_some()).collect();
    let marker_span = |f: &Field| f.options.identifier.unwrap_or_else(proc_macro2::Span::call_site);
    if !kind.has_identity() {
        let message = match kind {
            Kind::ValueObject => "a value object has no identity: it is compared by value. Drop `identifier`, or make this type an `#[entity(part_of = ..)]`",
            _ => "commands and events have no identity field: name the aggregate they concern with a plain `Identifier<T>` field",
        };
        for f in marked {
            errors.push(syn::Error::new(marker_span(f), message));
        }
        return;
    }
    let named_id = fields.iter().find(|f| f.ident == "id");
    match (marked.as_slice(), named_id) {
        ([only], Some(id)) if only.ident != id.ident => errors.error_at(
            &id.ident,
            format!(
                "two identity fields: `{}` is marked `#[field(identifier)]` and a field named `id` is the identity by convention; \
                 rename this field or drop the marker",
                only.ident
            ),
        ),
        ([first, rest @ ..], _) => {
            for f in rest {
                errors.push(syn::Error::new(
                    marker_span(f),
                    format!(
                        "two identity fields: `{}` is already the identity; an aggregate or entity has exactly one. \
                         Refer to other things with a plain `Identifier<T>` field",
                        first.ident
                    ),
                ));
            }
        }
        _ => {}
    }
}

/// An enum value object: unit variants without discriminants, at least one, no invariants.
fn choices(el: &Element, variants: &[Variant], errors: &mut Errors) {
    if !el.invariants.list.is_empty() {
        errors.error_at(&el.ident, "an enum of choices has no invariants: every choice is valid");
    }
    for v in variants {
        if !matches!(v.fields, syn::Fields::Unit) {
            errors.error_at(
                &v.fields,
                "an enum value object is a set of choices, so its variants carry no data: use a struct `#[value_object]` per case",
            );
        }
        if let Some(d) = &v.discriminant {
            errors.error_at(d, "choices are stored by name: drop the discriminant");
        }
    }
    if variants.is_empty() {
        errors.error_at(&el.ident, "an enum of choices needs at least one variant");
    }
}

/// The user's `#[serde(..)]` attributes that cannot work on the element, each with why:
/// those that make serde read other names than it writes (protean reads back what it
/// stored), those that store an event or a projection as something else than a JSON
/// object of its fields (protean reads their fields by name: a flow's correlation field,
/// a projection's indexed fields), `remote` (the element itself must be serde's), and on
/// a set of choices those that store a choice as something else than its name.
fn serde_attributes(el: &Element, errors: &mut Errors) {
    let name = &el.ident;
    if let Some(remote) = el.serde.given(&["remote"]) {
        errors.error_at(
            remote,
            format!(
                "`#[serde(remote = ..)]` makes serde's traits for another type, and protean stores `{name}` itself \
                 through them: derive them for `{name}` (drop `remote`)"
            ),
        );
    }
    let fields_read = match el.kind {
        Kind::Event => Some("a process manager routes an event by one of its fields"),
        Kind::Projection => Some("queries filter and order a projection's rows on its indexed fields"),
        _ => None,
    };
    if let (Some(why), Some(key)) = (fields_read, el.serde.given(&["transparent", "from", "try_from", "into"])) {
        errors.error_at(
            key,
            format!(
                "`#[serde({key})]` stores `{name}` as something else than a JSON object of its fields, \
                 and protean reads those fields in the stored JSON ({why}): drop `{key}`"
            ),
        );
    }
    if let (Body::Choices(_), Some(key)) = (&el.body, el.serde.given(&["tag", "content", "untagged"])) {
        errors.error_at(
            key,
            format!(
                "a choice is stored as its name (queries compare it, `Display` and `FromStr` spell it): \
                 drop `#[serde({key})]`; `rename_all` and a variant's `rename` change the name"
            ),
        );
    }
    let differs = "makes serde read other names than it writes, and protean reads back what it stored: \
                   give one name for both (`rename = \"..\"`)";
    if el.serde.rename_all.differs() {
        let span = el.serde.rename_all.span.unwrap_or_else(proc_macro2::Span::call_site);
        errors.push(syn::Error::new(
            span,
            format!("this `rename_all` {}", differs.replace("rename = ", "rename_all = ")),
        ));
    }
    let renames = el.fields().iter().map(|f| &f.rename).chain(match &el.body {
        Body::Choices(variants) => variants.iter().map(|v| &v.rename).collect::<Vec<_>>(),
        Body::Struct(_) => Vec::new(),
    });
    for rename in renames.filter(|r| r.differs()) {
        let span = rename.span.unwrap_or_else(proc_macro2::Span::call_site);
        errors.push(syn::Error::new(span, format!("this `rename` {differs}")));
    }
}
