//! What is emitted when an element has errors: the errors, beside the item, so that
//! the rest of the user's code (which holds, raises or references the type) still
//! compiles and one mistake gives one error, as thiserror does.
//!
//! A non-generic element gets its derives and stub impls of the framework's traits;
//! anything else (a generic element, an item the macro does not expand) is emitted as
//! written, without protean's helper attributes.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::{Attribute, Item};

use crate::ast::{is_field_helper, Body, Element, Identity, Kind};
use crate::errors::Errors;
use crate::expand::{derives_alone, element_consts, field_names, indexed_fields, private, stable_type_name};
use crate::symbol::INVARIANT;

/// The errors of `item` (declared with `#[kind]`), beside the stubs of `element` when it
/// parsed and is not generic, else beside the item as written.
pub fn expand(kind: Kind, item: &Item, element: Option<&Element>, errors: Errors) -> TokenStream {
    let errors = errors.into_compile_errors();
    match element {
        Some(el) if el.generics.params.is_empty() => {
            let stubs = stubs(el);
            quote!(#stubs #errors)
        }
        _ => {
            let original = strip_helpers(kind, item);
            quote!(#original #errors)
        }
    }
}

/// The item with protean's helper attributes removed, so the rest of the user's code
/// still finds the type.
fn strip_helpers(kind: Kind, item: &Item) -> TokenStream {
    let mut item = item.clone();
    let keep = |a: &Attribute| !is_field_helper(kind, a) && !a.path().is_ident(INVARIANT);
    match &mut item {
        Item::Struct(s) => {
            s.attrs.retain(keep);
            for f in s.fields.iter_mut() {
                f.attrs.retain(keep);
            }
        }
        Item::Enum(e) => e.attrs.retain(keep),
        _ => {}
    }
    item.into_token_stream()
}

/// The item of a rejected element with its derives and stub impls of the framework's
/// traits. The stubs are never run: the crate does not compile.
fn stubs(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    let vis = &el.vis;
    let attrs = &el.attrs;
    let item = match &el.body {
        Body::Struct(fields) => {
            let derive = derives_alone(el, &["Clone", "Debug", "PartialEq", "Serialize", "Deserialize"]);
            let declared = fields.iter().map(|f| {
                let (fattrs, fvis, fident, fty) = (&f.attrs, &f.vis, &f.ident, &f.ty);
                quote!(#(#fattrs)* #fvis #fident: #fty)
            });
            quote!(#(#attrs)* #derive #vis struct #ident { #(#declared,)* })
        }
        Body::Choices(variants) => {
            let derive =
                derives_alone(el, &["Clone", "Copy", "Debug", "PartialEq", "Eq", "Hash", "Serialize", "Deserialize"]);
            let declared = variants.iter().map(|v| &v.ident);
            quote!(#(#attrs)* #derive #vis enum #ident { #(#declared,)* })
        }
    };
    let consts = element_consts(el);
    let unreachable = quote!(::core::unreachable!("protean: this element was rejected at compile time"));
    let identifiable = el.kind.has_identity().then(|| {
        let name = ident.to_string();
        quote! {
            impl #p::Identifiable for #ident {
                const IDENTIFIED_NAME: &'static str = #name;
                fn id(&self) -> &#p::Identifier<Self> { #unreachable }
            }
        }
    });
    let specific = match (el.kind, el.part_of()) {
        (Kind::Aggregate, _) => quote! {
            impl #p::Aggregate for #ident {
                fn __meta(&self) -> &#p::AggregateMeta { #unreachable }
                fn __meta_mut(&mut self) -> &mut #p::AggregateMeta { #unreachable }
            }
            impl #p::StateStored for #ident {}
        },
        (Kind::Entity, Some(parent)) => quote! {
            impl #p::Entity for #ident {
                type Parent = #parent;
                fn __events_mut(&mut self) -> &mut #p::EntityEvents { #unreachable }
            }
            impl #p::EntityOf<#parent> for #ident {}
        },
        (Kind::ValueObject, _) => quote! {
            impl #p::Indexable for #ident {}
            impl #p::ValueObject for #ident {}
            impl #p::ValueField for #ident {
                fn shape() -> #p::FieldShape { #p::value_object_shape::<Self>() }
            }
        },
        (Kind::Event, Some(parent)) => {
            let type_name = stable_type_name(el);
            let field_names = field_names(el);
            quote! {
                #field_names
                impl #p::Event for #ident {
                    type Aggregate = #parent;
                    const TYPE_NAME: &'static str = #type_name;
                    const VERSION: u32 = 1;
                }
                impl #p::EventOf<#parent> for #ident {}
            }
        }
        (Kind::Command, Some(parent)) => {
            let type_name = stable_type_name(el);
            quote! {
                impl #p::Command for #ident {
                    type Aggregate = #parent;
                    const TYPE_NAME: &'static str = #type_name;
                    const VERSION: u32 = 1;
                    type Reply = ();
                }
                impl #p::Returns<()> for #ident {
                    fn into_reply(reply: ()) {
                        reply
                    }
                }
                impl #p::CommandOf<#parent> for #ident {}
            }
        }
        (Kind::Projection, _) => {
            let name = ident.to_string();
            let key = match el.identity {
                Identity::Declared(key) => el.fields()[key].ty.to_token_stream(),
                _ => quote!(str),
            };
            let fields = indexed_fields(el);
            quote! {
                #fields
                impl #p::ReadModel for #ident {
                    const NAME: &'static str = #name;
                    const PROJECTED: bool = true;
                    type Key = #key;
                }
                impl #p::Projection for #ident {
                    const VERSION: u32 = 1;
                    const INDEXED: &'static [&'static str] = &[];
                    fn key(&self) -> ::std::string::String { #unreachable }
                }
            }
        }
        (Kind::ProcessManager, _) => {
            let name = ident.to_string();
            // Not a field name, so that its steps are not also reported, for having no
            // correlation field or for taking events that lack it.
            quote! {
                impl #p::ProcessManager for #ident {
                    const NAME: &'static str = #name;
                    const CORRELATE: &'static str = #p::REJECTED_CORRELATE;
                }
            }
        }
        _ => TokenStream::new(),
    };
    let cluster = el.kind.has_identity().then(|| {
        quote! {
            impl #p::ClusterEvents for #ident {
                fn raised_in<'__a>(&'__a self, _: &mut ::std::vec::Vec<&'__a #p::RaisedEvent>) {}
                fn take_raised_in(&mut self, _: &mut ::std::vec::Vec<#p::RaisedEvent>) {}
            }
        }
    });
    quote! {
        #item
        #consts
        impl #p::Validate for #ident {
            fn validate_fields(&self, _: &#p::Path<'_>, _: &mut #p::ValidationError) {}
            fn check_invariants(&self, _: #p::Phase, _: &#p::Path<'_>, _: &mut #p::ValidationError) {}
        }
        #identifiable
        #cluster
        #specific
    }
}
