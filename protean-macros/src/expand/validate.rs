//! Validation: the `Validate` impl (field options and invariants, checked at run time)
//! and the compile-time checks of the fields and of `part_of`, each spanned at the
//! user's tokens so that the compiler's error points at what is wrong.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::Type;

use super::{last_segment, limit_tokens, private, type_text};
use crate::ast::{Element, Field, Kind, TypeShape};

/// The checks of one field's value, at path `at`, adding to `errors`.
pub(super) fn field_checks(el: &Element, f: &Field, value: &TokenStream) -> TokenStream {
    let p = private();
    let o = &f.options;
    let ty = &f.ty;
    let ident = &el.ident;
    let mut checks = Vec::new();
    // The locals named at the call site: a `#[field(..)]` written inside a user's
    // `macro_rules!` has that macro's hygiene, under which they would not resolve.
    let (at, errors) = (quote!(&at), quote!(errors));
    // Spanned at the option, so `min` on a `String` points at `min = ..`.
    if let Some((limit, span)) = &o.min {
        let l = limit_tokens(limit);
        checks.push(quote_spanned!(*span=> ::protean::__private::check_min::<#ty>(#value, #l, #at, #errors);));
    }
    if let Some((limit, span)) = &o.max {
        let l = limit_tokens(limit);
        checks.push(quote_spanned!(*span=> ::protean::__private::check_max::<#ty>(#value, #l, #at, #errors);));
    }
    for (opt, func) in
        [(o.min_length, "check_min_length"), (o.max_length, "check_max_length"), (o.length, "check_length")]
    {
        if let Some((n, span)) = opt {
            let func = format_ident!("{func}");
            checks.push(quote_spanned!(span=> ::protean::__private::#func::<#ty>(#value, #n, #at, #errors);));
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
pub(super) fn type_checks(el: &Element) -> TokenStream {
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

/// An entity's `part_of` must name a type that can own entities: an aggregate or an entity.
pub(super) fn part_of_checks(el: &Element) -> TokenStream {
    let p = private();
    let Some(parent) = el.part_of() else { return TokenStream::new() };
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

/// `impl Validate`: the field options, the invariants of each phase, and those of the
/// entities held, at their paths.
pub(super) fn validate_impl(el: &Element) -> TokenStream {
    let p = private();
    let ident = &el.ident;
    let field_checks = el.fields().iter().map(|f| {
        let fident = &f.ident;
        field_checks(el, f, &quote!(&self.#fident))
    });
    // The invariants of one phase, evaluated on `on` (`self`, or the state as loaded).
    let invariant_calls = |pre: bool, on: TokenStream| -> Vec<TokenStream> {
        el.invariants
            .list
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
        let own = el.invariants.list.iter().any(|i| i.pre);
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
