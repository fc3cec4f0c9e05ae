//! An enum value object: a closed set of choices, with `Choices`, `Display` and `FromStr`,
//! stored by variant name (as serde renames it, if it does), and `Indexable`: a
//! projection may index a field holding one.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

use super::derives::derives;
use super::descriptor::descriptor;
use super::docs::element_doc;
use super::private;
use super::traits::element_consts;
use crate::ast::{Body, Element};

/// The whole expansion of an enum value object.
pub(super) fn choices(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    let vis = &el.vis;
    let attrs = &el.attrs;
    let Body::Choices(variants) = &el.body else { return TokenStream::new() };
    let derive = derives(el, &["Clone", "Copy", "Debug", "PartialEq", "Eq", "Hash", "Serialize", "Deserialize"]);
    let declared = variants.iter().map(|v| {
        let (vattrs, vident) = (&v.attrs, &v.ident);
        quote!(#(#vattrs)* #vident)
    });
    // The names serde stores the choices under (their own, unless serde renames them):
    // what `Display` writes and `FromStr` reads.
    let names: Vec<String> = variants.iter().map(|v| el.stored_choice(v)).collect();
    let vidents: Vec<&Ident> = variants.iter().map(|v| &v.ident).collect();
    let consts = element_consts(el);
    let descriptor = descriptor(el);
    let list = names.join(", ");
    let doc = element_doc(el);
    quote! {
        #(#attrs)*
        #doc
        #derive
        #vis enum #ident {
            #(#declared,)*
        }

        #consts

        #[automatically_derived]
        impl #p::Validate for #ident {
            fn validate_fields(&self, _path: &#p::Path<'_>, _errors: &mut #p::ValidationError) {}
            fn check_invariants(&self, _phase: #p::Phase, _path: &#p::Path<'_>, _errors: &mut #p::ValidationError) {}
        }
        #[automatically_derived]
        impl #p::ValueObject for #ident {}
        #[automatically_derived]
        impl #p::Choices for #ident {
            const CHOICES: &'static [&'static str] = &[#(#names),*];
            fn as_str(&self) -> &'static str {
                match self { #(Self::#vidents => #names,)* }
            }
        }
        #[automatically_derived]
        impl #p::Indexable for #ident {}
        #[automatically_derived]
        impl #p::ValueField for #ident {
            fn shape() -> #p::FieldShape { #p::choices_shape::<Self>() }
        }
        impl ::core::fmt::Display for #ident {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(<Self as #p::Choices>::as_str(self))
            }
        }
        impl ::core::str::FromStr for #ident {
            type Err = #p::ValidationError;
            /// Parses a choice by name; anything else lists the valid choices.
            fn from_str(text: &str) -> ::core::result::Result<Self, Self::Err> {
                match text {
                    #(#names => ::core::result::Result::Ok(Self::#vidents),)*
                    other => ::core::result::Result::Err(#p::ValidationError::object(
                        ::std::format!("`{}` is not one of: {}", other, #list),
                    )),
                }
            }
        }
        #descriptor
    }
}
