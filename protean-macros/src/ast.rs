//! The macros' intermediate form: an element and its fields, parsed from the item.
//!
//! Parsing only: each part keeps the tokens it came from, so that `valid` can check it
//! and report errors on the user's spans. The errors reported here are the ones of
//! shape and syntax, for what this form cannot hold: an item that is not a struct with
//! named fields (or, for a value object, an enum), an attribute value that does not parse.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Attribute, Fields, Ident, Item, Type, Visibility};

use crate::attr::{self, Args, FieldOptions, Invariants};
use crate::errors::Errors;
use crate::serde_attr::{rename_of, unraw, FieldSerde, Renamed, SerdeContainer};
use crate::symbol::{CORRELATE, EVENT_SOURCED, FIELD, INDEX, INVARIANT, KEY, NAME, PART_OF, RETURNS, UPCAST, VERSION};

/// Which macro is expanding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `#[aggregate]`.
    Aggregate,
    /// `#[entity]`.
    Entity,
    /// `#[value_object]`.
    ValueObject,
    /// `#[command]`.
    Command,
    /// `#[event]`.
    Event,
    /// `#[projection]`.
    Projection,
    /// `#[process_manager]` on a struct.
    ProcessManager,
}

impl Kind {
    /// The macro's name, as written in messages: `aggregate`.
    pub fn macro_name(self) -> &'static str {
        match self {
            Kind::Aggregate => "aggregate",
            Kind::Entity => "entity",
            Kind::ValueObject => "value_object",
            Kind::Command => "command",
            Kind::Event => "event",
            Kind::Projection => "projection",
            Kind::ProcessManager => "process_manager",
        }
    }

    /// Projections and process managers: state moved on by events, outside any cluster.
    pub fn fed_by_events(self) -> bool {
        matches!(self, Kind::Projection | Kind::ProcessManager)
    }

    /// Aggregates and entities: identity, associations, builders.
    pub fn has_identity(self) -> bool {
        matches!(self, Kind::Aggregate | Kind::Entity)
    }

    /// The keys the macro takes as arguments, in the order messages list them.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::Aggregate => &[EVENT_SOURCED],
            Kind::ValueObject => &[],
            Kind::Entity => &[PART_OF],
            Kind::Command => &[PART_OF, VERSION, NAME, RETURNS],
            Kind::Event => &[PART_OF, VERSION, NAME, UPCAST],
            Kind::Projection => &[VERSION],
            Kind::ProcessManager => &[CORRELATE],
        }
    }
}

/// How the type of a field is written, as far as the macros care.
#[derive(Clone)]
pub enum TypeShape {
    /// `Option<T>`.
    Option,
    /// `Vec<T>`.
    Vec,
    /// `HasMany<T>`, with `T`.
    HasMany(Type),
    /// `HasOne<T>`, with `T`.
    HasOne(Type),
    /// Anything else.
    Other,
}

impl TypeShape {
    /// The shape of `ty`, read from its last path segment.
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

    /// `HasMany<T>` or `HasOne<T>`: a field holding entities.
    pub fn holds_entities(&self) -> bool {
        matches!(self, TypeShape::HasMany(_) | TypeShape::HasOne(_))
    }
}

/// One named field of a struct element.
pub struct Field {
    /// The field's name.
    pub ident: Ident,
    /// The field's type, as written.
    pub ty: Type,
    /// The field's visibility, as written.
    pub vis: Visibility,
    /// The user's attributes, without `#[field]`.
    pub attrs: Vec<Attribute>,
    /// What its `#[field(..)]` attributes say.
    pub options: FieldOptions,
    /// Its doc comment, as text.
    pub docs: String,
    /// How its type is written.
    pub shape: TypeShape,
    /// `#[key]` (projections), at the attribute.
    pub key: Option<Span>,
    /// `#[index]` (projections), at the attribute.
    pub index: Option<Span>,
    /// Its `#[serde(rename ..)]`.
    pub rename: Renamed<String>,
    /// What its other `#[serde(..)]` keys say about its stored form.
    pub serde: FieldSerde,
}

impl Field {
    /// The field's name, as text.
    pub fn name(&self) -> String {
        self.ident.to_string()
    }
}

/// Which field, if any, is the element's identity.
pub enum Identity {
    /// The field at this index is the identity (of a projection: its `#[key]`).
    Declared(usize),
    /// The macro adds `id: Identifier<Self>`.
    Generated,
    /// Value objects, commands, events and process managers have none (nor a
    /// projection without a `#[key]`, which `valid` reports).
    None,
}

