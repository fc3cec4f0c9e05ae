//! Parsing of the macros' own arguments and of `#[field(..)]` / `#[invariant(..)]`.
//! Unknown and duplicated keys are errors on the key's span; parsing goes on after
//! an error so that every mistake is reported at once.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitInt, LitStr, Path};

use crate::errors::Errors;
use crate::symbol::*;

/// The arguments of the element macro itself: `#[event(part_of = Order, version = 2)]`.
#[derive(Default)]
pub struct ElementArgs {
    pub part_of: Option<Path>,
    /// `part_of` was written, even if its value did not parse.
    pub part_of_written: bool,
    pub version: Option<(u32, Span)>,
    pub name: Option<LitStr>,
    pub upcast: Option<Path>,
    pub event_sourced: bool,
    /// `returns = T` on `#[command]`: what its handler hands back.
    pub returns: Option<syn::Type>,
}

/// Which keys an element macro accepts.
pub struct Accepts {
    pub part_of: bool,
    pub version: bool,
    pub name: bool,
    pub upcast: bool,
    pub event_sourced: bool,
    pub returns: bool,
}

fn duplicate(errors: &mut Errors, key: &Ident) {
    errors.error_at(key, format!("duplicate key `{key}`: give it once"));
}

pub fn parse_element_args(
    tokens: TokenStream,
    macro_name: &str,
    accepts: &Accepts,
    errors: &mut Errors,
) -> ElementArgs {
    let mut args = ElementArgs::default();
    let mut allowed: Vec<&str> = Vec::new();
    if accepts.part_of {
        allowed.push(PART_OF);
    }
    if accepts.version {
        allowed.push(VERSION);
    }
    if accepts.name {
        allowed.push(NAME);
    }
    if accepts.upcast {
        allowed.push(UPCAST);
    }
    if accepts.event_sourced {
        allowed.push(EVENT_SOURCED);
    }
    if accepts.returns {
        allowed.push(RETURNS);
    }
    let parser = syn::meta::parser(|meta| {
        let Some(key) = meta.path.get_ident().cloned() else {
            return Err(meta.error(format!("expected a key of `#[{macro_name}(..)]`")));
        };
        let known = allowed.contains(&key.to_string().as_str());
        if !known {
            let hint = if allowed.is_empty() {
                format!("`#[{macro_name}]` takes no arguments")
            } else {
                format!("expected one of: {}", allowed.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))
            };
            errors.error_at(&key, format!("unknown key `{key}` for `#[{macro_name}]`: {hint}"));
            // Consume the value so the next key is still read.
            if meta.input.peek(syn::Token![=]) {
                let _: Expr = meta.value()?.parse()?;
            } else if meta.input.peek(syn::token::Paren) {
                meta.parse_nested_meta(|inner| {
                    if inner.input.peek(syn::Token![=]) {
                        let _: Expr = inner.value()?.parse()?;
                    }
                    Ok(())
                })?;
            }
            return Ok(());
        }
        if key == PART_OF {
            args.part_of_written = true;
            let path: Path = meta
                .value()?
                .parse()
                .map_err(|e| syn::Error::new(e.span(), "`part_of` names a type, without quotes: `part_of = Order`"))?;
            if args.part_of.is_some() {
                duplicate(errors, &key);
            } else {
                args.part_of = Some(path);
            }
        } else if key == VERSION {
            let lit: LitInt = meta.value()?.parse()?;
            match lit.base10_parse::<u32>() {
                Ok(0) | Err(_) => errors.error_at(&lit, "`version` is a whole number from 1 up"),
                Ok(v) if args.version.is_none() => args.version = Some((v, lit.span())),
                Ok(_) => duplicate(errors, &key),
            }
        } else if key == EVENT_SOURCED {
            if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                return Err(meta.error("`event_sourced` takes no value: `#[aggregate(event_sourced)]`"));
            }
            if args.event_sourced {
                duplicate(errors, &key);
            }
            args.event_sourced = true;
        } else if key == UPCAST {
            let path: Path = meta
                .value()?
                .parse()
                .map_err(|e| syn::Error::new(e.span(), "`upcast` names a function: `upcast = upcast_order_placed`"))?;
            if args.upcast.is_some() {
                duplicate(errors, &key);
            } else {
                args.upcast = Some(path);
            }
        } else if key == RETURNS {
            let ty: syn::Type = meta.value()?.parse().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "`returns` names the type the handler hands back: `returns = Identifier<User>`",
                )
            })?;
            if args.returns.is_some() {
                duplicate(errors, &key);
            } else {
                args.returns = Some(ty);
            }
        } else if key == NAME {
            let lit: LitStr = meta.value()?.parse()?;
            if lit.value().trim().is_empty() {
                errors.error_at(&lit, "`name` cannot be empty");
            } else if args.name.is_some() {
                duplicate(errors, &key);
            } else {
                args.name = Some(lit);
            }
        }
        Ok(())
    });
    if let Err(e) = parser.parse2(tokens) {
        errors.push(e);
    }
    args
}

