//! `#[projection]` on a struct: a read model kept by projectors. The struct gets the
//! derives, `DomainElement` and the registry descriptor like every element, and
//! `ReadModel` and `Projection`: its name, version, key and indexed fields.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::descriptor::descriptor;
use super::{declared_struct, derives, element_consts, private, type_text, version};
use crate::ast::{Element, Field, Identity};
use crate::serde_attr::unraw;

/// The whole expansion of a checked `#[projection]` (which has exactly one `#[key]`).
pub(super) fn projection(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    let name = ident.to_string();
    let version = version(el);
    let Identity::Declared(key) = el.identity else { return TokenStream::new() };
    let key = &el.fields()[key];
    let indexed: Vec<String> = el.fields().iter().filter(|f| f.index.is_some()).map(Field::name).collect();

    let filtered = if indexed.is_empty() {
        "Queries read it by key only (mark fields with `#[index]` to filter and order on them).".to_string()
    } else {
        format!(
            "Queries filter and order on {}.",
            indexed.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
        )
    };
    let doc = format!(
        "**Projection** `{name}` (version {version}): a read model kept current by its projectors, from the \
         events listed under [*Trait Implementations*](#trait-implementations) as `FedBy<Event, Projector>`. Its rows are keyed by \
         `{key}`. {filtered} Handlers read it with `ctx.read`; only its projectors change it.",
        key = key.ident
    );
    let derive = derives(el, &["Clone", "Debug", "PartialEq", "Serialize", "Deserialize"]);
    let item = declared_struct(el, quote!(#[doc = ""] #[doc = #doc] #derive), TokenStream::new(), TokenStream::new());

    let consts = element_consts(el);
    let descriptor = descriptor(el);
    let (key_ty, key_ident) = (&key.ty, &key.ident);
    // Spanned at the key's type: a type that cannot key rows is reported there.
    let key_text = quote_spanned!(key_ty.span()=> <#key_ty as #p::ProjectionKey>::key_text(&self.#key_ident));
    let indexed_keys = el.fields().iter().filter(|f| f.index.is_some()).map(|f| el.stored_name(f));
    let fields = indexed_fields(el);
    quote! {
        #item
        #consts
        #fields
        #[automatically_derived]
        impl #p::ReadModel for #ident {
            const NAME: &'static str = #name;
            const PROJECTED: bool = true;
            type Key = #key_ty;
        }
        #[automatically_derived]
        impl #p::Projection for #ident {
            const VERSION: u32 = #version;
            const INDEXED: &'static [&'static str] = &[#(#indexed),*];
            const INDEXED_KEYS: &'static [&'static str] = &[#(#indexed_keys),*];
            fn key(&self) -> ::std::string::String {
                #key_text
            }
        }
        #descriptor
    }
}

/// The name of the `Field` constant of `field`: `OVERDUE` for `overdue`.
pub(crate) fn field_const(field: &Field) -> syn::Ident {
    format_ident!("{}", unraw(&field.ident).to_uppercase(), span = field.ident.span())
}

/// One `Field` constant per `#[index]` field, for typed queries
/// (`LoanView::OVERDUE.eq(true)`), and the check, spanned at each one's type, that
/// stores can index it.
pub(crate) fn indexed_fields(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    let mut consts = Vec::new();
    let mut checks = Vec::new();
    for f in el.fields().iter().filter(|f| f.index.is_some()) {
        let (vis, ty, name, key) = (&f.vis, &f.ty, f.name(), el.stored_name(f));
        let constant = field_const(f);
        let doc = format!(
            "The indexed field `{name}` (`{ty}`), for typed queries: \
             `.filter({ident}::{constant}.eq(..))`, `.order_by({ident}::{constant})`.",
            ty = type_text(ty)
        );
        consts.push(quote! {
            #[doc = #doc]
            #vis const #constant: #p::Field<#ident, #ty> = #p::Field::new(#name, #key);
        });
        checks.push(quote_spanned!(ty.span()=> indexable::<#ty>();));
    }
    if consts.is_empty() {
        return TokenStream::new();
    }
    quote! {
        #[automatically_derived]
        impl #ident {
            #(#consts)*
        }
        const _: () = {
            const fn indexable<T: ?::core::marker::Sized + #p::Indexable>() {}
            #(#checks)*
        };
    }
}
