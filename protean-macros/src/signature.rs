//! The methods of the `impl` blocks that `#[handler]`, `#[projector]` and
//! `#[process_manager]` register: `async fn`s taking a context and a message, parsed and
//! checked for their shape in one place. Each macro describes its own shape, and the
//! words of its messages, in a [`Spec`]; the type rules (which context, which message)
//! are left to the compiler, through the checks each macro generates.

use std::collections::BTreeMap;

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::ast::docs_of;
use crate::errors::Errors;
use crate::expand::{private, type_text};

/// How the methods of one macro's blocks are written, and the words of its messages.
pub struct Spec<'s> {
    /// The attribute, as messages name it: `#[handler]`.
    pub attribute: &'static str,
    /// What a method of the block is called: `handler method`.
    pub method: &'static str,
    /// What the context parameter is called when it is missing: `context`.
    pub context: &'static str,
    /// Text in the context parameter's type (`Context<`), to tell it from the message.
    pub context_type: &'static str,
    /// The message when the item is not an `impl` block.
    pub not_an_impl: &'static str,
    /// The message when the block is generic.
    pub not_generic: &'static str,
    /// The message when the block has no methods.
    pub no_methods: &'static str,
    /// With `Some(message)`, a method may take `&mut self` before its context (a step of
    /// a process manager), and `message` is what is wrong with any other receiver.
    pub receiver: Option<&'static str>,
    /// How a method is written, with the message type the user wrote, if any.
    pub shape: &'s dyn Fn(Option<&syn::Type>) -> String,
    /// With `Some`, a message taken by value is refused with this message (only events
    /// are taken); with `None`, it is a command.
    pub by_value: Option<&'s dyn Fn(&syn::Type) -> String>,
    /// The message for a method without a return type, given whether it takes `self`,
    /// whether it takes an event, and the message type.
    pub returns: &'s dyn Fn(bool, bool, &syn::Type) -> String,
}

/// A method of the block, with a shape the macro can register.
pub struct Method<'a> {
    /// Its name.
    pub ident: &'a syn::Ident,
    /// Whether it takes `&mut self` (a step moving a flow on).
    pub takes_self: bool,
    /// The type behind `&mut` of the context parameter.
    pub context: &'a syn::Type,
    /// The command type (by value) or event type (behind `&`).
    pub message: &'a syn::Type,
    /// The message is an event (taken by reference), not a command.
    pub is_event: bool,
    /// The declared return type, where errors about the returned value point.
    pub output: &'a syn::Type,
    /// The method's doc comment, as text.
    pub docs: String,
    /// The method's attributes.
    pub attrs: &'a [syn::Attribute],
    /// Whether its body calls `.end()`: a process manager's step that can end its flow.
    pub ends: bool,
}

/// The `impl` block of `item`, if it is one (errors recorded otherwise, and about a
/// trait impl or a generic block).
pub fn parse_block(item: &TokenStream, spec: &Spec, errors: &mut Errors) -> Option<syn::ItemImpl> {
    let Ok(block) = syn::parse2::<syn::ItemImpl>(item.clone()) else {
        errors.error_at(item, spec.not_an_impl);
        return None;
    };
    if let Some(trait_) = &block.trait_ {
        errors
            .error_at(&trait_.1, format!("`{}` goes on an inherent `impl` block, not on a trait impl", spec.attribute));
    }
    if !block.generics.params.is_empty() {
        errors.error_at(&block.generics, spec.not_generic);
    }
    Some(block)
}

/// The methods of `block` whose shape is right (errors recorded for the others, and for
/// a block without methods when nothing else is wrong).
pub fn methods<'a>(block: &'a syn::ItemImpl, spec: &Spec, errors: &mut Errors) -> Vec<Method<'a>> {
    let methods: Vec<Method> = block.items.iter().filter_map(|item| method(item, spec, errors)).collect();
    if methods.is_empty() && errors.is_empty() {
        errors.error_at(&block.self_ty, spec.no_methods);
    }
    methods
}

