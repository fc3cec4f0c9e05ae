//! `#[handler(part_of = X)]`: parse the `impl` block into handler methods, check their
//! shape, and expand one registration per method.
//!
//! The type rules are left to the compiler, spanned at the user's tokens: a command
//! parameter must be a command of `X` (`SameAggregate`), the context must be
//! `Context<X>` (`ContextOf`), and inside the method `Context<X>` accepts only `X`
//! (`ChangedBy`, in protean-core).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::ast::docs_of;
use crate::attr;
use crate::errors::Errors;
use crate::expand::{path_text, private, type_text};
use crate::symbol::PART_OF;
use crate::valid;

/// A checked handler method.
struct Method<'a> {
    ident: &'a syn::Ident,
    /// The type behind `&mut` of the first parameter.
    context: &'a syn::Type,
    /// The command type (by value) or event type (behind `&`).
    message: &'a syn::Type,
    /// The message is an event (taken by reference), not a command.
    is_event: bool,
    /// The declared return type, where errors about the reply point.
    output: &'a syn::Type,
    /// The method's doc comment, as text.
    docs: String,
}

/// Expands `#[handler(args)] impl Type { .. }`.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let part_of = parse_args(args, &mut errors);
    let block = match syn::parse2::<syn::ItemImpl>(item.clone()) {
        Ok(block) => block,
        Err(_) => {
            errors.error_at(
                &item,
                "`#[handler(part_of = ..)]` goes on an `impl` block of a type of yours (`struct OrderCommands;`), \
                 whose `async fn`s handle commands and events",
            );
            let errors = errors.into_compile_errors();
            return quote!(#item #errors);
        }
    };
    if let Some(trait_) = &block.trait_ {
        errors.error_at(&trait_.1, "`#[handler]` goes on an inherent `impl` block, not on a trait impl");
    }
    if !block.generics.params.is_empty() {
        errors.error_at(&block.generics, "a handler is not generic: it handles concrete commands and events");
    }
    let aggregate = part_of.as_ref().map_or_else(|| "Aggregate".to_string(), path_text);
    let methods: Vec<Method> = block.items.iter().filter_map(|item| method(item, &aggregate, &mut errors)).collect();
    if methods.is_empty() && errors.is_empty() {
        errors.error_at(
            &block.self_ty,
            "this handler has no methods: add `async fn`s taking `ctx: &mut Context<..>` and a command or `&event`",
        );
    }
    let (Some(part_of), true) = (part_of, errors.is_empty()) else {
        let errors = errors.into_compile_errors();
        return quote!(#block #errors);
    };
    let registrations = methods.iter().map(|m| registration(&block.self_ty, &part_of, m));
    quote! {
        #block
        #[doc(hidden)]
        const _: () = {
            #(#registrations)*
        };
    }
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

/// The handler method of `item`, if its shape is one (errors recorded otherwise).
fn method<'a>(item: &'a syn::ImplItem, aggregate: &str, errors: &mut Errors) -> Option<Method<'a>> {
    let syn::ImplItem::Fn(f) = item else {
        errors.error_at(item, "a `#[handler]` block holds only handler methods (`async fn`)");
        return None;
    };
    let sig = &f.sig;
    let mut ok = true;
    if sig.asyncness.is_none() {
        errors.error_at(
            sig.fn_token,
            format!(
                "handler method `{}` must be an `async fn`; keep helper functions in another `impl` block",
                sig.ident
            ),
        );
        ok = false;
    }
    if !sig.generics.params.is_empty() {
        errors.error_at(&sig.generics, "a handler method is not generic");
        ok = false;
    }
    let inputs: Vec<&syn::FnArg> = sig.inputs.iter().collect();
    let typed = |arg: &&'a syn::FnArg| match arg {
        syn::FnArg::Typed(t) => Some(&*t.ty),
        syn::FnArg::Receiver(_) => None,
    };
    // The user's message type, for the messages: the last typed parameter that is not a context.
    let is_context = |ty: &syn::Type| type_text(ty).contains("Context<");
    let written = inputs.iter().rev().filter_map(typed).find(|ty| !is_context(ty));
    let shape = shape_of(aggregate, written);
    let [ctx, message] = inputs.as_slice() else {
        let missing = if inputs.iter().filter_map(typed).any(is_context) { "" } else { "; it has no context" };
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
        other => (other, false),
    };
    let output = match &sig.output {
        syn::ReturnType::Type(_, ty) => Some(&**ty),
        syn::ReturnType::Default => {
            let what = if is_event {
                "`Result<(), E>`".to_string()
            } else {
                format!(
                    "`Result<(), E>`, or `Result<T, E>` when `{}` is declared `#[command(.., returns = T)]`",
                    type_text(message)
                )
            };
            errors.error_at(
                &sig.ident,
                format!("a handler method returns {what}, with `E` converting into `DomainError` (`DomainError` itself will do)"),
            );
            None
        }
    };
    let output = output?;
    ok.then(|| Method { ident: &sig.ident, context, message, is_event, output, docs: docs_of(&f.attrs) })
}

