//! `#[projector(projection = V)]` (and `(projection = V, inline)`): parse the `impl`
//! block into projector methods, check their shape, and expand one registration per
//! method.
//!
//! Each method `async fn(rows: &mut Rows<V>, event: &E) -> Result<(), E2>` becomes a
//! hidden type implementing `Project<V, E>`, an `impl FedBy<E, Projector> for V` (so the
//! projection's rustdoc page lists its events) and a registered `HandlerDescriptor`
//! routed through `project::<V, E, _>`. The type rules are the compiler's, spanned at the
//! user's tokens: the rows are `Rows<V>` (`RowsOf`), the message is an event, and a
//! projector loads nothing (`LoadableInProjector`, in protean-core).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::attr;
use crate::errors::Errors;
use crate::expand::{path_text, private, type_text};
use crate::signature::{self, Method, Spec};
use crate::symbol::{INLINE, PROJECTION};
use crate::valid;

/// Expands `#[projector(args)] impl Type { .. }`.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let (projection, inline) = parse_args(args, &mut errors);
    let view = projection.as_ref().map_or_else(|| "View".to_string(), path_text);
    let shape = |message: Option<&syn::Type>| {
        let event = match message {
            Some(syn::Type::Reference(r)) => type_text(&r.elem),
            Some(ty) => type_text(ty),
            None => "SomeEvent".into(),
        };
        format!("a projector method takes `rows: &mut Rows<{view}>` and then an event by reference (`event: &{event}`)")
    };
    let by_value = |message: &syn::Type| {
        format!(
            "a projector takes events by reference (`event: &{}`); commands are handled by `#[handler]`s",
            type_text(message)
        )
    };
    let spec = Spec {
        attribute: "#[projector]",
        method: "projector method",
        context: "rows",
        context_type: "Rows<",
        not_an_impl: "`#[projector(projection = ..)]` goes on an `impl` block of a type of yours \
                      (`struct CreditProjector;`), whose `async fn`s take events and change the projection's rows",
        not_generic: "a projector is not generic: it takes concrete events and changes one projection",
        no_methods: "this projector has no methods: add `async fn`s taking `rows: &mut Rows<..>` and an `&event`",
        receiver: None,
        shape: &shape,
        by_value: Some(&by_value),
        returns: &|_, _, _| {
            "a projector method returns `Result<(), E>`, with `E` converting into `DomainError` \
             (`DomainError` itself will do)"
                .to_string()
        },
    };
    let Some(block) = signature::parse_block(&item, &spec, &mut errors) else {
        return errors.beside(&item);
    };
    let methods = signature::methods(&block, &spec, &mut errors);
    let (Some(view), true) = (projection, errors.is_empty()) else {
        return errors.beside(&block);
    };
    let view = view.to_token_stream();
    let registrations = methods.iter().map(|m| registration(&block.self_ty, &view, inline, m));
    let fed_by = fed_by(&block.self_ty, &view, inline, &methods);
    signature::registered(&block, quote!(#(#registrations)* #fed_by))
}

/// The projection of `#[projector(projection = View, inline)]` and whether it is inline,
/// through the shared argument parser.
fn parse_args(args: TokenStream, errors: &mut Errors) -> (Option<syn::Path>, bool) {
    const ACCEPTED: &[&str] = &[PROJECTION, INLINE];
    let args = attr::parse_args(args, "projector", ACCEPTED, errors);
    valid::macro_args("projector", ACCEPTED, &args, errors);
    if !args.written(PROJECTION) {
        errors.push(syn::Error::new(
            proc_macro2::Span::call_site(),
            "a projector changes the rows of one projection: name it with `#[projector(projection = View)]` \
             (and add `inline` to run it in the unit of work that raises the event)",
        ));
    }
    (args.projection, args.inline)
}

/// The compile-time checks, the `Project` impl and the registered `HandlerDescriptor`
/// of one method.
fn registration(self_ty: &syn::Type, view: &TokenStream, inline: bool, m: &Method) -> TokenStream {
    let p = private();
    let Method { ident, context, message, .. } = m;
    let marker = signature::marker("projector", m);
    let rows_check = quote_spanned! {context.span()=>
        const _: () = #p::assert_rows_of::<#context, #view>();
    };
    let event_check = signature::event_check(m);
    let outcome = signature::unit_outcome(quote!(<#self_ty>::#ident(rows, event)), m);
    let route = quote! {
        #p::Route::Project(#p::ProjectorRoute {
            spec: <#view as #p::Projection>::spec,
            projection: <#view as #p::ReadModel>::NAME,
            inline: #inline,
            apply: #p::project::<#view, #message, #marker>,
        })
    };
    let role = if inline { "InlineProjector" } else { "Projector" };
    let submit = signature::submit(self_ty, m, view, role, route, None);
    quote! {
        #rows_check
        #event_check
        #[allow(non_camel_case_types)]
        struct #marker;
        impl #p::Project<#view, #message> for #marker {
            fn project<'a>(
                rows: &'a mut #p::Rows<#view>,
                event: &'a #message,
            ) -> #p::BoxFuture<'a, ::core::result::Result<(), #p::DomainError>> {
                #outcome
            }
        }
        #submit
    }
}

/// One `impl FedBy<E, Projector> for View` per event the block takes, documented with
/// the methods taking it: what the projection's rustdoc page lists, and the event's and
/// the projector's pages too (each under a name of its own, `FedBy<E, Projector>`).
fn fed_by(self_ty: &syn::Type, view: &TokenStream, inline: bool, methods: &[Method]) -> TokenStream {
    let p = private();
    let projector = type_text(self_ty).replace(' ', "");
    let view_name = view.to_string().replace(' ', "");
    let when = if inline { "in the unit of work that raises it (inline)" } else { "after it is committed" };
    let takers =
        methods.iter().map(|m| (m.message, m.message.to_token_stream(), format!("`{projector}::{}`", m.ident)));
    signature::per_event(takers.collect(), |event, message, through| {
        let doc =
            format!("Projector `{projector}` updates `{view_name}` from the event `{event}`, {when}, in {through}.");
        quote! {
            #[doc = #doc]
            impl #p::FedBy<#message, #self_ty> for #view {}
        }
    })
}