/// The method of `item`, if its shape is one (errors recorded otherwise).
fn method<'a>(item: &'a syn::ImplItem, spec: &Spec, errors: &mut Errors) -> Option<Method<'a>> {
    let syn::ImplItem::Fn(f) = item else {
        errors.error_at(item, format!("a `{}` block holds only {}s (`async fn`)", spec.attribute, spec.method));
        return None;
    };
    let sig = &f.sig;
    let mut ok = true;
    if sig.asyncness.is_none() {
        errors.error_at(
            sig.fn_token,
            format!(
                "{} `{}` must be an `async fn`; keep helper functions in another `impl` block",
                spec.method, sig.ident
            ),
        );
        ok = false;
    }
    if !sig.generics.params.is_empty() {
        errors.error_at(&sig.generics, format!("a {} is not generic", spec.method));
        ok = false;
    }
    let mut inputs: Vec<&syn::FnArg> = sig.inputs.iter().collect();
    let typed = |arg: &&'a syn::FnArg| match arg {
        syn::FnArg::Typed(t) => Some(&*t.ty),
        syn::FnArg::Receiver(_) => None,
    };
    // The user's message type, for the messages: the last typed parameter that is not a context.
    let is_context = |ty: &syn::Type| type_text(ty).contains(spec.context_type);
    let written = inputs.iter().rev().filter_map(typed).find(|ty| !is_context(ty));
    let shape = (spec.shape)(written);
    let mut takes_self = false;
    if let (Some(wrong_receiver), Some(syn::FnArg::Receiver(r))) = (spec.receiver, inputs.first()) {
        if r.reference.is_none() || r.mutability.is_none() || r.colon_token.is_some() {
            errors.error_at(r, wrong_receiver);
            return None;
        }
        takes_self = true;
        inputs.remove(0);
    }
    let [ctx, message] = inputs.as_slice() else {
        let missing = if inputs.iter().filter_map(typed).any(is_context) {
            String::new()
        } else {
            format!("; it has no {}", spec.context)
        };
        errors.error_at(&sig.inputs, format!("{shape}{missing}"));
        return None;
    };
    let (Some(ctx), Some(message)) = (typed(ctx), typed(message)) else {
        errors.error_at(&sig.inputs, format!("{shape}; it has no `self`"));
        return None;
    };
    let context = match ctx {
        syn::Type::Reference(r) if r.mutability.is_some() => &*r.elem,
        other => {
            errors.error_at(other, shape);
            return None;
        }
    };
    let (message, is_event) = match message {
        syn::Type::Reference(r) if r.mutability.is_none() => (&*r.elem, true),
        syn::Type::Reference(r) => {
            errors.error_at(r, "an event is shared by all its handlers: take it as `&Event`, not `&mut`");
            return None;
        }
        other => match spec.by_value {
            Some(refused) => {
                errors.error_at(other, refused(other));
                return None;
            }
            None => (other, false),
        },
    };
    let output = match &sig.output {
        syn::ReturnType::Type(_, ty) => &**ty,
        syn::ReturnType::Default => {
            errors.error_at(&sig.ident, (spec.returns)(takes_self, is_event, message));
            return None;
        }
    };
    ok.then(|| Method {
        ident: &sig.ident,
        takes_self,
        context,
        message,
        is_event,
        output,
        docs: docs_of(&f.attrs),
        attrs: &f.attrs,
        ends: calls_end(f.block.to_token_stream()),
    })
}

/// Whether `body` calls a method `end()` (`ctx.end()`, `flow.end()`): how a process
/// manager's step ends its flow. A call inside a helper function is not seen.
fn calls_end(body: TokenStream) -> bool {
    let tokens: Vec<proc_macro2::TokenTree> = body.into_iter().collect();
    tokens.windows(3).any(|w| match w {
        [proc_macro2::TokenTree::Punct(dot), proc_macro2::TokenTree::Ident(end), proc_macro2::TokenTree::Group(args)] => {
            dot.as_char() == '.'
                && end == "end"
                && args.delimiter() == proc_macro2::Delimiter::Parenthesis
                && args.stream().is_empty()
        }
        _ => false,
    }) || tokens.iter().any(|t| matches!(t, proc_macro2::TokenTree::Group(g) if calls_end(g.stream())))
}

/// The block as written, followed by its registrations in a hidden anonymous const.
pub fn registered(block: &impl quote::ToTokens, registrations: TokenStream) -> TokenStream {
    quote! {
        #block
        #[doc(hidden)]
        const _: () = {
            #registrations
        };
    }
}

