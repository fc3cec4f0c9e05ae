//! Parsing of the macros' own arguments and of `#[field(..)]` / `#[invariant(..)]`.
//!
//! Parsing only: every key is recorded as written (in [`Args::keys`],
//! [`FieldOptions::keys`], [`Invariants::keys`]) and the first value of each known key
//! is kept, so that `valid` can report unknown keys, repeated keys and values that
//! make no sense. The errors reported here are the ones of syntax: a value that does
//! not parse as what its key takes.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitInt, LitStr, Path};

use crate::errors::Errors;
use crate::symbol::*;

/// The arguments of a macro itself: `#[event(part_of = Order, version = 2)]`,
/// `#[handler(part_of = Order)]`, `#[projector(projection = View, inline)]`.
#[derive(Default)]
pub struct Args {
    /// Every key as written, in order, including unknown and repeated ones.
    pub keys: Vec<Ident>,
    /// `part_of = Parent`.
    pub part_of: Option<Path>,
    /// `version = N`, and where `N` is written.
    pub version: Option<(u32, Span)>,
    /// `name = "Stable.Name"`.
    pub name: Option<LitStr>,
    /// `upcast = function`: one function for every older version.
    pub upcast: Option<Path>,
    /// `upcast(from = N, with = function)`, each given: one step from version `N` to `N + 1`.
    pub upcast_steps: Vec<UpcastStep>,
    /// `event_sourced`.
    pub event_sourced: bool,
    /// `returns = T` on `#[command]`: what its handler hands back.
    pub returns: Option<syn::Type>,
    /// `projection = View` on `#[projector]`.
    pub projection: Option<Path>,
    /// `inline` on `#[projector]`.
    pub inline: bool,
    /// `correlate = field` on `#[process_manager]`.
    pub correlate: Option<Ident>,
}

/// One `upcast(from = N, with = function)` of `#[event]`.
pub struct UpcastStep {
    /// The version it reads.
    pub from: u32,
    /// The function, `fn(serde_json::Value) -> Result<serde_json::Value, String>`.
    pub with: Path,
    /// Where `from`'s value is written.
    pub span: Span,
}

impl Args {
    /// Whether `key` was written, even if its value did not parse.
    pub fn written(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k == key)
    }
}

/// Records `value` in `slot` unless an earlier occurrence of the key filled it.
fn first<T>(slot: &mut Option<T>, value: T) {
    slot.get_or_insert(value);
}

/// Skips the value of a key the parser does not take (`= expr` or `(..)`), so that the
/// keys after it are still read.
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        let _: Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| skip_value(&inner))?;
    }
    Ok(())
}

/// Checks that a flag key (`event_sourced`, `inline`) has no value.
fn flag(meta: &ParseNestedMeta, message: &str) -> syn::Result<()> {
    if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
        return Err(meta.error(message));
    }
    Ok(())
}

/// The message of an `upcast(..)` that is not `upcast(from = N, with = function)`.
const UPCAST_STEP: &str = "an upcaster step is written `upcast(from = 1, with = order_placed_v1_to_v2)`: \
                           the version it reads and a function `fn(serde_json::Value) -> Result<serde_json::Value, String>`";

/// `upcast(from = N, with = function)`.
fn upcast_step(meta: &ParseNestedMeta) -> syn::Result<UpcastStep> {
    let (mut from, mut with) = (None, None);
    meta.parse_nested_meta(|inner| {
        if inner.path.is_ident("from") {
            let lit: LitInt = inner.value()?.parse()?;
            let version = lit.base10_parse::<u32>().map_err(|_| syn::Error::new(lit.span(), VERSION_RANGE))?;
            from = Some((version, lit.span()));
        } else if inner.path.is_ident("with") {
            with = Some(inner.value()?.parse::<Path>()?);
        } else {
            return Err(inner.error(UPCAST_STEP));
        }
        Ok(())
    })?;
    match (from, with) {
        (Some((from, span)), Some(with)) => Ok(UpcastStep { from, with, span }),
        _ => Err(meta.error(UPCAST_STEP)),
    }
}

/// The message of a `version` that is not a whole number from 1 up.
pub const VERSION_RANGE: &str = "`version` is a whole number from 1 up";

