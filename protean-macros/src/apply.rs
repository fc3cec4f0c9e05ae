//! `#[apply]`: the apply methods of an event-sourced aggregate, one per event.
//!
//! Each method `fn(&mut self, event: &E)` becomes `impl Apply<E> for Aggregate` and a
//! registered `ApplierDescriptor`; the compiler checks that `E` is an event of the
//! aggregate (`EventOf`), spanned at `E`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::attr;
use crate::errors::Errors;
use crate::expand::private;
use crate::valid;

/// Expands `#[apply] impl Aggregate { fn x(&mut self, event: &E) { .. } .. }`.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = attr::parse_args(args, "apply", &[], &mut errors);
    valid::macro_args("apply", &[], &args, &mut errors);
    let block = match syn::parse2::<syn::ItemImpl>(item.clone()) {
        Ok(block) => block,
        Err(_) => {
            errors.error_at(&item, "`#[apply]` goes on an `impl` block of an `#[aggregate(event_sourced)]`");
            let errors = errors.into_compile_errors();
            return quote!(#item #errors);
        }
    };
    if block.trait_.is_some() || !block.generics.params.is_empty() {
        errors.error_at(&block.self_ty, "`#[apply]` goes on a plain inherent `impl` block of the aggregate");
    }
    let p = private();
    let self_ty = &block.self_ty;
    let mut registrations = Vec::new();
    for item in &block.items {
        let syn::ImplItem::Fn(f) = item else {
            errors.error_at(item, "an `#[apply]` block holds only apply methods");
            continue;
        };
        let sig = &f.sig;
        let shape = "an apply method is `fn(&mut self, event: &Event)`: it changes the state as the event says";
        let inputs: Vec<&syn::FnArg> = sig.inputs.iter().collect();
        let event = match inputs.as_slice() {
            [syn::FnArg::Receiver(r), syn::FnArg::Typed(t)] if r.mutability.is_some() && r.reference.is_some() => {
                match &*t.ty {
                    syn::Type::Reference(r) if r.mutability.is_none() => Some(&*r.elem),
                    _ => None,
                }
            }
            _ => None,
        };
        let Some(event) = event else {
            errors.error_at(&sig.inputs, shape);
            continue;
        };
        if sig.asyncness.is_some() || !matches!(sig.output, syn::ReturnType::Default) {
            errors.error_at(
                &sig.ident,
                "an apply method is a plain `fn` returning nothing: an event already happened, applying it cannot fail",
            );
            continue;
        }
        let method = &sig.ident;
        let method_name = method.to_string();
        let check = quote_spanned! {event.span()=>
            const _: () = #p::assert_event_of::<#event, #self_ty>();
        };
        registrations.push(quote! {
            #check
            #[automatically_derived]
            impl #p::Apply<#event> for #self_ty {
                fn apply(&mut self, event: &#event) {
                    <#self_ty>::#method(self, event)
                }
            }
            #p::inventory::submit! {
                #p::ApplierDescriptor {
                    aggregate: <#self_ty as #p::DomainElement>::KEY,
                    event: <#event as #p::DomainElement>::KEY,
                    type_name: <#event as #p::Event>::TYPE_NAME,
                    method: #method_name,
                    apply_raised: #p::apply_raised::<#self_ty, #event>,
                    apply_stored: #p::apply_stored::<#self_ty, #event>,
                }
            }
        });
    }
    if !errors.is_empty() {
        let errors = errors.into_compile_errors();
        let block = block.to_token_stream();
        return quote!(#block #errors);
    }
    quote! {
        #block
        #[doc(hidden)]
        const _: () = {
            #(#registrations)*
        };
    }
}
