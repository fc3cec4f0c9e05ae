//! The macros' intermediate form: an element and its fields, parsed from the item and
//! checked, each part keeping the tokens it came from so that errors have spans.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Attribute, Fields, Ident, Item, Type, Visibility};

use crate::attr::{self, Accepts, ElementArgs, FieldOptions, Invariant};
use crate::errors::Errors;
use crate::symbol::{FIELD, INVARIANT};

/// Which macro is expanding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Aggregate,
    Entity,
    ValueObject,
    Command,
    Event,
}

impl Kind {
    pub fn macro_name(self) -> &'static str {
        match self {
            Kind::Aggregate => "aggregate",
            Kind::Entity => "entity",
            Kind::ValueObject => "value_object",
            Kind::Command => "command",
            Kind::Event => "event",
        }
    }

    /// Aggregates and entities: identity, associations, builders.
    pub fn has_identity(self) -> bool {
        matches!(self, Kind::Aggregate | Kind::Entity)
    }

    fn accepts(self) -> Accepts {
        match self {
            Kind::Aggregate => Accepts {
                part_of: false,
                version: false,
                name: false,
                upcast: false,
                event_sourced: true,
                returns: false,
            },
            Kind::ValueObject => Accepts {
                part_of: false,
                version: false,
                name: false,
                upcast: false,
                event_sourced: false,
                returns: false,
            },
            Kind::Entity => Accepts {
                part_of: true,
                version: false,
                name: false,
                upcast: false,
                event_sourced: false,
                returns: false,
            },
            Kind::Command => {
                Accepts { part_of: true, version: true, name: true, upcast: false, event_sourced: false, returns: true }
            }
            Kind::Event => {
                Accepts { part_of: true, version: true, name: true, upcast: true, event_sourced: false, returns: false }
            }
        }
    }
}

/// How the type of a field is written, as far as the macros care.
#[derive(Clone)]
pub enum TypeShape {
    Option,
    Vec,
    HasMany(Type),
    HasOne(Type),
    Other,
}

impl TypeShape {
    fn of(ty: &Type) -> TypeShape {
        let Type::Path(p) = ty else { return TypeShape::Other };
        let Some(last) = p.path.segments.last() else { return TypeShape::Other };
        let inner = match &last.arguments {
            syn::PathArguments::AngleBracketed(args) if args.args.len() == 1 => match &args.args[0] {
                syn::GenericArgument::Type(t) => Some(t.clone()),
                _ => None,
            },
            _ => None,
        };
        match (last.ident.to_string().as_str(), inner) {
            ("Option", Some(_)) => TypeShape::Option,
            ("Vec", Some(_)) => TypeShape::Vec,
            ("HasMany", Some(t)) => TypeShape::HasMany(t),
            ("HasOne", Some(t)) => TypeShape::HasOne(t),
            _ => TypeShape::Other,
        }
    }

    /// Empty when not given: optional values and collections.
    pub fn defaults_to_empty(&self) -> bool {
        !matches!(self, TypeShape::Other)
    }
}

pub struct Field {
    pub ident: Ident,
    pub ty: Type,
    pub vis: Visibility,
    /// The user's attributes, without `#[field]`.
    pub attrs: Vec<Attribute>,
    pub options: FieldOptions,
    pub docs: String,
    pub shape: TypeShape,
}

impl Field {
    pub fn name(&self) -> String {
        self.ident.to_string()
    }
}

pub enum Identity {
    /// The field at this index is the identity.
    Declared(usize),
    /// The macro adds `id: Identifier<Self>`.
    Generated,
    /// Value objects, commands and events have none.
    None,
}

pub struct Variant {
    pub ident: Ident,
    pub attrs: Vec<Attribute>,
}

pub enum Body {
    Struct(Vec<Field>),
    /// An enum value object: a closed set of choices.
    Choices(Vec<Variant>),
}

pub struct Element {
    pub kind: Kind,
    pub ident: Ident,
    pub vis: Visibility,
    /// The user's attributes, without `#[invariant]`.
    pub attrs: Vec<Attribute>,
    pub args: ElementArgs,
    pub body: Body,
    pub identity: Identity,
    pub invariants: Vec<Invariant>,
    pub docs: String,
}

