//! `#[process_manager]` on an `impl` block: the steps of a flow, one per method.
//!
//! A method without `self`, `async fn(ctx: &mut Flow<Self>, event: &E) -> Result<Self, _>`,
//! starts a flow (`StartFlow`, routed through `run_flow_start`); a method taking
//! `&mut self` moves a running flow on (`ContinueFlow`, through `run_flow_step`). Each
//! step is routed to its flow by the event field its `#[correlate(field)]` names (checked
//! to exist on the event), else by the struct's `correlate = field` (checked to be given,
//! and to be a field of the event).
//! The process manager gets an `impl Handles<E, Self>` per event, so its rustdoc page
//! lists them, and the event's page lists the process manager. The compiler checks the context (`FlowOf`) and that a flow loads nothing
//! (`LoadableInFlow`, in protean-core).

use proc_macro2::{TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::attr;
use crate::errors::Errors;
use crate::expand::{private, type_text};
use crate::signature::{self, Method, Spec};
use crate::symbol::CORRELATE;

/// A step and the event field it names with `#[correlate(field)]`, if it does.
struct Step<'a> {
    method: Method<'a>,
    correlate: Option<syn::Ident>,
}

/// Expands `#[process_manager] impl ProcessManager { .. }`.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = attr::parse_args(args, "process_manager", &[], &mut errors);
    for key in &args.keys {
        errors.error_at(
            key,
            "on an `impl` block, `#[process_manager]` takes no arguments: name the correlation field on the \
             struct (`#[process_manager(correlate = order_id)]`) or on a step (`#[correlate(order_id)]`)",
        );
    }
    let shape = |_: Option<&syn::Type>| {
        "a step takes `ctx: &mut Flow<Self>` and then an event by reference (`event: &SomeEvent`), after \
         `&mut self` when it moves a running flow on"
            .to_string()
    };
    let by_value = |message: &syn::Type| {
        format!(
            "a process manager takes events by reference (`event: &{}`); a step sends commands with `ctx.send(..)`",
            type_text(message)
        )
    };
    let returns = |takes_self: bool, _: bool, _: &syn::Type| {
        let what = if takes_self {
            "a step moving a flow on returns `Result<(), E>`"
        } else {
            "a step starting a flow returns `Result<Self, E>`, the new flow's state"
        };
        format!("{what}, with `E` converting into `DomainError` (`DomainError` itself will do)")
    };
    let spec = Spec {
        attribute: "#[process_manager]",
        method: "step",
        context: "flow context",
        context_type: "Flow<",
        not_an_impl: "`#[process_manager]` goes on the struct holding the state of a flow, and on an `impl` block \
                      of it holding its steps",
        not_generic: "a process manager is not generic: its steps take concrete events",
        no_methods: "this process manager has no steps: add `async fn`s taking `ctx: &mut Flow<Self>` and an \
                     `&event` (after `&mut self` to move a running flow on)",
        receiver: Some(
            "a step moving a flow on takes `&mut self` (the flow's state); a step starting one takes no `self`",
        ),
        shape: &shape,
        by_value: Some(&by_value),
        returns: &returns,
    };
    let Some(block) = signature::parse_block(&item, &spec, &mut errors) else {
        return errors.beside(&item);
    };
    let methods = signature::methods(&block, &spec, &mut errors);
    let steps: Vec<Step> = methods
        .into_iter()
        .map(|method| Step { correlate: attr::parse_correlate(method.attrs, &mut errors), method })
        .collect();
    let output = without_correlate(&block);
    if !errors.is_empty() {
        return errors.beside(&output);
    }
    let process = &block.self_ty;
    let registrations = steps.iter().map(|step| registration(process, step));
    let handles = handles(process, &steps);
    signature::registered(&output, quote!(#(#registrations)* #handles))
}

/// The block as emitted: without the `#[correlate(..)]` attributes, which are protean's.
fn without_correlate(block: &syn::ItemImpl) -> syn::ItemImpl {
    let mut block = block.clone();
    for item in &mut block.items {
        if let syn::ImplItem::Fn(f) = item {
            f.attrs.retain(|a| !a.path().is_ident(CORRELATE));
        }
    }
    block
}

/// `ty` with `Self` replaced by `process`, for the code outside the `impl` block.
fn outside(ty: &syn::Type, process: &syn::Type) -> TokenStream {
    fn replace(tokens: TokenStream, process: &syn::Type) -> TokenStream {
        tokens
            .into_iter()
            .map(|tree| match tree {
                TokenTree::Ident(ident) if ident == "Self" => {
                    let process = process.to_token_stream();
                    quote_spanned!(ident.span()=> #process)
                }
                TokenTree::Group(group) => {
                    let mut inner = proc_macro2::Group::new(group.delimiter(), replace(group.stream(), process));
                    inner.set_span(group.span());
                    TokenTree::Group(inner).into_token_stream()
                }
                other => other.into_token_stream(),
            })
            .collect()
    }
    replace(ty.to_token_stream(), process)
}

/// The checks, the `StartFlow`/`ContinueFlow` impl and the registered
/// `HandlerDescriptor` of one step.
fn registration(process: &syn::Type, step: &Step) -> TokenStream {
    let p = private();
    let m = &step.method;
    let ident = m.ident;
    let context = outside(m.context, process);
    let message = outside(m.message, process);
    let marker = signature::marker("step", m);
    let flow_check = quote_spanned! {m.context.span()=>
        const _: () = #p::assert_flow_of::<#context, #process>();
    };
    let event_check = signature::event_check(m);
    let (correlate, correlate_check) = match &step.correlate {
        Some(field) => {
            let name = field.to_string();
            // Spanned at the field named: an event without it is reported there.
            let access = quote_spanned!(field.span()=> &event.#field);
            (quote!(#name), quote!(const _: fn(&#message) = |event| { let _ = #access; };))
        }
        None => {
            let id = format!("{}::{ident}", type_text(process).replace(' ', ""));
            let message = format!(
                "step `{id}` has no correlation field: name the event field holding the flow's key on the struct, \
                 `#[process_manager(correlate = field)]`, or on the step, `#[correlate(field)]`"
            );
            let correlate = quote!(<#process as #p::ProcessManager>::CORRELATE);
            let check = quote_spanned! {ident.span()=>
                const _: () = ::core::assert!(!#correlate.is_empty(), #message);
            };
            let field_check = correlation_field_check(process, step);
            (correlate, quote!(#check #field_check))
        }
    };
    let (step_impl, route) = if m.takes_self {
        let outcome = signature::unit_outcome(quote!(<#process>::#ident(state, ctx, event)), m);
        (
            quote! {
                impl #p::ContinueFlow<#process, #message> for #marker {
                    const CORRELATE: &'static str = #correlate;
                    fn step<'a>(
                        state: &'a mut #process,
                        ctx: &'a mut #p::Flow<#process>,
                        event: &'a #message,
                    ) -> #p::BoxFuture<'a, ::core::result::Result<(), #p::DomainError>> {
                        #outcome
                    }
                }
            },
            quote!(#p::Route::Event(#p::run_flow_step::<#process, #message, #marker>)),
        )
    } else {
        // Spanned at the declared return type: a step starting a flow returns its state.
        let state = quote_spanned!(m.output.span()=> { let state: #process = reply; state });
        let outcome = signature::outcome(quote!(<#process>::#ident(ctx, event)), state);
        (
            quote! {
                impl #p::StartFlow<#process, #message> for #marker {
                    const CORRELATE: &'static str = #correlate;
                    fn start<'a>(
                        ctx: &'a mut #p::Flow<#process>,
                        event: &'a #message,
                    ) -> #p::BoxFuture<'a, ::core::result::Result<#process, #p::DomainError>> {
                        #outcome
                    }
                }
            },
            quote!(#p::Route::Event(#p::run_flow_start::<#process, #message, #marker>)),
        )
    };
    let submit = signature::submit(process, m, &process.to_token_stream(), "ProcessManager", route, Some(&correlate));
    quote! {
        #flow_check
        #event_check
        #correlate_check
        #[allow(non_camel_case_types)]
        struct #marker;
        #step_impl
        #submit
    }
}

/// The check that the event of a step routed by the struct's `correlate = field` has
/// that field. The field is named in another macro's tokens, so the check reads it from
/// `ProcessManager::CORRELATE` and the event's `FieldNames`, and the message, naming the
/// field, is put together when the constant is evaluated; it is reported at the event's
/// type.
fn correlation_field_check(process: &syn::Type, step: &Step) -> TokenStream {
    let p = private();
    let m = &step.method;
    let message = outside(m.message, process);
    let (process_text, event) = (type_text(process).replace(' ', ""), type_text(m.message));
    let step_name = format!("{process_text}::{}", m.ident);
    let parts = [
        format!("step `{step_name}` takes `{event}`, which has no field `"),
        format!("`, the field `{process_text}`'s flows are keyed by (`#[process_manager(correlate = "),
        ")]`): add `".to_string(),
        format!("` to `{event}`, or name the field of `{event}` that holds the flow's key on this step, with `#[correlate(field)]`"),
    ];
    let [head, keyed, add, tail] = parts;
    let fail = quote_spanned!(m.message.span()=> ::core::panic!("{}", #p::text_str(&TEXT)));
    quote! {
        const _: () = {
            const FIELD: &str = <#process as #p::ProcessManager>::CORRELATE;
            const PARTS: &[&str] = &[#head, FIELD, #keyed, FIELD, #add, FIELD, #tail];
            const TEXT: [u8; #p::text_len(PARTS)] = #p::text_concat(PARTS);
            if #p::lacks_correlation_field::<#message>(FIELD) {
                #fail
            }
        };
    }
}

/// One `impl Handles<E, ProcessManager> for ProcessManager` per event its steps take,
/// documented with the steps taking it: what its rustdoc page lists, and the event's
/// page too (each under a name of its own, `Handles<E, ProcessManager>`).
fn handles(process: &syn::Type, steps: &[Step]) -> TokenStream {
    let p = private();
    let name = type_text(process).replace(' ', "");
    let takers = steps.iter().map(|step| {
        let m = &step.method;
        let what = if m.takes_self { "moves a flow on" } else { "starts a flow" };
        (m.message, outside(m.message, process), format!("`{name}::{}` ({what})", m.ident))
    });
    signature::per_event(takers.collect(), |event, message, steps| {
        let doc = format!("Process manager `{name}` takes the event `{event}` in {steps}.");
        quote! {
            #[doc = #doc]
            impl #p::Handles<#message, #process> for #process {}
        }
    })
}