/// A `min`/`max` bound as written.
#[derive(Clone)]
pub enum LimitLit {
    Int(i128),
    Float(f64),
}

/// The options of one field.
#[derive(Default)]
pub struct FieldOptions {
    pub identifier: Option<Span>,
    pub min: Option<(LimitLit, Span)>,
    pub max: Option<(LimitLit, Span)>,
    pub min_length: Option<(usize, Span)>,
    pub max_length: Option<(usize, Span)>,
    pub length: Option<(usize, Span)>,
    pub default: Option<Expr>,
}

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

const FIELD_KEYS: &str = "`identifier`, `min`, `max`, `min_length`, `max_length`, `length`, `default`";

/// Parses every `#[field(..)]` on a field (several are merged; a key given twice is an error).
pub fn parse_field_options(attrs: &[syn::Attribute], errors: &mut Errors) -> FieldOptions {
    let mut options = FieldOptions::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident(FIELD)) {
        let result = attr.parse_nested_meta(|meta| {
            let Some(key) = meta.path.get_ident().cloned() else {
                return Err(meta.error(format!("expected one of {FIELD_KEYS}")));
            };
            let name = key.to_string();
            macro_rules! once {
                ($slot:expr, $value:expr) => {{
                    let value = $value;
                    if $slot.is_some() {
                        duplicate(errors, &key);
                    } else {
                        $slot = Some(value);
                    }
                }};
            }
            match name.as_str() {
                IDENTIFIER => {
                    if meta.input.peek(syn::Token![=]) {
                        let _: Expr = meta.value()?.parse()?;
                        errors.error_at(&key, "`identifier` takes no value: write `#[field(identifier)]`");
                    }
                    once!(options.identifier, key.span())
                }
                MIN | MAX => {
                    let expr: Expr = meta.value()?.parse()?;
                    match parse_limit(&expr) {
                        Ok(limit) if name == MIN => once!(options.min, (limit, expr.span())),
                        Ok(limit) => once!(options.max, (limit, expr.span())),
                        Err(e) => errors.push(e),
                    }
                }
                MIN_LENGTH | MAX_LENGTH | LENGTH => {
                    let lit: LitInt = meta.value()?.parse()?;
                    match lit.base10_parse::<usize>() {
                        Ok(v) if name == MIN_LENGTH => once!(options.min_length, (v, lit.span())),
                        Ok(v) if name == MAX_LENGTH => once!(options.max_length, (v, lit.span())),
                        Ok(v) => once!(options.length, (v, lit.span())),
                        Err(_) => errors.error_at(&lit, "expected a length: a whole number from 0 up"),
                    }
                }
                DEFAULT => {
                    let expr: Expr = meta.value()?.parse()?;
                    once!(options.default, expr)
                }
                _ => {
                    errors
                        .error_at(&key, format!("unknown key `{key}` in `#[field(..)]`: expected one of {FIELD_KEYS}"));
                    if meta.input.peek(syn::Token![=]) {
                        let _: Expr = meta.value()?.parse()?;
                    }
                }
            }
            Ok(())
        });
        errors.ok(result);
    }
    if let (Some((min, span)), Some((max, _))) = (&options.min, &options.max) {
        let (lo, hi) = (as_f64(min), as_f64(max));
        if lo > hi {
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
    options
}

fn as_f64(limit: &LimitLit) -> f64 {
    match limit {
        LimitLit::Int(v) => *v as f64,
        LimitLit::Float(v) => *v,
    }
}

/// One declared invariant: the method to call and when.
pub struct Invariant {
    pub method: Ident,
    pub pre: bool,
}

/// Parses every `#[invariant(..)]` on the struct.
pub fn parse_invariants(attrs: &[syn::Attribute], allow_pre: bool, errors: &mut Errors) -> Vec<Invariant> {
    let mut invariants: Vec<Invariant> = Vec::new();
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
                invariants.push(Invariant { method: key, pre: false });
                return Ok(());
            } else {
                errors.error_at(
                    &key,
                    format!("unknown key `{key}` in `#[invariant(..)]`: expected `pre = method` or `post = method`"),
                );
                let _: Expr = meta.value()?.parse()?;
                return Ok(());
            };
            let method: Ident = meta.value()?.parse()?;
            if pre && !allow_pre {
                errors.error_at(&key, "value objects are immutable, so they have no `pre` invariants: use `post`");
            }
            if invariants.iter().any(|i| i.method == method && i.pre == pre) {
                errors.error_at(&method, format!("invariant `{method}` is declared twice"));
            }
            invariants.push(Invariant { method, pre });
            Ok(())
        });
        errors.ok(result);
    }
    invariants
}