/// One variant of an enum value object.
pub struct Variant {
    /// The variant's name: the choice.
    pub ident: Ident,
    /// The user's attributes on it.
    pub attrs: Vec<Attribute>,
    /// Its fields, as written (a choice has none).
    pub fields: Fields,
    /// Its `#[serde(rename ..)]`.
    pub rename: Renamed<String>,
    /// Its discriminant, as written (a choice has none).
    pub discriminant: Option<syn::Expr>,
}

/// What the element is made of.
pub enum Body {
    /// A struct with named fields.
    Struct(Vec<Field>),
    /// An enum value object: a closed set of choices.
    Choices(Vec<Variant>),
}

/// A parsed domain element, with the macro's arguments it was declared with.
pub struct Element<'a> {
    /// Which macro declared it.
    pub kind: Kind,
    /// The type's name.
    pub ident: Ident,
    /// The type's visibility.
    pub vis: Visibility,
    /// The user's attributes, without `#[invariant]` and `#[serde]`.
    pub attrs: Vec<Attribute>,
    /// The user's `#[serde(..)]` attributes, emitted after the derives.
    pub serde: SerdeContainer,
    /// The macro's arguments.
    pub args: &'a Args,
    /// The type's generics, as written (an element has none).
    pub generics: syn::Generics,
    /// Its fields or choices.
    pub body: Body,
    /// Which field is the identity.
    pub identity: Identity,
    /// Its `#[invariant(..)]` attributes.
    pub invariants: Invariants,
    /// Its doc comment, as text.
    pub docs: String,
}

impl Element<'_> {
    /// Whether `field` is the identity, declared or generated (the generated one is named `id`).
    pub fn is_identity(&self, field: &Field) -> bool {
        match self.identity {
            Identity::Declared(i) => self.fields()[i].ident == field.ident,
            Identity::Generated => field.ident == "id",
            Identity::None => false,
        }
    }

    /// What `part_of = ..` names, if given.
    pub fn part_of(&self) -> Option<&syn::Path> {
        self.args.part_of.as_ref()
    }

    /// The fields of a struct element; none for a set of choices.
    pub fn fields(&self) -> &[Field] {
        match &self.body {
            Body::Struct(fields) => fields,
            Body::Choices(_) => &[],
        }
    }

    /// The key `field` is stored under in the element's JSON: its name, unless serde
    /// renames it (`#[serde(rename = "..")]` on it, `rename_all` on the element).
    pub fn stored_name(&self, field: &Field) -> String {
        if let Some(name) = &field.rename.serialize {
            return name.clone();
        }
        let name = unraw(&field.ident);
        match self.serde.rename_all.serialize {
            Some(rule) => rule.apply_to_field(&name),
            None => name,
        }
    }

    /// The name `variant` is stored under: its name, unless serde renames it.
    pub fn stored_choice(&self, variant: &Variant) -> String {
        if let Some(name) = &variant.rename.serialize {
            return name.clone();
        }
        let name = unraw(&variant.ident);
        match self.serde.rename_all.serialize {
            Some(rule) => rule.apply_to_variant(&name),
            None => name,
        }
    }
}

/// The doc comment in `attrs`, as text.
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

/// Records that `#[kind]` does not apply to `what` (at `span`).
fn wrong_item(kind: Kind, what: &str, span: Span, errors: &mut Errors) {
    let expected = match kind {
        Kind::ValueObject => "a struct with named fields, or an enum of unit variants (a set of choices)",
        Kind::ProcessManager => {
            "a struct with named fields (the state of a flow), and to an `impl` block of it (its steps)"
        }
        _ => "a struct with named fields",
    };
    errors.push(syn::Error::new(span, format!("`#[{}]` applies to {expected}, not to {what}", kind.macro_name())));
}