impl Element {
    /// Whether `field` is the identity, declared or generated (the generated one is named `id`).
    pub fn is_identity(&self, field: &Field) -> bool {
        match self.identity {
            Identity::Declared(i) => self.fields()[i].ident == field.ident,
            Identity::Generated => field.ident == "id",
            Identity::None => false,
        }
    }

    pub fn fields(&self) -> &[Field] {
        match &self.body {
            Body::Struct(fields) => fields,
            Body::Choices(_) => &[],
        }
    }
}

pub fn docs_of(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|l| l.strip_prefix(' ').unwrap_or(&l).trim_end().to_string())
        .collect();
    lines.join("\n").trim().to_string()
}

fn wrong_item(kind: Kind, what: &str, span: Span, errors: &mut Errors) {
    let expected = if kind == Kind::ValueObject {
        "a struct with named fields, or an enum of unit variants (a set of choices)"
    } else {
        "a struct with named fields"
    };
    errors.push(syn::Error::new(span, format!("`#[{}]` applies to {expected}, not to {what}", kind.macro_name())));
}

/// Parses and checks the item. `None` when it is not something this macro can expand at all.
pub fn parse(kind: Kind, args: TokenStream, item: &Item, errors: &mut Errors) -> Option<Element> {
    let args = attr::parse_element_args(args, kind.macro_name(), &kind.accepts(), errors);
    if kind.accepts().part_of && args.part_of.is_none() && !args.part_of_written {
        errors.push(syn::Error::new(
            Span::call_site(),
            format!(
                "`#[{0}]` needs `part_of`: write `#[{0}(part_of = Order)]`, naming the {1}",
                kind.macro_name(),
                match kind {
                    Kind::Entity => "aggregate (or entity of it) this entity belongs to",
                    Kind::Command => "aggregate this command changes",
                    _ => "aggregate that raises this event",
                }
            ),
        ));
    }
    let (ident, vis, attrs, generics, body_span) = match item {
        Item::Struct(s) => (&s.ident, &s.vis, &s.attrs, &s.generics, s.struct_token.span),
        Item::Enum(e) => (&e.ident, &e.vis, &e.attrs, &e.generics, e.enum_token.span),
        Item::Union(u) => {
            wrong_item(kind, "a union", u.union_token.span, errors);
            return None;
        }
        other => {
            wrong_item(kind, "this item", other.span(), errors);
            return None;
        }
    };
    if !generics.params.is_empty() || generics.where_clause.is_some() {
        errors.error_at(
            generics,
            "domain elements cannot be generic: the registry and the stored type names need one concrete type",
        );
    }
    let invariants = attr::parse_invariants(attrs, kind != Kind::ValueObject, errors);
    if !invariants.is_empty() && matches!(kind, Kind::Command | Kind::Event) {
        errors.push(syn::Error::new(
            invariants[0].method.span(),
            "invariants belong to aggregates, entities and value objects; commands and events are checked with `#[field(..)]` options",
        ));
    }
    let user_attrs: Vec<Attribute> = attrs.iter().filter(|a| !a.path().is_ident(INVARIANT)).cloned().collect();
    let body = match item {
        Item::Struct(s) => match &s.fields {
            Fields::Named(named) => Body::Struct(parse_fields(kind, named, errors)),
            Fields::Unnamed(f) => {
                wrong_item(kind, "a tuple struct", f.span(), errors);
                return None;
            }
            Fields::Unit => {
                wrong_item(kind, "a unit struct", body_span, errors);
                return None;
            }
        },
        Item::Enum(e) => {
            if kind != Kind::ValueObject {
                wrong_item(kind, "an enum", body_span, errors);
                return None;
            }
            if !invariants.is_empty() {
                errors.error_at(&e.ident, "an enum of choices has no invariants: every choice is valid");
            }
            let mut variants = Vec::new();
            for v in &e.variants {
                if !matches!(v.fields, Fields::Unit) {
                    errors.error_at(
                        &v.fields,
                        "an enum value object is a set of choices, so its variants carry no data: use a struct `#[value_object]` per case",
                    );
                }
                if let Some((_, d)) = &v.discriminant {
                    errors.error_at(d, "choices are stored by name: drop the discriminant");
                }
                variants.push(Variant { ident: v.ident.clone(), attrs: v.attrs.clone() });
            }
            if variants.is_empty() {
                errors.error_at(&e.ident, "an enum of choices needs at least one variant");
            }
            Body::Choices(variants)
        }
        _ => return None,
    };
    let identity = match &body {
        Body::Struct(fields) => identity_of(kind, fields, errors),
        Body::Choices(_) => Identity::None,
    };
    Some(Element {
        kind,
        ident: ident.clone(),
        vis: vis.clone(),
        attrs: user_attrs,
        args,
        docs: docs_of(attrs),
        body,
        identity,
        invariants,
    })
}

