//! Code generation. Everything generated refers to `::protean::__private`, and the
//! checks that the compiler enforces are spanned at the user's tokens, so an error
//! points at the type or key that is wrong.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Ident, Type};

use crate::ast::{Body, Element, Field, Identity, Kind, TypeShape};
use crate::attr::LimitLit;

fn private() -> TokenStream {
    quote!(::protean::__private)
}

/// The whole expansion of a checked element.
pub fn element(el: &Element) -> TokenStream {
    match &el.body {
        Body::Struct(_) => structure(el),
        Body::Choices(_) => choices(el),
    }
}

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

fn derives(el: &Element, wanted: &[&str]) -> TokenStream {
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
    quote! {
        #[derive(#(#list),*)]
        #[serde(crate = "::protean::__private::serde")]
    }
}

fn part_of(el: &Element) -> Option<&syn::Path> {
    el.args.part_of.as_ref()
}

fn last_segment(path: &syn::Path) -> String {
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

fn kind_tokens(kind: Kind) -> TokenStream {
    let p = private();
    match kind {
        Kind::Aggregate => quote!(#p::ElementKind::Aggregate),
        Kind::Entity => quote!(#p::ElementKind::Entity),
        Kind::ValueObject => quote!(#p::ElementKind::ValueObject),
        Kind::Command => quote!(#p::ElementKind::Command),
        Kind::Event => quote!(#p::ElementKind::Event),
    }
}

fn limit_tokens(limit: &LimitLit) -> TokenStream {
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

fn opt<T: ToTokens>(value: Option<T>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

/// The checks of one field's value, at path `at`, adding to `errors`.
fn field_checks(el: &Element, f: &Field, value: &TokenStream) -> TokenStream {
    let p = private();
    let o = &f.options;
    let ty = &f.ty;
    let ident = &el.ident;
    let mut checks = Vec::new();
    // Spanned at the option, so `min` on a `String` points at `min = ..`.
    if let Some((limit, span)) = &o.min {
        let l = limit_tokens(limit);
        checks.push(quote_spanned!(*span=> ::protean::__private::check_min::<#ty>(#value, #l, &at, errors);));
    }
    if let Some((limit, span)) = &o.max {
        let l = limit_tokens(limit);
        checks.push(quote_spanned!(*span=> ::protean::__private::check_max::<#ty>(#value, #l, &at, errors);));
    }
    for (opt, func) in
        [(o.min_length, "check_min_length"), (o.max_length, "check_max_length"), (o.length, "check_length")]
    {
        if let Some((n, span)) = opt {
            let func = format_ident!("{func}");
            checks.push(quote_spanned!(span=> ::protean::__private::#func::<#ty>(#value, #n, &at, errors);));
        }
    }
    if el.kind.has_identity() {
        checks.push(quote!(<#ty as #p::AggregateField<#ident>>::validate_field(#value, &at, errors);));
    } else {
        checks.push(quote!(<#ty as #p::ValueField>::validate_value(#value, &at, errors);));
    }
    let name = f.name();
    quote! {{
        let at = path.field(#name);
        #(#checks)*
    }}
}

/// Compile-time checks of the fields: kinds of type, options that fit the type, and the
/// `HasMany`/`HasOne` boundary rule.
fn type_checks(el: &Element) -> TokenStream {
    // Whether a type may be a field at all is checked where the generated code uses it
    // through `AggregateField`/`ValueField`, spanned at the type: one error per field.
    // `min`/`max` and the length options are checked by the generated calls, spanned at
    // the option. What remains is the `HasMany`/`HasOne` boundary rule.
    let p = private();
    let ident = &el.ident;
    let mut out = Vec::new();
    for f in el.fields() {
        if el.kind.has_identity() {
            let ty = &f.ty;
            out.push(quote_spanned!(ty.span()=> const _: () = <#ty as #p::AggregateField<#ident>>::ALLOWED;));
        }
        if let TypeShape::HasMany(target) | TypeShape::HasOne(target) = &f.shape {
            out.push(member_check(el, f, target));
        }
    }
    quote!(#(#out)*)
}

/// `HasMany<T>`/`HasOne<T>` in `C`: `T` must be an entity declared `part_of = C`.
/// Checked in a const so that each wrong case gets its own message naming the fix.
fn member_check(el: &Element, f: &Field, target: &Type) -> TokenStream {
    let p = private();
    let container = &el.ident;
    let t = type_text(target);
    let assoc = if matches!(f.shape, TypeShape::HasMany(_)) { "HasMany" } else { "HasOne" };
    let by_id = if assoc == "HasMany" {
        format!("`Vec<Identifier<{t}>>`")
    } else {
        format!("`Identifier<{t}>` (or `Option<Identifier<{t}>>`)")
    };
    let aggregate = format!(
        "`{assoc}<{t}>` in `{container}`: `{t}` is an aggregate root, and an aggregate never holds another. \
         Reference it by identity: {by_id}"
    );
    let foreign = format!(
        "`{assoc}<{t}>` in `{container}`: `{t}` is an entity of another aggregate (it is not `#[entity(part_of = {container})]`). \
         An aggregate holds only its own entities: reference the other aggregate by identity (`Identifier<..>`), \
         or, if `{t}` belongs to `{container}`, declare it `#[entity(part_of = {container})]`"
    );
    let other = format!(
        "`{assoc}<{t}>` in `{container}`: `{t}` is not an entity. `HasMany`/`HasOne` hold entities of this aggregate; \
         embed values as plain fields (`{t}`, `Option<{t}>` or `Vec<{t}>`)"
    );
    quote_spanned! {target.span()=>
        const _: () = match <#target as #p::DomainElement>::KIND {
            #p::ElementKind::Entity => {
                if !#p::const_str_eq(<#target as #p::DomainElement>::PARENT_KEY, <#container as #p::DomainElement>::KEY) {
                    ::core::panic!(#foreign)
                }
            }
            #p::ElementKind::Aggregate => ::core::panic!(#aggregate),
            _ => ::core::panic!(#other),
        };
    }
}

/// The expression of `Identifiable::id`: the identity field, read through `IdentityOf`
/// so that a field of the wrong type is reported once, at its type.
fn identity_field(el: &Element) -> Option<TokenStream> {
    let p = private();
    match el.identity {
        Identity::Declared(i) => {
            let f = &el.fields()[i];
            let (ty, ident) = (&f.ty, &f.ident);
            Some(quote_spanned!(ty.span()=> <#ty as #p::IdentityOf<Self>>::as_identifier(&self.#ident)))
        }
        Identity::Generated => Some(quote!(&self.id)),
        Identity::None => None,
    }
}

fn structure(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    let vis = &el.vis;
    let attrs = &el.attrs;
    let name = ident.to_string();
    let fields = el.fields();
    let value_object = el.kind == Kind::ValueObject;

    // The struct itself, with the derives the framework needs. Aggregates and entities
    // compare by identity (see `identity_equality`), value objects, commands and events by value.
    let derive = if el.kind.has_identity() {
        derives(el, &["Clone", "Debug", "Serialize", "Deserialize"])
    } else {
        derives(el, &["Clone", "Debug", "PartialEq", "Serialize", "Deserialize"])
    };
    let declared = fields.iter().map(|f| {
        let (fattrs, fident, fty) = (&f.attrs, &f.ident, &f.ty);
        // Value objects are immutable through their public API: fields become private, with getters.
        let fvis = if value_object { TokenStream::new() } else { f.vis.to_token_stream() };
        quote!(#(#fattrs)* #fvis #fident: #fty)
    });
    let generated_id = matches!(el.identity, Identity::Generated).then(|| {
        let doc = format!("The identity of this `{name}`: generated (a UUID v7) unless given to the builder.");
        quote!(#[doc = #doc] pub id: #p::Identifier<#ident>,)
    });
    let meta = match el.kind {
        Kind::Aggregate => quote!(#[serde(skip)] #[doc(hidden)] __protean: #p::AggregateMeta,),
        Kind::Entity => quote!(#[serde(skip)] #[doc(hidden)] pub __protean: #p::EntityEvents,),
        _ => TokenStream::new(),
    };
    let item = quote! {
        #(#attrs)*
        #derive
        #vis struct #ident {
            #generated_id
            #(#declared,)*
            #meta
        }
    };

    let checks = type_checks(el);
    let part_of_check = part_of_checks(el);
    let validate = validate_impl(el);
    let kinds = kind_impls(el);
    let builder = builder(el);
    let descriptor = descriptor(el);
    let getters = value_object.then(|| getters(el));
    let equality = identity_equality(el);

    quote! {
        #item
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

/// `PartialEq`, `Eq` and `Hash` of an aggregate or entity: by identity, as DDD has it
/// (two copies of one order are the same order, whatever their state). A user's own
/// `#[derive(PartialEq)]` (or `Eq`, `Hash`) replaces the one generated here.
fn identity_equality(el: &Element) -> TokenStream {
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

/// `ClusterEvents` of an aggregate or entity: the events raised by the entities it holds
/// (and, for an entity, by itself).
fn cluster_events(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    let own = (el.kind == Kind::Entity).then(|| quote!(out.extend(self.__protean.as_slice());));
    let own_take = (el.kind == Kind::Entity).then(|| quote!(out.extend(self.__protean.take());));
    let fields: Vec<_> =
        el.fields().iter().filter(|f| matches!(f.shape, TypeShape::HasMany(_) | TypeShape::HasOne(_))).collect();
    let raised = fields.iter().map(|f| {
        let (fident, fty) = (&f.ident, &f.ty);
        quote!(<#fty as #p::AggregateField<#ident>>::raised_in(&self.#fident, out);)
    });
    let take = fields.iter().map(|f| {
        let (fident, fty) = (&f.ident, &f.ty);
        quote!(<#fty as #p::AggregateField<#ident>>::take_raised_in(&mut self.#fident, out);)
    });
    quote! {
        #[automatically_derived]
        impl #p::ClusterEvents for #ident {
            fn raised_in<'__a>(&'__a self, out: &mut ::std::vec::Vec<&'__a #p::RaisedEvent>) {
                #own
                #(#raised)*
            }
            fn take_raised_in(&mut self, out: &mut ::std::vec::Vec<#p::RaisedEvent>) {
                #own_take
                #(#take)*
            }
        }
    }
}

fn part_of_checks(el: &Element) -> TokenStream {
    let p = private();
    let Some(parent) = part_of(el) else { return TokenStream::new() };
    if el.kind != Kind::Entity {
        // Commands and events: `type Aggregate = X` requires `X: Aggregate`, whose message says so.
        return TokenStream::new();
    }
    let parent_text = last_segment(parent);
    let message = format!(
        "`{parent_text}` cannot own entities: `part_of` of entity `{}` must name the aggregate (or an entity of it) \
         whose `HasMany`/`HasOne` holds it; value objects, commands and events own no entities",
        el.ident
    );
    quote_spanned! {parent.span()=>
        const _: () = if !#p::can_own_entities(<#parent as #p::DomainElement>::KIND) {
            ::core::panic!(#message)
        };
    }
}

fn validate_impl(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    let field_checks = el.fields().iter().map(|f| {
        let fident = &f.ident;
        field_checks(el, f, &quote!(&self.#fident))
    });
    // The invariants of one phase, evaluated on `on` (`self`, or the state as loaded).
    let invariant_calls = |pre: bool, on: TokenStream| -> Vec<TokenStream> {
        el.invariants
            .iter()
            .filter(|i| i.pre == pre)
            .map(|i| {
                let method = &i.method;
                quote_spanned! {method.span()=>
                    let check: fn(&Self) -> #p::InvariantResult = Self::#method;
                    #p::record_invariant(check(#on), path, errors);
                }
            })
            .collect()
    };
    let pre = invariant_calls(true, quote!(self));
    let post = invariant_calls(false, quote!(self));
    let change = el.kind.has_identity().then(|| {
        let own = el.invariants.iter().any(|i| i.pre);
        let own_pre = invariant_calls(true, quote!(before));
        let nested_has = el.fields().iter().map(|f| {
            let fty = &f.ty;
            quote!(|| <#fty as #p::AggregateField<#ident>>::HAS_PRE_INVARIANTS)
        });
        let nested = el.fields().iter().map(|f| {
            let (fident, fty, fname) = (&f.ident, &f.ty, f.name());
            quote!(<#fty as #p::AggregateField<#ident>>::check_changed_pre(&self.#fident, &before.#fident, &path.field(#fname), errors);)
        });
        quote! {
            const HAS_PRE_INVARIANTS: bool = #own #(#nested_has)*;
            fn check_pre_of_change(&self, before: &Self, path: &#p::Path<'_>, errors: &mut #p::ValidationError) {
                if !<Self as #p::Validate>::HAS_PRE_INVARIANTS {
                    return;
                }
                #(#own_pre)*
                #(#nested)*
            }
        }
    });
    let nested = el.kind.has_identity().then(|| {
        let calls = el.fields().iter().map(|f| {
            let (fident, fty, fname) = (&f.ident, &f.ty, f.name());
            quote!(<#fty as #p::AggregateField<#ident>>::check_field_invariants(&self.#fident, phase, &path.field(#fname), errors);)
        });
        quote!(#(#calls)*)
    });
    quote! {
        #[automatically_derived]
        impl #p::Validate for #ident {
            fn validate_fields(&self, path: &#p::Path<'_>, errors: &mut #p::ValidationError) {
                #(#field_checks)*
            }
            fn check_invariants(&self, phase: #p::Phase, path: &#p::Path<'_>, errors: &mut #p::ValidationError) {
                match phase {
                    #p::Phase::Pre => { #(#pre)* }
                    #p::Phase::Post => { #(#post)* }
                }
                #nested
            }
            #change
        }
    }
}

fn element_consts(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    let name = ident.to_string();
    let kind = kind_tokens(el.kind);
    let parent_key =
        part_of(el).map(|parent| quote!(const PARENT_KEY: &'static str = <#parent as #p::DomainElement>::KEY;));
    let root = match (el.kind, part_of(el)) {
        (Kind::Aggregate, _) => quote!(Self),
        (Kind::Entity, Some(parent)) => quote_spanned!(parent.span()=> <#parent as #p::DomainElement>::Root),
        _ => quote!(#p::NoCluster),
    };
    quote! {
        #[automatically_derived]
        impl #p::DomainElement for #ident {
            const NAME: &'static str = #name;
            const KIND: #p::ElementKind = #kind;
            const KEY: &'static str = ::core::concat!(::core::module_path!(), "::", #name);
            #parent_key
            type Root = #root;
        }
    }
}

fn stable_type_name(el: &Element) -> String {
    match (&el.args.name, part_of(el)) {
        (Some(name), _) => name.value(),
        (None, Some(parent)) if matches!(el.kind, Kind::Command | Kind::Event) => {
            format!("{}.{}", last_segment(parent), el.ident)
        }
        _ => el.ident.to_string(),
    }
}

fn version(el: &Element) -> u32 {
    el.args.version.map(|(v, _)| v).unwrap_or(1)
}

fn kind_impls(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    let name = ident.to_string();
    let consts = element_consts(el);
    let specific = match el.kind {
        Kind::Aggregate => {
            let sourcing = el.args.event_sourced.then(|| event_sourcing(el));
            let blank = el.args.event_sourced.then(|| blank_constructor(el));
            let state_stored =
                (!el.args.event_sourced).then(|| quote!(#[automatically_derived] impl #p::StateStored for #ident {}));
            let cluster = cluster_events(el);
            quote! {
                #blank
                #state_stored
                #cluster
                #[automatically_derived]
                impl #p::Aggregate for #ident {
                    fn __meta(&self) -> &#p::AggregateMeta { &self.__protean }
                    fn __meta_mut(&mut self) -> &mut #p::AggregateMeta { &mut self.__protean }
                    #sourcing
                }
            }
        }
        Kind::Entity => {
            let Some(parent) = part_of(el) else { return TokenStream::new() };
            let contains_doc =
                format!("`{parent_name}` holds [`{name}`] entities.", parent_name = last_segment(parent));
            let entity_of_doc = format!("[`{name}`] is an entity inside `{}`'s cluster.", last_segment(parent));
            let cluster = cluster_events(el);
            quote_spanned! {parent.span()=>
                #cluster
                #[automatically_derived]
                impl #p::Entity for #ident {
                    type Parent = #parent;
                    fn __events_mut(&mut self) -> &mut #p::EntityEvents { &mut self.__protean }
                }
                #[doc = #entity_of_doc]
                impl #p::EntityOf<#parent> for #ident {}
                #[doc = #contains_doc]
                impl #p::Contains<#ident> for #parent {}
            }
        }
        Kind::ValueObject => quote! {
            #[automatically_derived]
            impl #p::ValueObject for #ident {}
            #[automatically_derived]
            impl #p::ValueField for #ident {
                fn shape() -> #p::FieldShape { #p::value_object_shape::<Self>() }
                fn validate_value(&self, path: &#p::Path<'_>, errors: &mut #p::ValidationError) {
                    <Self as #p::Validate>::validate_fields(self, path, errors);
                    <Self as #p::Validate>::check_invariants(self, #p::Phase::Post, path, errors);
                }
            }
        },
        Kind::Command | Kind::Event => {
            let Some(parent) = part_of(el) else { return TokenStream::new() };
            let type_name = stable_type_name(el);
            let version = version(el);
            let parent_name = last_segment(parent);
            let (trait_, of, nav, nav_doc, of_doc) = if el.kind == Kind::Event {
                (
                    quote!(Event),
                    quote!(EventOf),
                    quote!(Raises),
                    format!("`{parent_name}` raises [`{name}`] (stored as `{type_name}`, version {version})."),
                    format!("[`{name}`] is raised by `{parent_name}`."),
                )
            } else {
                (
                    quote!(Command),
                    quote!(CommandOf),
                    quote!(Accepts),
                    format!("`{parent_name}` is changed by the command [`{name}`] (stored as `{type_name}`, version {version})."),
                    format!("[`{name}`] changes `{parent_name}`."),
                )
            };
            let upcast = el.args.upcast.as_ref().map(|f| {
                quote_spanned! {f.span()=>
                    fn upcast(
                        from_version: u32,
                        payload: #p::serde_json::Value,
                    ) -> ::core::result::Result<#p::serde_json::Value, ::std::string::String> {
                        #f(from_version, payload)
                    }
                }
            });
            let reply_ty = el.args.returns.as_ref().map_or_else(|| quote!(()), ToTokens::to_token_stream);
            let reply = (el.kind == Kind::Command).then(|| quote_spanned!(reply_ty.span()=> type Reply = #reply_ty;));
            let returns = (el.kind == Kind::Command).then(|| {
                quote! {
                    #[automatically_derived]
                    impl #p::Returns<#reply_ty> for #ident {
                        fn into_reply(reply: #reply_ty) -> #reply_ty { reply }
                    }
                }
            });
            quote_spanned! {parent.span()=>
                #[automatically_derived]
                impl #p::#trait_ for #ident {
                    type Aggregate = #parent;
                    const TYPE_NAME: &'static str = #type_name;
                    const VERSION: u32 = #version;
                    #reply
                    #upcast
                }
                #returns
                #[doc = #of_doc]
                impl #p::#of<#parent> for #ident {}
                #[doc = #nav_doc]
                impl #p::#nav<#ident> for #parent {}
            }
        }
    };
    // An aggregate or entity used as a plain field of another one: allowed by the trait
    // system so that the const below reports it with a message naming the fix.
    let as_field = el.kind.has_identity().then(|| {
        let message = if el.kind == Kind::Aggregate {
            format!(
                "`{name}` is an aggregate root, and an aggregate never holds another: \
                 reference it by identity, `Identifier<{name}>`"
            )
        } else {
            format!(
                "`{name}` is an entity: only its own aggregate holds it, in a `HasMany<{name}>` or `HasOne<{name}>` field"
            )
        };
        quote! {
            #[doc(hidden)]
            impl<C: 'static> #p::AggregateField<C> for #ident {
                const ALLOWED: () = ::core::panic!(#message);
                fn shape() -> #p::FieldShape { #p::FieldShape::Primitive { name: #name } }
                fn validate_field(&self, path: &#p::Path<'_>, errors: &mut #p::ValidationError) {
                    <Self as #p::Validate>::validate_fields(self, path, errors)
                }
            }
        }
    });
    let identifiable = identity_field(el).map(|id| {
        quote! {
            #[automatically_derived]
            impl #p::Identifiable for #ident {
                const IDENTIFIED_NAME: &'static str = #name;
                fn id(&self) -> &#p::Identifier<Self> { #id }
            }
        }
    });
    quote! {
        #consts
        #specific
        #identifiable
        #as_field
    }
}

/// What a builder does for a field it was not given.
fn unset_field(el: &Element, f: &Field) -> TokenStream {
    let p = private();
    let name = f.name();
    if let Some(expr) = &f.options.default {
        return quote_spanned!(expr.span()=> ::core::option::Option::Some(::core::convert::Into::into(#expr)));
    }
    if el.is_identity(f) {
        let (ty, ident) = (&f.ty, &el.ident);
        return quote_spanned!(ty.span()=> ::core::option::Option::Some(<#ty as #p::IdentityOf<#ident>>::generate_identity()));
    }
    if f.shape.defaults_to_empty() {
        return quote!(::core::option::Option::Some(::core::default::Default::default()));
    }
    quote!({ #p::missing(&mut errors, #name); ::core::option::Option::None })
}

/// The event-sourcing part of an `#[aggregate(event_sourced)]`'s `Aggregate` impl: raised
/// events are applied at once, and replay starts from [`blank_constructor`]'s state.
fn event_sourcing(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    quote! {
        const EVENT_SOURCED: bool = true;
        fn __apply(&mut self, event: &#p::RaisedEvent) {
            #p::apply_raised_event(self, event)
        }
        fn __blank(id: &#p::Identifier<#ident>) -> ::core::option::Option<Self> {
            ::core::option::Option::Some(#ident::blank(::core::clone::Clone::clone(id)))
        }
    }
}

/// `Aggregate::blank(id)` for an `#[aggregate(event_sourced)]`: the identity, and each
/// field's `#[field(default)]` or `Default`.
fn blank_constructor(el: &Element) -> TokenStream {
    let p = private();
    let (ident, vis) = (&el.ident, &el.vis);
    let generated_id =
        matches!(el.identity, Identity::Generated).then(|| quote!(id: ::core::clone::Clone::clone(&id),));
    let fields = el.fields().iter().map(|f| {
        let (fident, fty) = (&f.ident, &f.ty);
        if el.is_identity(f) {
            quote!(#fident: ::core::clone::Clone::clone(&id),)
        } else if let Some(default) = &f.options.default {
            quote_spanned!(fty.span()=> #fident: ::core::convert::Into::<#fty>::into(#default),)
        } else {
            quote_spanned!(fty.span()=> #fident: <#fty as ::core::default::Default>::default(),)
        }
    });
    let doc = format!(
        "A blank `{ident}` with this identity, before any event: each field at its \
         `#[field(default)]` or `Default`. Add it to a unit of work and raise its first event; \
         replay starts from here too."
    );
    quote! {
        impl #ident {
            #[doc = #doc]
            #vis fn blank(id: #p::Identifier<#ident>) -> Self {
                #ident {
                    #generated_id
                    #(#fields)*
                    __protean: ::core::default::Default::default(),
                }
            }
        }
    }
}

/// The parameter type of a builder setter: a number by value, so that a literal takes
/// the field's type (`.copies(1)` for a `u32`), anything else `impl Into<T>` (so `&str`
/// sets a `String`).
fn setter_param(ty: &Type) -> TokenStream {
    const NUMBERS: &[&str] =
        &["i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize", "f32", "f64"];
    let number = matches!(ty, Type::Path(t) if t.qself.is_none() && t.path.get_ident().is_some_and(|i| NUMBERS.contains(&i.to_string().as_str())));
    if number {
        ty.to_token_stream()
    } else {
        quote!(impl ::core::convert::Into<#ty>)
    }
}

fn builder(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    let vis = &el.vis;
    let builder = format_ident!("{}Builder", ident);
    let mut fields: Vec<&Field> = el.fields().iter().collect();
    let generated;
    if let Identity::Generated = el.identity {
        generated = Field {
            ident: format_ident!("id"),
            ty: syn::parse_quote!(#p::Identifier<#ident>),
            vis: syn::Visibility::Inherited,
            attrs: Vec::new(),
            options: Default::default(),
            docs: format!("The identity of this `{ident}`; generated (a UUID v7) when not given."),
            shape: TypeShape::Other,
        };
        fields.insert(0, &generated);
    }
    let idents: Vec<&Ident> = fields.iter().map(|f| &f.ident).collect();
    let locals: Vec<Ident> = idents.iter().map(|i| format_ident!("__{}", i)).collect();
    let types: Vec<&Type> = fields.iter().map(|f| &f.ty).collect();
    let setters = fields.iter().map(|f| {
        let (fident, fty) = (&f.ident, &f.ty);
        let param = setter_param(fty);
        let mut doc = format!("Sets `{fident}`.");
        if !f.docs.is_empty() {
            doc = format!("{doc}\n\n{}", f.docs);
        }
        if let Some(default) = &f.options.default {
            doc = format!("{doc}\n\nWhen not set: `{}`.", default.to_token_stream());
        }
        quote! {
            #[doc = #doc]
            pub fn #fident(mut self, value: #param) -> Self {
                self.#fident = ::core::option::Option::Some(value.into());
                self
            }
        }
    });
    let resolve = fields.iter().enumerate().map(|(i, f)| {
        let (fident, local, fty) = (&f.ident, &locals[i], &f.ty);
        let fb = unset_field(el, f);
        quote! {
            let #local: ::core::option::Option<#fty> = match self.#fident {
                ::core::option::Option::Some(v) => ::core::option::Option::Some(v),
                ::core::option::Option::None => #fb,
            };
        }
    });
    let checks = el.fields().iter().map(|f| {
        let local = format_ident!("__{}", f.ident);
        let check = field_checks(el, f, &quote!(value));
        quote!(if let ::core::option::Option::Some(value) = &#local { #check })
    });
    let meta = el.kind.has_identity().then(|| quote!(__protean: ::core::default::Default::default(),));
    let name = ident.to_string();
    let builder_doc = format!(
        "Builds a [`{name}`], checking every field and the invariants at once: \
         [`build`]({builder}::build) returns a `ValidationError` that lists every problem.\n\n\
         Made by [`{name}::builder`]."
    );
    let entry_doc = format!(
        "Starts building a `{name}`. Fields not set take their default (`#[field(default = ..)]`), \
         optional values and collections start empty{}, and the others are required.",
        if el.kind.has_identity() { ", the identity is generated" } else { "" }
    );
    let build_doc = format!(
        "Builds the `{name}`: fills defaults, then checks every field option and the post-invariants, \
         returning all problems at once, keyed by field path."
    );
    let new_fn = (el.kind == Kind::ValueObject).then(|| {
        let params = fields.iter().map(|f| {
            let (fident, fty) = (&f.ident, &f.ty);
            let param = setter_param(fty);
            quote!(#fident: #param)
        });
        let doc = format!("A `{name}` from every field, validated (see [`{name}::builder`] for defaults).");
        quote! {
            #[doc = #doc]
            #[allow(clippy::too_many_arguments)]
            pub fn new(#(#params),*) -> ::core::result::Result<Self, #p::ValidationError> {
                Self::builder()#(.#idents(#idents))*.build()
            }
        }
    });
    quote! {
        #[doc = #builder_doc]
        #[must_use = "call `.build()` to get the value"]
        #[derive(Default)]
        #vis struct #builder {
            #(#idents: ::core::option::Option<#types>,)*
        }

        impl #builder {
            #(#setters)*

            #[doc = #build_doc]
            pub fn build(self) -> ::core::result::Result<#ident, #p::ValidationError> {
                let mut errors = #p::ValidationError::default();
                #(#resolve)*
                {
                    let root = #p::Path::Root;
                    let path = &root;
                    let errors = &mut errors;
                    #(#checks)*
                }
                let (#(#locals,)*) = match (#(#locals,)*) {
                    (#(::core::option::Option::Some(#locals),)*) => (#(#locals,)*),
                    _ => return ::core::result::Result::Err(errors),
                };
                let value = #ident { #(#idents: #locals,)* #meta };
                <#ident as #p::Validate>::check_invariants(&value, #p::Phase::Post, &#p::Path::Root, &mut errors);
                errors.into_result().map(|()| value)
            }
        }

        impl #ident {
            #[doc = #entry_doc]
            pub fn builder() -> #builder {
                ::core::default::Default::default()
            }
            #new_fn
        }
    }
}

fn getters(el: &Element) -> TokenStream {
    let ident = &el.ident;
    let getters = el.fields().iter().map(|f| {
        let (fident, fty, fvis) = (&f.ident, &f.ty, &f.vis);
        let mut doc =
            format!("The `{fident}` of this value (value objects are immutable: build a new one to change it).");
        if !f.docs.is_empty() {
            doc = format!("{}\n\n{doc}", f.docs);
        }
        quote! {
            #[doc = #doc]
            #fvis fn #fident(&self) -> &#fty {
                &self.#fident
            }
        }
    });
    quote! {
        impl #ident {
            #(#getters)*
        }
    }
}

fn descriptor(el: &Element) -> TokenStream {
    let event_sourced = el.args.event_sourced;
    let p = private();
    let ident = &el.ident;
    let name = ident.to_string();
    let kind = kind_tokens(el.kind);
    let type_name = stable_type_name(el);
    let version = version(el);
    let part_of = opt(part_of(el).map(|parent| quote!(<#parent as #p::DomainElement>::NAME)));
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
        let required = f.options.default.is_none() && !f.shape.defaults_to_empty() && !el.is_identity(f);
        let o = &f.options;
        let min = opt(o.min.as_ref().map(|(l, _)| limit_tokens(l)));
        let max = opt(o.max.as_ref().map(|(l, _)| limit_tokens(l)));
        let min_length = opt(o.min_length.map(|(n, _)| n));
        let max_length = opt(o.max_length.map(|(n, _)| n));
        let length = opt(o.length.map(|(n, _)| n));
        let default = opt(o.default.as_ref().map(|d| d.to_token_stream().to_string()));
        let docs = &f.docs;
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
            }
        }
    });
    let invariants = el.invariants.iter().map(|i| {
        let method = i.method.to_string();
        let phase = if i.pre { quote!(#p::Phase::Pre) } else { quote!(#p::Phase::Post) };
        quote!(#p::InvariantDescriptor { name: #method, phase: #phase })
    });
    let choices: Vec<String> = match &el.body {
        Body::Choices(variants) => variants.iter().map(|v| v.ident.to_string()).collect(),
        Body::Struct(_) => Vec::new(),
    };
    let docs = &el.docs;
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
            }
        }
    }
}

fn choices(el: &Element) -> TokenStream {
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
    let names: Vec<String> = variants.iter().map(|v| v.ident.to_string()).collect();
    let vidents: Vec<&Ident> = variants.iter().map(|v| &v.ident).collect();
    let consts = element_consts(el);
    let descriptor = descriptor(el);
    let list = names.join(", ");
    quote! {
        #(#attrs)*
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

/// What is emitted beside the errors when an element is rejected: the item with its
/// derives and stub impls of the framework's traits, so that the rest of the user's
/// code (which holds, raises or references this type) compiles and one mistake gives
/// one error. The stubs are never run: the crate does not compile.
pub fn rejected(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    let vis = &el.vis;
    let attrs = &el.attrs;
    let item = match &el.body {
        Body::Struct(fields) => {
            let derive = derives(el, &["Clone", "Debug", "PartialEq", "Serialize", "Deserialize"]);
            let declared = fields.iter().map(|f| {
                let (fattrs, fvis, fident, fty) = (&f.attrs, &f.vis, &f.ident, &f.ty);
                quote!(#(#fattrs)* #fvis #fident: #fty)
            });
            quote!(#(#attrs)* #derive #vis struct #ident { #(#declared,)* })
        }
        Body::Choices(variants) => {
            let derive =
                derives(el, &["Clone", "Copy", "Debug", "PartialEq", "Eq", "Hash", "Serialize", "Deserialize"]);
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
    let specific = match (el.kind, part_of(el)) {
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
            impl #p::ValueObject for #ident {}
            impl #p::ValueField for #ident {
                fn shape() -> #p::FieldShape { #p::value_object_shape::<Self>() }
            }
        },
        (Kind::Event, Some(parent)) => {
            let type_name = stable_type_name(el);
            quote! {
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