/// Where the body of an element comes from.
enum Members<'a> {
    /// The named fields of a struct.
    Fields(&'a syn::FieldsNamed),
    /// The variants of an enum value object.
    Variants(&'a syn::ItemEnum),
}

/// Parses the item declared with `args`. `None` when it is not something this macro can
/// expand at all (the error is recorded).
pub fn parse<'a>(kind: Kind, args: &'a Args, item: &Item, errors: &mut Errors) -> Option<Element<'a>> {
    let (ident, vis, attrs, generics, members) = match item {
        Item::Struct(s) => match &s.fields {
            Fields::Named(named) => (&s.ident, &s.vis, &s.attrs, &s.generics, Members::Fields(named)),
            Fields::Unnamed(f) => {
                wrong_item(kind, "a tuple struct", f.span(), errors);
                if kind == Kind::Projection {
                    unnamed_markers(f, errors);
                }
                return None;
            }
            Fields::Unit => {
                wrong_item(kind, "a unit struct", s.struct_token.span, errors);
                return None;
            }
        },
        Item::Enum(e) if kind == Kind::ValueObject => (&e.ident, &e.vis, &e.attrs, &e.generics, Members::Variants(e)),
        Item::Enum(e) => {
            wrong_item(kind, "an enum", e.enum_token.span, errors);
            return None;
        }
        Item::Union(u) => {
            wrong_item(kind, "a union", u.union_token.span, errors);
            return None;
        }
        other => {
            wrong_item(kind, "this item", other.span(), errors);
            return None;
        }
    };
    let invariants = attr::parse_invariants(attrs, errors);
    let body = match members {
        Members::Fields(named) => Body::Struct(parse_fields(kind, named, errors)),
        Members::Variants(e) => choices(e),
    };
    let identity = identity_of(kind, &body);
    Some(Element {
        kind,
        ident: ident.clone(),
        vis: vis.clone(),
        attrs: attrs.iter().filter(|a| !a.path().is_ident(INVARIANT) && !a.path().is_ident("serde")).cloned().collect(),
        serde: SerdeContainer::of(attrs),
        args,
        generics: generics.clone(),
        docs: docs_of(attrs),
        body,
        identity,
        invariants,
    })
}

/// The attributes of a field that are protean's own, removed from the output: `#[field]`,
/// and on a projection `#[key]` and `#[index]`.
pub fn is_field_helper(kind: Kind, attr: &Attribute) -> bool {
    attr.path().is_ident(FIELD)
        || (kind == Kind::Projection && (attr.path().is_ident(KEY) || attr.path().is_ident(INDEX)))
}

/// `#[key]` and `#[index]` on the fields of a tuple struct: they name fields.
fn unnamed_markers(fields: &syn::FieldsUnnamed, errors: &mut Errors) {
    for attr in fields.unnamed.iter().flat_map(|f| &f.attrs) {
        for marker in [KEY, INDEX] {
            if attr.path().is_ident(marker) {
                errors.error_at(
                    attr,
                    format!(
                        "`#[{marker}]` marks a named field, which rows are stored and queried by: \
                         give the projection named fields (`pub customer_id: Identifier<Customer>`)"
                    ),
                );
            }
        }
    }
}

/// The named fields, each with its `#[field(..)]` options (and, in a projection, its
/// `#[key]` and `#[index]` markers).
fn parse_fields(kind: Kind, named: &syn::FieldsNamed, errors: &mut Errors) -> Vec<Field> {
    let mut fields = Vec::new();
    for f in &named.named {
        let Some(ident) = f.ident.clone() else { continue };
        let projection = kind == Kind::Projection;
        fields.push(Field {
            key: projection.then(|| attr::parse_marker(&f.attrs, KEY, errors)).flatten(),
            index: projection.then(|| attr::parse_marker(&f.attrs, INDEX, errors)).flatten(),
            attrs: f.attrs.iter().filter(|a| !is_field_helper(kind, a)).cloned().collect(),
            docs: docs_of(&f.attrs),
            vis: f.vis.clone(),
            ty: f.ty.clone(),
            options: attr::parse_field_options(&f.attrs, errors),
            shape: TypeShape::of(&f.ty),
            rename: rename_of(&f.attrs),
            serde: FieldSerde::of(&f.attrs),
            ident,
        });
    }
    fields
}

/// The variants of an enum value object, as written.
fn choices(e: &syn::ItemEnum) -> Body {
    let variants = e.variants.iter().map(|v| Variant {
        ident: v.ident.clone(),
        attrs: v.attrs.clone(),
        fields: v.fields.clone(),
        rename: rename_of(&v.attrs),
        discriminant: v.discriminant.as_ref().map(|(_, d)| d.clone()),
    });
    Body::Choices(variants.collect())
}

/// The identity of an aggregate or entity: the first field marked `#[field(identifier)]`,
/// else the field named `id`, else a generated one; of a projection, its first `#[key]`
/// field. (`valid` reports a second one, and a projection without one.)
fn identity_of(kind: Kind, body: &Body) -> Identity {
    let Body::Struct(fields) = body else { return Identity::None };
    if kind == Kind::Projection {
        return fields.iter().position(|f| f.key.is_some()).map_or(Identity::None, Identity::Declared);
    }
    if !kind.has_identity() {
        return Identity::None;
    }
    let marked = fields.iter().position(|f| f.options.identifier.is_some());
    match marked.or_else(|| fields.iter().position(|f| f.ident == "id")) {
        Some(i) => Identity::Declared(i),
        None => Identity::Generated,
    }
}