fn parse_fields(kind: Kind, named: &syn::FieldsNamed, errors: &mut Errors) -> Vec<Field> {
    let mut fields = Vec::new();
    for f in &named.named {
        let Some(ident) = f.ident.clone() else { continue };
        if ident.to_string().starts_with("__") {
            errors.error_at(&ident, "field names starting with `__` are reserved for protean");
        }
        let options = attr::parse_field_options(&f.attrs, errors);
        let shape = TypeShape::of(&f.ty);
        if let (false, TypeShape::HasMany(_) | TypeShape::HasOne(_)) = (kind.has_identity(), &shape) {
            let what = match kind {
                Kind::ValueObject => "a value object",
                Kind::Command => "a command",
                _ => "an event",
            };
            errors.error_at(
                &f.ty,
                format!(
                    "{what} cannot hold entities: `HasMany`/`HasOne` belong in an aggregate or entity; \
                     carry values instead (a `#[value_object]`, or `Identifier<T>` of the entity)"
                ),
            );
        }
        fields.push(Field {
            attrs: f.attrs.iter().filter(|a| !a.path().is_ident(FIELD)).cloned().collect(),
            docs: docs_of(&f.attrs),
            vis: f.vis.clone(),
            ty: f.ty.clone(),
            ident,
            options,
            shape,
        });
    }
    fields
}

fn identity_of(kind: Kind, fields: &[Field], errors: &mut Errors) -> Identity {
    let marked: Vec<usize> = (0..fields.len()).filter(|&i| fields[i].options.identifier.is_some()).collect();
    if !kind.has_identity() {
        for &i in &marked {
            let span = fields[i].options.identifier.unwrap_or_else(Span::call_site);
            let message = match kind {
                Kind::ValueObject => "a value object has no identity: it is compared by value. Drop `identifier`, or make this type an `#[entity(part_of = ..)]`",
                _ => "commands and events have no identity field: name the aggregate they concern with a plain `Identifier<T>` field",
            };
            errors.push(syn::Error::new(span, message));
        }
        return Identity::None;
    }
    let named_id = fields.iter().position(|f| f.ident == "id");
    match (marked.as_slice(), named_id) {
        ([], None) => Identity::Generated,
        ([], Some(i)) => Identity::Declared(i),
        ([i], None) => Identity::Declared(*i),
        ([i], Some(id)) if *i == id => Identity::Declared(*i),
        ([i], Some(id)) => {
            errors.error_at(
                &fields[id].ident,
                format!(
                    "two identity fields: `{}` is marked `#[field(identifier)]` and a field named `id` is the identity by convention; \
                     rename this field or drop the marker",
                    fields[*i].ident
                ),
            );
            Identity::Declared(*i)
        }
        ([first, rest @ ..], _) => {
            for &i in rest {
                let span = fields[i].options.identifier.unwrap_or_else(Span::call_site);
                errors.push(syn::Error::new(
                    span,
                    format!(
                        "two identity fields: `{}` is already the identity; an aggregate or entity has exactly one. \
                         Refer to other things with a plain `Identifier<T>` field",
                        fields[*first].ident
                    ),
                ));
            }
            Identity::Declared(*first)
        }
    }
}

/// The item with protean's helper attributes removed: what is emitted when expansion fails,
/// so the rest of the user's code still finds the type.
pub fn strip_helpers(item: &Item) -> TokenStream {
    let mut item = item.clone();
    let keep = |a: &Attribute| !a.path().is_ident(FIELD) && !a.path().is_ident(INVARIANT);
    match &mut item {
        Item::Struct(s) => {
            s.attrs.retain(keep);
            for f in s.fields.iter_mut() {
                f.attrs.retain(keep);
            }
        }
        Item::Enum(e) => e.attrs.retain(keep),
        _ => {}
    }
    item.into_token_stream()
}