/// The compile-time checks, the `HandleCommand`/`HandleEvent` impl and the registered
/// `HandlerDescriptor` of one method.
fn registration(self_ty: &syn::Type, part_of: &syn::Path, m: &Method) -> TokenStream {
    let p = private();
    let Method { ident, context, message, is_event, output, docs } = m;
    let marker = format_ident!("__protean_handler_{}", ident);
    let handler_name = type_text(self_ty).replace(' ', "");
    let method_name = ident.to_string();
    let handler_id = format!("{handler_name}::{method_name}");
    // Spanned at the declared return type: a reply the command does not declare is reported there.
    let no_reply = quote_spanned!(output.span()=> #p::no_reply(reply););
    // The `Ok` type as written (`Result<T, E>`), named so that a reply the command does
    // not declare is reported as such rather than inferred away.
    let ok = ok_type(output).map_or_else(|| quote!(_), ToTokens::to_token_stream);
    let into_reply = quote_spanned!(output.span()=> #p::reply::<#message, #ok>(reply));
    let context_check = quote_spanned! {context.span()=>
        const _: () = #p::assert_context_of::<#context, #part_of>();
    };
    let (message_check, handle_impl, kind, route) = if *is_event {
        (
            quote_spanned! {message.span()=> const _: () = #p::assert_event::<#message>(); },
            quote! {
                impl #p::HandleEvent<#part_of, #message> for #marker {
                    fn handle<'a>(
                        ctx: &'a mut #p::Context<#part_of>,
                        event: &'a #message,
                    ) -> #p::BoxFuture<'a, ::core::result::Result<(), #p::DomainError>> {
                        ::std::boxed::Box::pin(async move {
                            match <#self_ty>::#ident(ctx, event).await {
                                ::core::result::Result::Ok(reply) => {
                                    #no_reply
                                    ::core::result::Result::Ok(())
                                }
                                ::core::result::Result::Err(e) => ::core::result::Result::Err(::core::convert::Into::into(e)),
                            }
                        })
                    }
                }
            },
            quote!(Event),
            quote!(#p::Route::Event(#p::run_event::<#part_of, #message, #marker>)),
        )
    } else {
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
                        ::std::boxed::Box::pin(async move {
                            match <#self_ty>::#ident(ctx, command).await {
                                ::core::result::Result::Ok(reply) => ::core::result::Result::Ok(#into_reply),
                                ::core::result::Result::Err(e) => ::core::result::Result::Err(::core::convert::Into::into(e)),
                            }
                        })
                    }
                }
            },
            quote!(Command),
            quote!(#p::Route::Command(#p::run_command::<#part_of, #message, #marker>)),
        )
    };
    let fire = if *is_event {
        quote!(::core::option::Option::None)
    } else {
        quote!(::core::option::Option::Some(#p::fire_scheduled::<#message>))
    };
    let type_name = if *is_event {
        quote!(<#message as #p::Event>::TYPE_NAME)
    } else {
        quote!(<#message as #p::Command>::TYPE_NAME)
    };
    quote! {
        #context_check
        #message_check
        #[allow(non_camel_case_types)]
        struct #marker;
        #handle_impl
        #p::inventory::submit! {
            #p::HandlerDescriptor {
                info: #p::HandlerInfo {
                    handler: #handler_name,
                    method: #method_name,
                    id: #handler_id,
                    module_path: ::core::module_path!(),
                    aggregate_key: <#part_of as #p::DomainElement>::KEY,
                    aggregate: <#part_of as #p::DomainElement>::NAME,
                    kind: #p::MessageKind::#kind,
                    message_key: <#message as #p::DomainElement>::KEY,
                    message: <#message as #p::DomainElement>::NAME,
                    type_name: #type_name,
                    docs: #docs,
                    role: #p::HandlerRole::Handler,
                },
                route: #route,
                fire: #fire,
            }
        }
    }
}
