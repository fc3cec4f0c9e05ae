//! The framework's traits on the element: `DomainElement`, and per kind `Aggregate`,
//! `Entity`, `ValueObject`, `Command` or `Event` with the navigation impls on the
//! parent, `Identifiable`, `ClusterEvents`, and the event-sourcing hooks.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use super::builder::blank_constructor;
use super::{kind_tokens, last_segment, private, stable_type_name, version};
use crate::ast::{Element, Identity, Kind};

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

/// `ClusterEvents` of an aggregate or entity: the events raised by the entities it holds
/// (and, for an entity, by itself).
fn cluster_events(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    let own = (el.kind == Kind::Entity).then(|| quote!(out.extend(self.__protean.as_slice());));
    let own_take = (el.kind == Kind::Entity).then(|| quote!(out.extend(self.__protean.take());));
    let fields: Vec<_> = el.fields().iter().filter(|f| f.shape.holds_entities()).collect();
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

/// `impl DomainElement`: the name, kind, key, parent key and cluster root.
pub(crate) fn element_consts(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    let name = ident.to_string();
    let kind = kind_tokens(el.kind);
    let parent_key =
        el.part_of().map(|parent| quote!(const PARENT_KEY: &'static str = <#parent as #p::DomainElement>::KEY;));
    let root = match (el.kind, el.part_of()) {
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

/// `impl FieldNames` of an event: its fields' names, which a process manager's step is
/// checked against (the struct's correlation field must be one of them), and the keys
/// they are stored under, which a flow is routed by.
pub(crate) fn field_names(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    let names = el.fields().iter().map(|f| f.name());
    let stored = el.fields().iter().map(|f| el.stored_name(f));
    quote! {
        #[automatically_derived]
        impl #p::FieldNames for #ident {
            const FIELD_NAMES: &'static [&'static str] = &[#(#names),*];
            const STORED_NAMES: &'static [&'static str] = &[#(#stored),*];
        }
    }
}

/// The traits of the element's kind, `Identifiable`, and the `AggregateField` impl that
/// reports an aggregate or entity used as a plain field.
pub(super) fn kind_impls(el: &Element) -> TokenStream {
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
            let Some(parent) = el.part_of() else { return TokenStream::new() };
            let contains_doc =
                format!("`{parent_name}` holds `{name}` entities, in its cluster.", parent_name = last_segment(parent));
            let cluster = cluster_events(el);
            quote_spanned! {parent.span()=>
                #cluster
                #[automatically_derived]
                impl #p::Entity for #ident {
                    type Parent = #parent;
                    fn __events_mut(&mut self) -> &mut #p::EntityEvents { &mut self.__protean }
                }
                #[doc(hidden)]
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
            let Some(parent) = el.part_of() else { return TokenStream::new() };
            let type_name = stable_type_name(el);
            let version = version(el);
            let parent_name = last_segment(parent);
            let (trait_, of, nav, nav_doc) = if el.kind == Kind::Event {
                (
                    quote!(Event),
                    quote!(EventOf),
                    quote!(Raises),
                    format!("`{parent_name}` raises the event `{name}` (stored as `{type_name}`, version {version})."),
                )
            } else {
                (
                    quote!(Command),
                    quote!(CommandOf),
                    quote!(Accepts),
                    format!(
                        "`{parent_name}` is changed by the command `{name}` (stored as `{type_name}`, version {version})."
                    ),
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
            let upcast = upcast.or_else(|| upcast_steps(el));
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
            let field_names = (el.kind == Kind::Event).then(|| field_names(el));
            quote_spanned! {parent.span()=>
                #field_names
                #[automatically_derived]
                impl #p::#trait_ for #ident {
                    type Aggregate = #parent;
                    const TYPE_NAME: &'static str = #type_name;
                    const VERSION: u32 = #version;
                    #reply
                    #upcast
                }
                #returns
                // Hidden: `Accepts`/`Raises` below state the same fact, and each lists
                // under a name of its own on the aggregate's page, where these would all
                // read `CommandOf<Aggregate>`.
                #[doc(hidden)]
                impl #p::#of<#parent> for #ident {}
                #[doc = #nav_doc]
                impl #p::#nav<#ident> for #parent {}
            }
        }
        // Expanded by `projection` and `process`, which do not go through here.
        Kind::Projection | Kind::ProcessManager => TokenStream::new(),
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
        fn __replay<R: #p::Replayer<Self>>() -> ::core::option::Option<R> {
            ::core::option::Option::Some(R::of_aggregate())
        }
    }
}

/// `Event::upcast` of an event declared with `upcast(from = N, with = function)` steps:
/// the steps from the payload's version up, one after the other; a version no step reads
/// is refused with the step to declare.
fn upcast_steps(el: &Element) -> Option<TokenStream> {
    let p = private();
    if el.args.upcast_steps.is_empty() {
        return None;
    }
    let arms = el.args.upcast_steps.iter().map(|step| {
        let (from, with) = (step.from, &step.with);
        // Spanned at the function: one of the wrong type is reported there.
        let call = quote_spanned!(with.span()=> #with(payload)?);
        quote!(#from => #call,)
    });
    Some(quote! {
        fn upcast(
            from_version: u32,
            payload: #p::serde_json::Value,
        ) -> ::core::result::Result<#p::serde_json::Value, ::std::string::String> {
            let (mut version, mut payload) = (from_version, payload);
            while version < <Self as #p::Event>::VERSION {
                payload = match version {
                    #(#arms)*
                    other => {
                        return ::core::result::Result::Err(::std::format!(
                            "no upcaster from version {other} to version {}: declare `upcast(from = {other}, with = ..)`",
                            <Self as #p::Event>::VERSION
                        ))
                    }
                };
                version += 1;
            }
            ::core::result::Result::Ok(payload)
        }
    })
}
