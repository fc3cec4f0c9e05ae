//! Code generation, one concern per module. Everything generated refers to
//! `::protean::__private`, and the checks that the compiler enforces are spanned at the
//! user's tokens, so an error points at the type or key that is wrong.

mod builder;
mod choices;
mod defaults;
mod derives;
mod descriptor;
mod docs;
mod process_manager;
mod projection;
mod traits;
mod validate;

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::Type;

use self::builder::{builder, getters};
use self::choices::choices;
use self::derives::identity_equality;
use self::descriptor::descriptor;
use self::docs::element_doc;
use self::traits::kind_impls;
use self::validate::{part_of_checks, type_checks, validate_impl};
use crate::ast::{Body, Element, Identity, Kind};
use crate::attr::LimitLit;

pub(crate) use derives::{derives, derives_alone};
pub(crate) use projection::indexed_fields;
pub(crate) use traits::{element_consts, field_names};

/// The path every generated item goes through: `::protean::__private`.
pub(crate) fn private() -> TokenStream {
    quote!(::protean::__private)
}

/// The whole expansion of a checked element.
pub(crate) fn element(el: &Element) -> TokenStream {
    match (&el.body, el.kind) {
        (Body::Choices(_), _) => choices(el),
        (Body::Struct(_), Kind::Projection) => projection::projection(el),
        (Body::Struct(_), Kind::ProcessManager) => process_manager::process_manager(el),
        (Body::Struct(_), _) => structure(el),
    }
}

/// The struct as declared, with `attrs` (derives, docs) after the user's attributes,
/// `head` fields before the user's and `tail` fields after them; without protean's
/// helper attributes, and with what serde fills a field with when a stored record lacks
/// it (see `defaults`).
fn declared_struct(el: &Element, attrs: TokenStream, head: TokenStream, tail: TokenStream) -> TokenStream {
    let ident = &el.ident;
    let vis = &el.vis;
    let user_attrs = &el.attrs;
    let declared = el.fields().iter().map(|f| {
        let (fattrs, fident, fty) = (&f.attrs, &f.ident, &f.ty);
        // Value objects are immutable through their public API: fields become private, with getters.
        let fvis = if el.kind == Kind::ValueObject { TokenStream::new() } else { f.vis.to_token_stream() };
        let missing = defaults::serde_attribute(el, f);
        quote!(#(#fattrs)* #missing #fvis #fident: #fty)
    });
    quote! {
        #(#user_attrs)*
        #attrs
        #vis struct #ident {
            #head
            #(#declared,)*
            #tail
        }
    }
}

/// The whole expansion of a struct element.
fn structure(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    let name = ident.to_string();
    let value_object = el.kind == Kind::ValueObject;

    // The struct itself, with the derives the framework needs. Aggregates and entities
    // compare by identity (see `identity_equality`), value objects, commands and events by value.
    let derive = if el.kind.has_identity() {
        derives(el, &["Clone", "Debug", "Serialize", "Deserialize"])
    } else {
        derives(el, &["Clone", "Debug", "PartialEq", "Serialize", "Deserialize"])
    };
    let generated_id = matches!(el.identity, Identity::Generated).then(|| {
        let doc = format!("The identity of this `{name}`: generated (a UUID v7) unless given to the builder.");
        quote!(#[doc = #doc] pub id: #p::Identifier<#ident>,)
    });
    let meta = match el.kind {
        Kind::Aggregate => quote!(#[serde(skip)] #[doc(hidden)] __protean: #p::AggregateMeta,),
        Kind::Entity => quote!(#[serde(skip)] #[doc(hidden)] pub __protean: #p::EntityEvents,),
        _ => TokenStream::new(),
    };
    let doc = element_doc(el);
    let item = declared_struct(el, quote!(#doc #derive), quote!(#generated_id), meta);

    let checks = type_checks(el);
    let part_of_check = part_of_checks(el);
    let validate = validate_impl(el);
    let kinds = kind_impls(el);
    let builder = builder(el);
    let default_functions = defaults::functions(el);
    let descriptor = descriptor(el);
    let getters = value_object.then(|| getters(el));
    let equality = identity_equality(el);

    quote! {
        #item
        #default_functions
        #builder
        #getters
        #equality
        const _: () = {
            #checks
            #part_of_check
        };
        #validate
        #kinds
        #descriptor
    }
}

/// The last segment of `path`, as text: `Order` for `crate::model::Order`.
pub(super) fn last_segment(path: &syn::Path) -> String {
    path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default()
}

/// A type as the user wrote it, for messages and descriptors: `HashMap<K, V>`.
pub(crate) fn type_text(ty: &Type) -> String {
    ty.to_token_stream()
        .to_string()
        .replace(" < ", "<")
        .replace(" <", "<")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
}

/// A path as the user wrote it, for messages: `crate::model::Order`.
pub(crate) fn path_text(path: &syn::Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}

/// The `ElementKind` of `kind`, as tokens.
pub(super) fn kind_tokens(kind: Kind) -> TokenStream {
    let p = private();
    match kind {
        Kind::Aggregate => quote!(#p::ElementKind::Aggregate),
        Kind::Entity => quote!(#p::ElementKind::Entity),
        Kind::ValueObject => quote!(#p::ElementKind::ValueObject),
        Kind::Command => quote!(#p::ElementKind::Command),
        Kind::Event => quote!(#p::ElementKind::Event),
        Kind::Projection => quote!(#p::ElementKind::Projection),
        Kind::ProcessManager => quote!(#p::ElementKind::ProcessManager),
    }
}

/// A `min`/`max` bound as a `Limit`.
pub(super) fn limit_tokens(limit: &LimitLit) -> TokenStream {
    let p = private();
    match limit {
        LimitLit::Int(v) => {
            let v = proc_macro2::Literal::i128_unsuffixed(*v);
            quote!(#p::Limit::Int(#v))
        }
        LimitLit::Float(v) => {
            let v = proc_macro2::Literal::f64_unsuffixed(*v);
            quote!(#p::Limit::Float(#v))
        }
    }
}

/// The stable name a command or event is stored under: `name = ..`, else `Parent.Type`.
/// (An empty `name` is an error, and the fallback's stubs use the default.)
pub(crate) fn stable_type_name(el: &Element) -> String {
    match (el.args.name.as_ref().map(syn::LitStr::value).filter(|n| !n.trim().is_empty()), el.part_of()) {
        (Some(name), _) => name,
        (None, Some(parent)) if matches!(el.kind, Kind::Command | Kind::Event) => {
            format!("{}.{}", last_segment(parent), el.ident)
        }
        _ => el.ident.to_string(),
    }
}

/// The `version = N` of a command or event, 1 when not given.
pub(super) fn version(el: &Element) -> u32 {
    el.args.version.map(|(v, _)| v).unwrap_or(1)
}
