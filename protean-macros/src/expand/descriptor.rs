//! The registry descriptor of an element (`ElementDescriptor`, submitted through
//! `inventory`): what `Domain::builder()` and the model exports read.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, ToTokens};

use super::{defaults, kind_tokens, limit_tokens, private, stable_type_name, type_text, version};
use crate::ast::{Body, Element, Identity, Kind};

/// `Some(value)` or `None`, as tokens.
fn opt<T: ToTokens>(value: Option<T>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

/// `inventory::submit!` of the element's `ElementDescriptor`.
pub(super) fn descriptor(el: &Element) -> TokenStream {
    let event_sourced = el.args.event_sourced;
    let p = private();
    let ident = &el.ident;
    let name = ident.to_string();
    let kind = kind_tokens(el.kind);
    let type_name = stable_type_name(el);
    let version = version(el);
    let part_of = opt(el.part_of().map(|parent| quote!(<#parent as #p::DomainElement>::NAME)));
    let (identity, generated_identity) = match el.identity {
        Identity::Declared(i) => (opt(Some(el.fields()[i].name())), false),
        Identity::Generated => (opt(Some("id")), true),
        Identity::None => (opt(None::<String>), false),
    };
    let generated_field = generated_identity.then(|| {
        quote! {
            #p::FieldDescriptor {
                name: "id",
                rust_type: "Identifier<Self>",
                shape: <#p::Identifier<#ident> as #p::ValueField>::shape,
                required: false,
                options: #p::FieldOptions { min: None, max: None, min_length: None, max_length: None, length: None, default: None },
                docs: "Generated identity (UUID v7).",
                stored: "id",
                presence: #p::Presence::Required,
                may_be_omitted: false,
                flatten: false,
                aliases: &[],
            },
        }
    });
    let fields = el.fields().iter().map(|f| {
        let fname = f.name();
        let fty = &f.ty;
        let rust_type = type_text(fty);
        let shape = if el.kind.has_identity() {
            quote!(<#fty as #p::AggregateField<#ident>>::shape)
        } else {
            quote!(<#fty as #p::ValueField>::shape)
        };
        // An identity is generated when not given; a projection's key must be given.
        let generated = el.kind.has_identity() && el.is_identity(f);
        let required = f.options.default.is_none() && !f.shape.defaults_to_empty() && !generated;
        let o = &f.options;
        let min = opt(o.min.as_ref().map(|(l, _)| limit_tokens(l)));
        let max = opt(o.max.as_ref().map(|(l, _)| limit_tokens(l)));
        let min_length = opt(o.min_length.map(|(n, _)| n));
        let max_length = opt(o.max_length.map(|(n, _)| n));
        let length = opt(o.length.map(|(n, _)| n));
        let default = opt(o.default.as_ref().map(|d| d.to_token_stream().to_string()));
        let docs = &f.docs;
        let stored = el.stored_name(f);
        let presence = format_ident!("{}", defaults::presence(el, f));
        let may_be_omitted = f.serde.may_be_omitted;
        let flatten = f.serde.flatten;
        let aliases = &f.serde.aliases;
        quote! {
            #p::FieldDescriptor {
                name: #fname,
                rust_type: #rust_type,
                shape: #shape,
                required: #required,
                options: #p::FieldOptions {
                    min: #min, max: #max, min_length: #min_length, max_length: #max_length, length: #length, default: #default,
                },
                docs: #docs,
                stored: #stored,
                presence: #p::Presence::#presence,
                may_be_omitted: #may_be_omitted,
                flatten: #flatten,
                aliases: &[#(#aliases),*],
            }
        }
    });
    let invariants = el.invariants.list.iter().map(|i| {
        let method = i.method.to_string();
        let phase = if i.pre { quote!(#p::Phase::Pre) } else { quote!(#p::Phase::Post) };
        quote!(#p::InvariantDescriptor { name: #method, phase: #phase })
    });
    let choices: Vec<String> = match &el.body {
        Body::Choices(variants) => variants.iter().map(|v| v.ident.to_string()).collect(),
        Body::Struct(_) => Vec::new(),
    };
    let docs = &el.docs;
    let tag = opt(el.serde.tag.as_deref());
    let deny_unknown_fields = el.serde.deny_unknown_fields;
    let indexed = el.fields().iter().filter(|f| f.index.is_some()).map(|f| el.stored_name(f));
    let (upcasts, upcaster, decode) = upcasts(el);
    quote! {
        #p::inventory::submit! {
            #p::ElementDescriptor {
                kind: #kind,
                name: #name,
                key: ::core::concat!(::core::module_path!(), "::", #name),
                type_name: #type_name,
                version: #version,
                module_path: ::core::module_path!(),
                part_of: #part_of,
                identity: #identity,
                generated_identity: #generated_identity,
                fields: &[#generated_field #(#fields),*],
                invariants: &[#(#invariants),*],
                choices: &[#(#choices),*],
                docs: #docs,
                event_sourced: #event_sourced,
                serde: #p::ContainerSerde { tag: #tag, deny_unknown_fields: #deny_unknown_fields },
                indexed: &[#(#indexed),*],
                upcasts: #upcasts,
                upcaster: #upcaster,
                decode: #decode,
            }
        }
    }
}

/// The element's `Upcasts`, and, for an event with upcasters, its `Event::upcast` and a
/// function decoding a payload as the event (for the contract lock's check of the
/// upcasters); `None` for the others.
fn upcasts(el: &Element) -> (TokenStream, TokenStream, TokenStream) {
    let p = private();
    let none = quote!(::core::option::Option::None);
    if el.kind != Kind::Event {
        return (quote!(#p::Upcasts::None), none.clone(), none);
    }
    let ident = &el.ident;
    let upcasts = if el.args.upcast.is_some() {
        quote!(#p::Upcasts::All)
    } else if !el.args.upcast_steps.is_empty() {
        let mut from: Vec<u32> = el.args.upcast_steps.iter().map(|s| s.from).collect();
        from.sort_unstable();
        quote!(#p::Upcasts::Steps(&[#(#from),*]))
    } else {
        return (quote!(#p::Upcasts::None), none.clone(), none);
    };
    let upcaster = quote!(::core::option::Option::Some(<#ident as #p::Event>::upcast));
    let decode = quote! {
        ::core::option::Option::Some(|payload| {
            #p::serde_json::from_value::<#ident>(payload).map(|_| ()).map_err(|e| ::std::string::ToString::to_string(&e))
        })
    };
    (upcasts, upcaster, decode)
}
