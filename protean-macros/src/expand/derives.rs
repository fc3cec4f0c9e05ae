//! The derives the framework needs on the type (`Clone`, `Debug`, serde, ..), leaving out
//! those the user derives, and the equality of aggregates and entities by identity.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Ident;

use super::private;
use crate::ast::Element;

/// The last segment of every path in the user's `#[derive(..)]` attributes: `Serialize`.
fn user_derives(el: &Element) -> Vec<String> {
    let mut names = Vec::new();
    for attr in el.attrs.iter().filter(|a| a.path().is_ident("derive")) {
        let _ = attr.parse_nested_meta(|meta| {
            if let Some(last) = meta.path.segments.last() {
                names.push(last.ident.to_string());
            }
            Ok(())
        });
    }
    names
}

/// `#[derive(..)]` of the `wanted` derives the user does not derive, serde's crate path
/// (unless the user names one), and the user's `#[serde(..)]` attributes on the type,
/// which must follow the derive that declares them.
pub(crate) fn derives(el: &Element, wanted: &[&str]) -> TokenStream {
    let derive = derives_alone(el, wanted);
    let user_serde = &el.serde.attrs;
    quote!(#derive #(#user_serde)*)
}

/// [`derives`] without the user's `#[serde(..)]` attributes: what a rejected element's
/// stub gets, so that a serde attribute refused there is reported once.
pub(crate) fn derives_alone(el: &Element, wanted: &[&str]) -> TokenStream {
    let p = private();
    let present = user_derives(el);
    let list = wanted.iter().filter(|w| !present.iter().any(|p| p == *w)).map(|w| match *w {
        "Serialize" => quote!(#p::serde::Serialize),
        "Deserialize" => quote!(#p::serde::Deserialize),
        other => {
            let ident = Ident::new(other, Span::call_site());
            quote!(::core::prelude::v1::#ident)
        }
    });
    let serde_crate = (!el.serde.names_crate).then(|| quote!(#[serde(crate = "::protean::__private::serde")]));
    quote! {
        #[derive(#(#list),*)]
        #serde_crate
    }
}

/// `PartialEq`, `Eq` and `Hash` of an aggregate or entity: by identity, as DDD has it
/// (two copies of one order are the same order, whatever their state). A user's own
/// `#[derive(PartialEq)]` (or `Eq`, `Hash`) replaces the one generated here.
pub(super) fn identity_equality(el: &Element) -> TokenStream {
    if !el.kind.has_identity() {
        return TokenStream::new();
    }
    let p = private();
    let ident = &el.ident;
    let present = user_derives(el);
    let mine = |name: &str| !present.iter().any(|d| d == name);
    let partial_eq = mine("PartialEq").then(|| {
        quote! {
            #[automatically_derived]
            impl ::core::cmp::PartialEq for #ident {
                /// Equal when the identities are: an entity is the same one whatever its state.
                fn eq(&self, other: &Self) -> bool {
                    <Self as #p::Identifiable>::id(self) == <Self as #p::Identifiable>::id(other)
                }
            }
        }
    });
    let eq = mine("Eq").then(|| quote!(#[automatically_derived] impl ::core::cmp::Eq for #ident {}));
    let hash = mine("Hash").then(|| {
        quote! {
            #[automatically_derived]
            impl ::core::hash::Hash for #ident {
                fn hash<H: ::core::hash::Hasher>(&self, state: &mut H) {
                    ::core::hash::Hash::hash(<Self as #p::Identifiable>::id(self), state)
                }
            }
        }
    });
    quote!(#partial_eq #eq #hash)
}
