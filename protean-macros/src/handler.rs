//! `#[handler(part_of = X)]`: parse the `impl` block into handler methods, check their
//! shape, and expand one registration per method.
//!
//! The type rules are left to the compiler, spanned at the user's tokens: a command
//! parameter must be a command of `X` (`SameAggregate`), the context must be
//! `Context<X>` (`ContextOf`), and inside the method `Context<X>` accepts only `X`
//! (`ChangedBy`, in protean-core).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::attr;
use crate::errors::Errors;
use crate::expand::{path_text, private, type_text};
use crate::signature::{self, Method, Spec};
use crate::symbol::PART_OF;
use crate::valid;

/// Expands `#[handler(args)] impl Type { .. }`.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let part_of = parse_args(args, &mut errors);
    let aggregate = part_of.as_ref().map_or_else(|| "Aggregate".to_string(), path_text);
    let shape = |message: Option<&syn::Type>| shape_of(&aggregate, message);
    let spec = Spec {
        attribute: "#[handler]",
        method: "handler method",
        context: "context",
        context_type: "Context<",
        not_an_impl:
            "`#[handler(part_of = ..)]` goes on an `impl` block of a type of yours (`struct OrderCommands;`), \
                      whose `async fn`s handle commands and events",
        not_generic: "a handler is not generic: it handles concrete commands and events",
        no_methods:
            "this handler has no methods: add `async fn`s taking `ctx: &mut Context<..>` and a command or `&event`",
        receiver: None,
        shape: &shape,
        by_value: None,
        returns: &returns,
    };
    let Some(block) = signature::parse_block(&item, &spec, &mut errors) else {
        return errors.beside(&item);
    };
    let methods = signature::methods(&block, &spec, &mut errors);
    let (Some(part_of), true) = (part_of, errors.is_empty()) else {
        return errors.beside(&block);
    };
    let registrations = methods.iter().map(|m| registration(&block.self_ty, &part_of, m));
    let handles = handles(&block.self_ty, &part_of, &methods);
    signature::registered(&block, quote!(#(#registrations)* #handles))
}

/// One `impl Handles<Message, Handler> for Aggregate` per command or event the block's
/// methods take, documented with the methods taking it. Rustdoc lists it on the
/// aggregate's page, the message's page (who reacts to it) and the handler's page (what
/// it handles), each time under a name that tells it apart from the others there.
fn handles(self_ty: &syn::Type, part_of: &syn::Path, methods: &[Method]) -> TokenStream {
    let p = private();
    let handler = type_text(self_ty).replace(' ', "");
    let aggregate = path_text(part_of);
    let events: Vec<String> = methods.iter().filter(|m| m.is_event).map(|m| type_text(m.message)).collect();
    let takers = methods.iter().map(|m| (m.message, m.message.to_token_stream(), format!("`{handler}::{}`", m.ident)));
    signature::per_event(takers.collect(), |message, tokens, methods| {
        let doc = if events.iter().any(|e| e == message) {
            format!(
                "Handler `{handler}` reacts to the event `{message}` in {methods}, changing `{aggregate}` in a unit \
                 of work of its own."
            )
        } else {
            format!("Handler `{handler}` handles the command `{message}` in {methods}, changing `{aggregate}`.")
        };
        quote! {
            #[doc = #doc]
            impl #p::Handles<#tokens, #self_ty> for #part_of {}
        }
    })
}

/// What a handler method returns, for one declaring nothing.
fn returns(_takes_self: bool, is_event: bool, message: &syn::Type) -> String {
    let what = if is_event {
        "`Result<(), E>`".to_string()
    } else {
        format!(
            "`Result<(), E>`, or `Result<T, E>` when `{}` is declared `#[command(.., returns = T)]`",
            type_text(message)
        )
    };
    format!("a handler method returns {what}, with `E` converting into `DomainError` (`DomainError` itself will do)")
}

/// The aggregate of `#[handler(part_of = Aggregate)]`, through the shared argument parser.
fn parse_args(args: TokenStream, errors: &mut Errors) -> Option<syn::Path> {
    const ACCEPTED: &[&str] = &[PART_OF];
    let args = attr::parse_args(args, "handler", ACCEPTED, errors);
    valid::macro_args("handler", ACCEPTED, &args, errors);
    if !args.written(PART_OF) {
        errors.push(syn::Error::new(
            proc_macro2::Span::call_site(),
            "a handler changes one aggregate: name it with `#[handler(part_of = Aggregate)]`",
        ));
    }
    args.part_of
}

/// `T` of a return type written `Result<T, E>` (or any `Name<T, ..>`).
fn ok_type(output: &syn::Type) -> Option<&syn::Type> {
    let syn::Type::Path(path) = output else { return None };
    let syn::PathArguments::AngleBracketed(args) = &path.path.segments.last()?.arguments else { return None };
    args.args.iter().find_map(|arg| match arg {
        syn::GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}

/// How a handler method of `aggregate` is written, in the user's own terms: the message
/// type they wrote, if any, stands in the example.
fn shape_of(aggregate: &str, message: Option<&syn::Type>) -> String {
    let example = match message {
        Some(syn::Type::Reference(r)) => format!("an event by reference (`event: &{}`)", type_text(&r.elem)),
        Some(ty) => {
            format!("a command by value (`command: {0}`) or an event by reference (`event: &{0}`)", type_text(ty))
        }
        None => "a command by value (`command: SomeCommand`) or an event by reference (`event: &SomeEvent`)".into(),
    };
    format!("a handler method takes `ctx: &mut Context<{aggregate}>` and then {example}")
}

/// The compile-time checks, the `HandleCommand`/`HandleEvent` impl and the registered
/// `HandlerDescriptor` of one method.
fn registration(self_ty: &syn::Type, part_of: &syn::Path, m: &Method) -> TokenStream {
    let p = private();
    let Method { ident, context, message, is_event, output, .. } = m;
    let marker = signature::marker("handler", m);
    // The `Ok` type as written (`Result<T, E>`), named so that a reply the command does
    // not declare is reported as such rather than inferred away.
    let ok = ok_type(output).map_or_else(|| quote!(_), ToTokens::to_token_stream);
    let into_reply = quote_spanned!(output.span()=> #p::reply::<#message, #ok>(reply));
    let context_check = quote_spanned! {context.span()=>
        const _: () = #p::assert_context_of::<#context, #part_of>();
    };
    let (message_check, handle_impl, route) = if *is_event {
        let outcome = signature::unit_outcome(quote!(<#self_ty>::#ident(ctx, event)), m);
        (
            signature::event_check(m),
            quote! {
                impl #p::HandleEvent<#part_of, #message> for #marker {
                    fn handle<'a>(
                        ctx: &'a mut #p::Context<#part_of>,
                        event: &'a #message,
                    ) -> #p::BoxFuture<'a, ::core::result::Result<(), #p::DomainError>> {
                        #outcome
                    }
                }
            },
            quote!(#p::Route::Event(#p::run_event::<#part_of, #message, #marker>)),
        )
    } else {
        let outcome = signature::outcome(quote!(<#self_ty>::#ident(ctx, command)), into_reply);
        (
            quote_spanned! {message.span()=>
                const _: () = #p::assert_command_of::<#message, #part_of>();
            },
            quote! {
                impl #p::HandleCommand<#part_of, #message> for #marker {
                    fn handle(
                        ctx: &mut #p::Context<#part_of>,
                        command: #message,
                    ) -> #p::BoxFuture<'_, ::core::result::Result<<#message as #p::Command>::Reply, #p::DomainError>> {
                        #outcome
                    }
                }
            },
            quote!(#p::Route::Command(#p::run_command::<#part_of, #message, #marker>)),
        )
    };
    let submit = signature::submit(self_ty, m, &part_of.to_token_stream(), "Handler", route, None);
    quote! {
        #context_check
        #message_check
        #[allow(non_camel_case_types)]
        struct #marker;
        #handle_impl
        #submit
    }
}
