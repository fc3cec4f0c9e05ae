//! What a field takes when it is not given: one rule for the builder, the blank state of
//! an event-sourced aggregate, and deserialization. A field with `#[field(default = expr)]`
//! takes `expr`; an optional value or a collection (`Option`, `Vec`, `HasMany`, `HasOne`)
//! starts empty. So a record stored before such a field was added still loads: serde
//! fills what it lacks the way the builder fills what it was not given.
//!
//! The declared default is written once, in a hidden function of the type
//! (`Type::__protean_default_field()`), which the builder calls and serde's
//! `#[serde(default = "..")]` names: a default of the wrong type is reported once, at
//! the expression.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::Ident;

use crate::ast::{Element, Field, Kind};

/// Whether the element's fields take defaults: the elements with a builder (aggregates,
/// entities, value objects, commands and events), not the state written by projectors
/// and process managers' steps.
fn takes_defaults(el: &Element) -> bool {
    !matches!(el.kind, Kind::Projection | Kind::ProcessManager)
}

/// The hidden function returning the declared default of `f`.
fn function(f: &Field) -> Ident {
    format_ident!("__protean_default_{}", f.ident)
}

/// The value of `f`'s declared default, `None` when it declares none.
pub(super) fn declared(el: &Element, f: &Field) -> Option<TokenStream> {
    let (ident, function) = (&el.ident, function(f));
    f.options.default.as_ref().map(|_| quote!(#ident::#function()))
}

/// The hidden functions of the element's declared defaults.
pub(super) fn functions(el: &Element) -> TokenStream {
    if !takes_defaults(el) {
        return TokenStream::new();
    }
    let ident = &el.ident;
    let functions: Vec<TokenStream> = el
        .fields()
        .iter()
        .filter_map(|f| {
            let expr = f.options.default.as_ref()?;
            let (fty, function) = (&f.ty, function(f));
            // Spanned at the expression: a default of the wrong type is reported there.
            let value = quote_spanned!(expr.span()=> ::core::convert::Into::<#fty>::into(#expr));
            Some(quote! {
                #[doc(hidden)]
                #[inline]
                fn #function() -> #fty {
                    #value
                }
            })
        })
        .collect();
    if functions.is_empty() {
        return TokenStream::new();
    }
    quote! {
        impl #ident {
            #(#functions)*
        }
    }
}

/// The `#[serde(default ..)]` of a field a stored record may lack: one with a declared
/// default, an optional value or a collection; nothing for the identity (a record
/// without it is corrupt) or for a field whose serde attributes the user writes.
pub(super) fn serde_attribute(el: &Element, f: &Field) -> TokenStream {
    if !protean_defaults(el, f) {
        return TokenStream::new();
    }
    match &f.options.default {
        Some(_) => {
            let path = format!("{}::{}", el.ident, function(f));
            quote!(#[serde(default = #path)])
        }
        None => quote!(#[serde(default)]),
    }
}

/// Whether [`serde_attribute`] gives `f` a `#[serde(default ..)]`.
fn protean_defaults(el: &Element, f: &Field) -> bool {
    takes_defaults(el)
        && !el.is_identity(f)
        && !user_sets_default(f)
        && (f.options.default.is_some() || f.shape.defaults_to_empty())
}

/// What a stored record lacking `f` reads as, by the rule of [`serde_attribute`], as the
/// name of a `protean::registry::Presence` variant: `Skipped` (never read), `Defaulted`
/// (a default, by protean's rule, the user's `#[serde(default)]`, the type's, or serde's
/// own rule for `Option`), or `Required` (a record without it does not load).
pub(super) fn presence(el: &Element, f: &Field) -> &'static str {
    if f.serde.skip_reading {
        "Skipped"
    } else if f.serde.default || el.serde.default || protean_defaults(el, f) {
        "Defaulted"
    } else if matches!(f.shape, crate::ast::TypeShape::Option) {
        "Defaulted"
    } else {
        "Required"
    }
}

/// Whether the user's `#[serde(..)]` on `f` already says what a missing value becomes
/// (`default`), or makes it no field of its own (`flatten`).
fn user_sets_default(f: &Field) -> bool {
    f.serde.default || f.serde.flatten
}
