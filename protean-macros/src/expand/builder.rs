//! Construction and access: the validating builder (`Order::builder()`), `new` and the
//! getters of a value object, and `blank(id)` of an event-sourced aggregate.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Ident, Type};

use super::validate::field_checks;
use super::{defaults, private};
use crate::ast::{Element, Field, Identity, Kind, TypeShape};

/// What a builder does for a field it was not given.
fn unset_field(el: &Element, f: &Field) -> TokenStream {
    let p = private();
    let name = f.name();
    if let Some(default) = defaults::declared(el, f) {
        return quote!(::core::option::Option::Some(#default));
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

/// `Aggregate::blank(id)` for an `#[aggregate(event_sourced)]`: the identity, and each
/// field's `#[field(default)]` or `Default`.
pub(super) fn blank_constructor(el: &Element) -> TokenStream {
    let p = private();
    let (ident, vis) = (&el.ident, &el.vis);
    let generated_id =
        matches!(el.identity, Identity::Generated).then(|| quote!(id: ::core::clone::Clone::clone(&id),));
    let fields = el.fields().iter().map(|f| {
        let (fident, fty) = (&f.ident, &f.ty);
        if el.is_identity(f) {
            quote!(#fident: ::core::clone::Clone::clone(&id),)
        } else if let Some(default) = defaults::declared(el, f) {
            quote!(#fident: #default,)
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

/// Whether `ty` is written as a primitive number type (`u32`).
fn is_number(ty: &Type) -> bool {
    const NUMBERS: &[&str] =
        &["i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize", "f32", "f64"];
    matches!(ty, Type::Path(t) if t.qself.is_none() && t.path.get_ident().is_some_and(|i| NUMBERS.contains(&i.to_string().as_str())))
}

/// The parameter type of a builder setter: a number by value, so that a literal takes
/// the field's type (`.copies(1)` for a `u32`), anything else `impl Into<T>` (so `&str`
/// sets a `String`).
fn setter_param(ty: &Type) -> TokenStream {
    if is_number(ty) {
        ty.to_token_stream()
    } else {
        quote!(impl ::core::convert::Into<#ty>)
    }
}

/// What the builder of `el` does with field `f` when it is not set, for the docs.
fn unset_text(el: &Element, f: &Field) -> String {
    match (&f.options.default, &f.shape) {
        (Some(default), _) => format!("`{}`", type_text_of(default)),
        _ if el.is_identity(f) => "generated".to_string(),
        (None, TypeShape::Option) => "`None`".to_string(),
        (None, TypeShape::Other) => "**required**".to_string(),
        (None, _) => "empty".to_string(),
    }
}

/// An expression or type as written, for a table cell of the docs: tokens joined the way
/// people write them, and `|` escaped.
fn type_text_of(tokens: &impl ToTokens) -> String {
    let mut text = tokens.to_token_stream().to_string();
    for (spaced, tight) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" < ", "<"),
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        (" (", "("),
        ("( ", "("),
        (" )", ")"),
        (" .", "."),
        (". ", "."),
        ("& ", "&"),
    ] {
        text = text.replace(spaced, tight);
    }
    text.replace('|', "\\|")
}

/// What a builder setter takes, for the docs: `impl Into<T>`, or a number type.
fn setter_text(ty: &Type) -> String {
    if is_number(ty) {
        type_text_of(ty)
    } else {
        format!("impl Into<{}>", type_text_of(ty))
    }
}

/// The doc of `Type::builder()`: the builder's setters, each with what it takes and what
/// the field is when it is not set. The builder type itself is hidden from the module's
/// index (one per element would crowd it), so this table is where its use is documented.
fn entry_doc(el: &Element, fields: &[&Field], builder: &Ident) -> String {
    let name = el.ident.to_string();
    let rows: String = fields
        .iter()
        .map(|f| {
            // The generated identity's type is written with protean's hidden path.
            let takes = match el.identity {
                Identity::Generated if el.is_identity(f) => format!("impl Into<Identifier<{name}>>"),
                _ => setter_text(&f.ty),
            };
            format!("| `.{}(..)` | `{takes}` | {} |\n", f.ident, unset_text(el, f))
        })
        .collect();
    format!(
        "Starts building a `{name}`: set its fields, then `.build()` fills in the ones not set, checks every \
         field option and the invariants, and returns the `{name}` or a `ValidationError` listing every problem, \
         keyed by field path.\n\n\
         | setter | takes | when not set |\n|---|---|---|\n{rows}\n\
         The builder is a `{builder}`, a plain value (`Default`, `#[must_use]`); it is left out of the module's \
         index, as its setters are all listed here."
    )
}

/// `{Type}Builder`, `Type::builder()`, and for a value object `Type::new(..)`.
///
/// Every function is `#[inline]`: such a function is compiled only where it is called,
/// so a builder the user's crate never calls (a command's or an event's, usually written
/// as a struct literal) costs no code generation.
pub(super) fn builder(el: &Element) -> TokenStream {
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
            key: None,
            index: None,
            rename: Default::default(),
            serde: Default::default(),
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
            #[inline]
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
        "Builds a `{name}`, checking every field and the invariants at once: `build()` returns a \
         `ValidationError` that lists every problem. Made by `{name}::builder()`, whose documentation lists \
         the setters."
    );
    let entry_doc = entry_doc(el, &fields, &builder);
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
        let doc = format!("A `{name}` from every field, validated (`{name}::builder()` lists the defaults).");
        quote! {
            #[doc = #doc]
            #[allow(clippy::too_many_arguments)]
            #[inline]
            pub fn new(#(#params),*) -> ::core::result::Result<Self, #p::ValidationError> {
                Self::builder()#(.#idents(#idents))*.build()
            }
        }
    });
    quote! {
        #[doc = #builder_doc]
        #[doc(hidden)]
        #[must_use = "call `.build()` to get the value"]
        #[derive(Default)]
        #vis struct #builder {
            #(#idents: ::core::option::Option<#types>,)*
        }

        impl #builder {
            #(#setters)*

            #[doc = #build_doc]
            #[inline]
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
            #[inline]
            pub fn builder() -> #builder {
                ::core::default::Default::default()
            }
            #new_fn
        }
    }
}

/// The getters of a value object's (private) fields.
pub(super) fn getters(el: &Element) -> TokenStream {
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
            #[inline]
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