/// Parses the arguments of `#[macro_name(..)]`. Keys outside `accepted` are recorded
/// and their values skipped: `valid` reports them.
pub fn parse_args(tokens: TokenStream, macro_name: &str, accepted: &[&str], errors: &mut Errors) -> Args {
    let mut args = Args::default();
    let parser =
        syn::meta::parser(|meta| {
            let Some(key) = meta.path.get_ident().cloned() else {
                return Err(meta.error(format!("expected a key of `#[{macro_name}(..)]`")));
            };
            // Steps of an upcaster are one key written many times: recorded once.
            let another_step = key == UPCAST && meta.input.peek(syn::token::Paren) && args.written(UPCAST);
            if !another_step {
                args.keys.push(key.clone());
            }
            if !accepted.iter().any(|k| key == k) {
                return skip_value(&meta);
            }
            if key == PART_OF {
                let path: Path = meta.value()?.parse().map_err(|e| {
                    syn::Error::new(e.span(), "`part_of` names a type, without quotes: `part_of = Order`")
                })?;
                first(&mut args.part_of, path);
            } else if key == VERSION {
                let lit: LitInt = meta.value()?.parse()?;
                match lit.base10_parse::<u32>() {
                    Ok(v) => first(&mut args.version, (v, lit.span())),
                    Err(_) => errors.error_at(&lit, VERSION_RANGE),
                }
            } else if key == EVENT_SOURCED {
                flag(&meta, "`event_sourced` takes no value: `#[aggregate(event_sourced)]`")?;
                args.event_sourced = true;
            } else if key == INLINE {
                flag(&meta, "`inline` takes no value: `#[projector(projection = View, inline)]`")?;
                args.inline = true;
            } else if key == PROJECTION {
                let path: Path = meta.value()?.parse().map_err(|e| {
                    syn::Error::new(e.span(), "`projection` names a type, without quotes: `projection = CustomerView`")
                })?;
                first(&mut args.projection, path);
            } else if key == CORRELATE {
                let field: Ident = meta.value()?.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "`correlate` names the field of the events that holds the flow's key: `correlate = order_id`",
                    )
                })?;
                first(&mut args.correlate, field);
            } else if key == UPCAST && meta.input.peek(syn::token::Paren) {
                args.upcast_steps.push(upcast_step(&meta)?);
            } else if key == UPCAST {
                let path: Path = meta.value()?.parse().map_err(|e| {
                    syn::Error::new(e.span(), "`upcast` names a function: `upcast = upcast_order_placed`")
                })?;
                first(&mut args.upcast, path);
            } else if key == RETURNS {
                let ty: syn::Type = meta.value()?.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "`returns` names the type the handler hands back: `returns = Identifier<User>`",
                    )
                })?;
                first(&mut args.returns, ty);
            } else if key == NAME {
                let lit: LitStr = meta.value()?.parse()?;
                first(&mut args.name, lit);
            }
            Ok(())
        });
    let parsed = parser.parse2(tokens);
    errors.ok(parsed);
    args
}

/// A `min`/`max` bound as written.
#[derive(Clone)]
pub enum LimitLit {
    /// A whole number, possibly negative.
    Int(i128),
    /// A number with a fractional part.
    Float(f64),
}

impl LimitLit {
    /// The bound as a float, to compare a `min` with a `max`.
    pub fn as_f64(&self) -> f64 {
        match self {
            LimitLit::Int(v) => *v as f64,
            LimitLit::Float(v) => *v,
        }
    }
}

/// The options of one field, from all its `#[field(..)]` attributes.
#[derive(Default)]
pub struct FieldOptions {
    /// Every key as written, in order, including unknown and repeated ones.
    pub keys: Vec<Ident>,
    /// `identifier`, at the key.
    pub identifier: Option<Span>,
    /// `min = N`, at `N`.
    pub min: Option<(LimitLit, Span)>,
    /// `max = N`, at `N`.
    pub max: Option<(LimitLit, Span)>,
    /// `min_length = N`, at `N`.
    pub min_length: Option<(usize, Span)>,
    /// `max_length = N`, at `N`.
    pub max_length: Option<(usize, Span)>,
    /// `length = N`, at `N`.
    pub length: Option<(usize, Span)>,
    /// `default = expr`.
    pub default: Option<Expr>,
}

/// A `min`/`max` bound: a number literal, possibly negated.
fn parse_limit(expr: &Expr) -> syn::Result<LimitLit> {
    let (negative, lit) = match expr {
        Expr::Unary(syn::ExprUnary { op: syn::UnOp::Neg(_), expr, .. }) => (true, &**expr),
        other => (false, other),
    };
    let sign = if negative { -1.0 } else { 1.0 };
    match lit {
        Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => {
            let v: i128 = i.base10_parse()?;
            Ok(LimitLit::Int(if negative { -v } else { v }))
        }
        Expr::Lit(syn::ExprLit { lit: syn::Lit::Float(f), .. }) => Ok(LimitLit::Float(sign * f.base10_parse::<f64>()?)),
        _ => Err(syn::Error::new(expr.span(), "expected a number literal, such as `0`, `-5` or `0.5`")),
    }
}

/// The keys `#[field(..)]` takes.
pub const FIELD_KEYS: &[&str] = &[IDENTIFIER, MIN, MAX, MIN_LENGTH, MAX_LENGTH, LENGTH, DEFAULT];