/// The hidden type standing for method `m` in its route: `__protean_{role}_{method}`.
pub fn marker(role: &str, m: &Method) -> syn::Ident {
    format_ident!("__protean_{}_{}", role, m.ident)
}

/// The compile-time check that the message taken by reference is an event, spanned at it.
pub fn event_check(m: &Method) -> TokenStream {
    let (p, message) = (private(), m.message);
    quote_spanned! {message.span()=> const _: () = #p::assert_event::<#message>(); }
}

/// The boxed future of a method: awaits `call`, makes its `Ok` value (bound to `reply`)
/// the outcome with `ok`, and converts its error into a `DomainError`.
pub fn outcome(call: TokenStream, ok: TokenStream) -> TokenStream {
    quote! {
        ::std::boxed::Box::pin(async move {
            match #call.await {
                ::core::result::Result::Ok(reply) => ::core::result::Result::Ok(#ok),
                ::core::result::Result::Err(e) => ::core::result::Result::Err(::core::convert::Into::into(e)),
            }
        })
    }
}

/// The [`outcome`] of a method whose `Ok` value must be `()` (checked at the declared
/// return type): `Result<(), DomainError>`.
pub fn unit_outcome(call: TokenStream, m: &Method) -> TokenStream {
    let p = private();
    // Spanned at the declared return type: a value where none is expected is reported there.
    let no_reply = quote_spanned!(m.output.span()=> #p::no_reply(reply));
    outcome(call, no_reply)
}

/// The registered `HandlerDescriptor` of method `m` of the block for `self_ty`, which
/// changes `owner` (an aggregate, a projection or a process manager) in role `role`
/// (a `HandlerRole` variant) and runs through `route`; `correlate` is the event field a
/// process manager's step routes by (a `&'static str` constant).
pub fn submit(
    self_ty: &syn::Type,
    m: &Method,
    owner: &TokenStream,
    role: &str,
    route: TokenStream,
    correlate: Option<&TokenStream>,
) -> TokenStream {
    let p = private();
    let Method { ident, message, is_event, docs, ends, .. } = m;
    let handler_name = type_text(self_ty).replace(' ', "");
    let method_name = ident.to_string();
    let handler_id = format!("{handler_name}::{method_name}");
    let role = format_ident!("{}", role);
    let correlate = correlate.cloned().unwrap_or_else(|| quote!(""));
    let (kind, type_name, fire) = if *is_event {
        (quote!(Event), quote!(<#message as #p::Event>::TYPE_NAME), quote!(::core::option::Option::None))
    } else {
        (
            quote!(Command),
            quote!(<#message as #p::Command>::TYPE_NAME),
            quote!(::core::option::Option::Some(#p::fire_scheduled::<#message>)),
        )
    };
    quote! {
        #p::inventory::submit! {
            #p::HandlerDescriptor {
                info: #p::HandlerInfo {
                    handler: #handler_name,
                    method: #method_name,
                    id: #handler_id,
                    module_path: ::core::module_path!(),
                    aggregate_key: <#owner as #p::DomainElement>::KEY,
                    aggregate: <#owner as #p::DomainElement>::NAME,
                    kind: #p::MessageKind::#kind,
                    message_key: <#message as #p::DomainElement>::KEY,
                    message: <#message as #p::DomainElement>::NAME,
                    type_name: #type_name,
                    docs: #docs,
                    role: #p::HandlerRole::#role,
                    correlate: #correlate,
                    ends: #ends,
                },
                route: #route,
                fire: #fire,
            }
        }
    }
}

/// One impl per event type that the block's methods take, for rustdoc: `takers` holds,
/// per method, its event type, the tokens naming that type in the generated code, and
/// how docs name the method; `make(event, tokens, methods)` writes the impl.
pub fn per_event(
    takers: Vec<(&syn::Type, TokenStream, String)>,
    make: impl Fn(&str, &TokenStream, &str) -> TokenStream,
) -> TokenStream {
    let mut by_event: BTreeMap<String, (TokenStream, Vec<String>)> = BTreeMap::new();
    for (event, tokens, taker) in takers {
        by_event.entry(type_text(event)).or_insert_with(|| (tokens, Vec::new())).1.push(taker);
    }
    by_event.iter().map(|(event, (tokens, takers))| make(event, tokens, &takers.join(" and "))).collect()
}
