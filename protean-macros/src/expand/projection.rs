//! `#[projection]` on a struct: a read model kept by projectors. The struct gets the
//! derives, `DomainElement` and the registry descriptor like every element, and
//! `ReadModel` and `Projection`: its name, version, key and indexed fields.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::descriptor::descriptor;
use super::{declared_struct, derives, element_consts, private, version};
use crate::ast::{Element, Field, Identity};

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
    quote! {
        #item
        #consts
        #[automatically_derived]
        impl #p::ReadModel for #ident {
            const NAME: &'static str = #name;
            const PROJECTED: bool = true;
        }
        #[automatically_derived]
        impl #p::Projection for #ident {
            const VERSION: u32 = #version;
            const INDEXED: &'static [&'static str] = &[#(#indexed),*];
            fn key(&self) -> ::std::string::String {
                #key_text
            }
        }
        #descriptor
    }
}