/// Parses every `#[field(..)]` on a field (several are merged). Unknown keys are
/// recorded and their values skipped: `valid` reports them.
pub fn parse_field_options(attrs: &[syn::Attribute], errors: &mut Errors) -> FieldOptions {
    let mut options = FieldOptions::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident(FIELD)) {
        let result = attr.parse_nested_meta(|meta| {
            let Some(key) = meta.path.get_ident().cloned() else {
                return Err(meta.error(format!("expected one of {}", key_list(FIELD_KEYS))));
            };
            options.keys.push(key.clone());
            let name = key.to_string();
            match name.as_str() {
                IDENTIFIER => {
                    if meta.input.peek(syn::Token![=]) {
                        let _: Expr = meta.value()?.parse()?;
                        errors.error_at(&key, "`identifier` takes no value: write `#[field(identifier)]`");
                    }
                    first(&mut options.identifier, key.span());
                }
                MIN | MAX => {
                    let expr: Expr = meta.value()?.parse()?;
                    match parse_limit(&expr) {
                        Ok(limit) if name == MIN => first(&mut options.min, (limit, expr.span())),
                        Ok(limit) => first(&mut options.max, (limit, expr.span())),
                        Err(e) => errors.push(e),
                    }
                }
                MIN_LENGTH | MAX_LENGTH | LENGTH => {
                    let lit: LitInt = meta.value()?.parse()?;
                    match lit.base10_parse::<usize>() {
                        Ok(v) if name == MIN_LENGTH => first(&mut options.min_length, (v, lit.span())),
                        Ok(v) if name == MAX_LENGTH => first(&mut options.max_length, (v, lit.span())),
                        Ok(v) => first(&mut options.length, (v, lit.span())),
                        Err(_) => errors.error_at(&lit, "expected a length: a whole number from 0 up"),
                    }
                }
                DEFAULT => {
                    let expr: Expr = meta.value()?.parse()?;
                    first(&mut options.default, expr);
                }
                _ => skip_value(&meta)?,
            }
            Ok(())
        });
        errors.ok(result);
    }
    options
}

/// `keys` quoted and listed: "`a`, `b`".
pub fn key_list(keys: &[&str]) -> String {
    keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}

/// One declared invariant: the method to call and when.
pub struct Invariant {
    /// The method, `fn(&self) -> InvariantResult`.
    pub method: Ident,
    /// Checked before a change (`pre = ..`) rather than after it.
    pub pre: bool,
    /// The `pre`/`post` key, when written (`#[invariant(method)]` has none).
    pub key: Option<Ident>,
}

/// Every `#[invariant(..)]` on the item.
#[derive(Default)]
pub struct Invariants {
    /// Every key as written, in order: `pre`, `post`, or unknown.
    pub keys: Vec<Ident>,
    /// The invariants, in order.
    pub list: Vec<Invariant>,
}

/// Parses every `#[invariant(..)]` on the item. Unknown keys are recorded and their
/// values skipped: `valid` reports them.
pub fn parse_invariants(attrs: &[syn::Attribute], errors: &mut Errors) -> Invariants {
    let mut invariants = Invariants::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident(INVARIANT)) {
        let result = attr.parse_nested_meta(|meta| {
            let Some(key) = meta.path.get_ident().cloned() else {
                return Err(meta.error("expected `pre = method` or `post = method`"));
            };
            let pre = if key == PRE {
                true
            } else if key == POST {
                false
            } else if meta.input.is_empty() || meta.input.peek(syn::Token![,]) {
                // `#[invariant(method)]` is a post-invariant.
                invariants.list.push(Invariant { method: key, pre: false, key: None });
                return Ok(());
            } else {
                invariants.keys.push(key);
                return skip_value(&meta);
            };
            invariants.keys.push(key.clone());
            let method: Ident = meta.value()?.parse()?;
            invariants.list.push(Invariant { method, pre, key: Some(key) });
            Ok(())
        });
        errors.ok(result);
    }
    invariants
}

/// Where a marker attribute without arguments (`#[key]`, `#[index]`) is on a field, if
/// it is there. A marker given arguments is an error; it still counts.
pub fn parse_marker(attrs: &[syn::Attribute], name: &str, errors: &mut Errors) -> Option<Span> {
    let mut found = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident(name)) {
        if !matches!(attr.meta, syn::Meta::Path(_)) {
            errors.error_at(&attr.meta, format!("`#[{name}]` takes no arguments: write `#[{name}]`"));
        }
        if found.is_some() {
            errors.error_at(attr, format!("`#[{name}]` is written twice on this field: give it once"));
        }
        found.get_or_insert(attr.path().span());
    }
    found
}

/// The field named by a method's `#[correlate(field)]`, if it has one.
pub fn parse_correlate(attrs: &[syn::Attribute], errors: &mut Errors) -> Option<Ident> {
    let mut found: Option<Ident> = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident(CORRELATE)) {
        let field = attr.parse_args::<Ident>().map_err(|_| {
            syn::Error::new_spanned(
                &attr.meta,
                "`#[correlate(..)]` names one field of the event, holding the flow's key: `#[correlate(order_id)]`",
            )
        });
        match (errors.ok(field), &found) {
            (Some(_), Some(_)) => {
                errors.error_at(attr, "`#[correlate(..)]` is written twice on this method: give it once")
            }
            (Some(field), None) => found = Some(field),
            (None, _) => {}
        }
    }
    found
}
