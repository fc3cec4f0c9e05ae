//! What the macros read of the user's `#[serde(..)]` attributes.
//!
//! Serde's container attributes pass through to the derives the macros add (after them,
//! where serde's derive helper must be). The macros read three things from them: the
//! names fields and choices are stored under (`rename_all`, a field's or variant's
//! `rename`), because protean reads stored JSON by those names (a projection's indexed
//! fields, a flow's correlation field) and writes a choice's name; whether the user names
//! serde's crate (`crate = ".."`), which then replaces the one the macros give; and the
//! attributes that cannot work on the element, which `valid` reports.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Ident, LitStr};

/// How serde's `rename_all` renames fields and variants. The rules and their names are
/// serde's (`serde_derive`'s `case.rs`), so that the names computed here are the names
/// serde writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RenameRule {
    /// `"lowercase"`.
    Lower,
    /// `"UPPERCASE"`.
    Upper,
    /// `"PascalCase"`.
    Pascal,
    /// `"camelCase"`.
    Camel,
    /// `"snake_case"`.
    Snake,
    /// `"SCREAMING_SNAKE_CASE"`.
    ScreamingSnake,
    /// `"kebab-case"`.
    Kebab,
    /// `"SCREAMING-KEBAB-CASE"`.
    ScreamingKebab,
}

impl RenameRule {
    /// The rule serde names `name`; `None` for a name serde does not know (serde reports it).
    fn from_name(name: &str) -> Option<RenameRule> {
        Some(match name {
            "lowercase" => RenameRule::Lower,
            "UPPERCASE" => RenameRule::Upper,
            "PascalCase" => RenameRule::Pascal,
            "camelCase" => RenameRule::Camel,
            "snake_case" => RenameRule::Snake,
            "SCREAMING_SNAKE_CASE" => RenameRule::ScreamingSnake,
            "kebab-case" => RenameRule::Kebab,
            "SCREAMING-KEBAB-CASE" => RenameRule::ScreamingKebab,
            _ => return None,
        })
    }

    /// A field's name (written in snake case) under this rule.
    pub fn apply_to_field(self, field: &str) -> String {
        match self {
            RenameRule::Lower | RenameRule::Snake => field.to_owned(),
            RenameRule::Upper | RenameRule::ScreamingSnake => field.to_ascii_uppercase(),
            RenameRule::Pascal => {
                let mut pascal = String::new();
                let mut capitalize = true;
                for ch in field.chars() {
                    if ch == '_' {
                        capitalize = true;
                    } else if capitalize {
                        pascal.push(ch.to_ascii_uppercase());
                        capitalize = false;
                    } else {
                        pascal.push(ch);
                    }
                }
                pascal
            }
            RenameRule::Camel => lower_first(&RenameRule::Pascal.apply_to_field(field)),
            RenameRule::Kebab => field.replace('_', "-"),
            RenameRule::ScreamingKebab => field.to_ascii_uppercase().replace('_', "-"),
        }
    }

    /// A variant's name (written in Pascal case) under this rule.
    pub fn apply_to_variant(self, variant: &str) -> String {
        match self {
            RenameRule::Pascal => variant.to_owned(),
            RenameRule::Lower => variant.to_ascii_lowercase(),
            RenameRule::Upper => variant.to_ascii_uppercase(),
            RenameRule::Camel => lower_first(variant),
            RenameRule::Snake => {
                let mut snake = String::new();
                for (i, ch) in variant.char_indices() {
                    if i > 0 && ch.is_uppercase() {
                        snake.push('_');
                    }
                    snake.push(ch.to_ascii_lowercase());
                }
                snake
            }
            RenameRule::ScreamingSnake => RenameRule::Snake.apply_to_variant(variant).to_ascii_uppercase(),
            RenameRule::Kebab => RenameRule::Snake.apply_to_variant(variant).replace('_', "-"),
            RenameRule::ScreamingKebab => RenameRule::ScreamingSnake.apply_to_variant(variant).replace('_', "-"),
        }
    }
}

/// `text` with its first character in lower case.
fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// A name given for serialization and for deserialization (`rename = ".."` gives both;
/// `rename(serialize = "..", deserialize = "..")` each, or one of them).
#[derive(Clone)]
pub struct Renamed<T> {
    /// The name (or rule) serde writes with.
    pub serialize: Option<T>,
    /// The name (or rule) serde reads with.
    pub deserialize: Option<T>,
    /// Where it is written, when it is.
    pub span: Option<Span>,
}

impl<T> Default for Renamed<T> {
    fn default() -> Self {
        Renamed { serialize: None, deserialize: None, span: None }
    }
}

impl<T: PartialEq> Renamed<T> {
    /// Whether serde reads with other names than it writes with.
    pub fn differs(&self) -> bool {
        self.span.is_some() && self.serialize != self.deserialize
    }
}

/// What the user's `#[serde(..)]` attributes on the type say, as far as protean cares.
#[derive(Default)]
pub struct SerdeContainer {
    /// The user's `#[serde(..)]` attributes on the type, as written.
    pub attrs: Vec<Attribute>,
    /// `rename_all`.
    pub rename_all: Renamed<RenameRule>,
    /// Whether `crate = ".."` is given.
    pub names_crate: bool,
    /// Every key given, in order.
    pub keys: Vec<Ident>,
    /// `tag = ".."`: the key the type's name is written under.
    pub tag: Option<String>,
    /// `deny_unknown_fields`.
    pub deny_unknown_fields: bool,
    /// `default` on the type: every missing field takes the type's `Default`.
    pub default: bool,
}

impl SerdeContainer {
    /// The user's `#[serde(..)]` attributes among `attrs`, read.
    pub fn of(attrs: &[Attribute]) -> SerdeContainer {
        let mut container = SerdeContainer::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
            container.attrs.push(attr.clone());
            // A list serde cannot read is reported by serde's derive.
            let _ = attr.parse_nested_meta(|meta| {
                if let Some(key) = meta.path.get_ident() {
                    container.keys.push(key.clone());
                }
                if meta.path.is_ident("rename_all") {
                    let names = renamed(&meta)?;
                    container.rename_all = Renamed {
                        serialize: names.serialize.and_then(|n| RenameRule::from_name(&n)),
                        deserialize: names.deserialize.and_then(|n| RenameRule::from_name(&n)),
                        span: names.span,
                    };
                    return Ok(());
                }
                if meta.path.is_ident("tag") && meta.input.peek(syn::Token![=]) {
                    container.tag = Some(meta.value()?.parse::<LitStr>()?.value());
                    return Ok(());
                }
                container.names_crate |= meta.path.is_ident("crate");
                container.deny_unknown_fields |= meta.path.is_ident("deny_unknown_fields");
                container.default |= meta.path.is_ident("default");
                skip_value(&meta)
            });
        }
        container
    }

    /// The first key among `keys` given, if any.
    pub fn given(&self, keys: &[&str]) -> Option<&Ident> {
        self.keys.iter().find(|k| keys.iter().any(|key| *k == key))
    }
}

/// The `rename` of a field or variant's `#[serde(..)]` attributes.
pub fn rename_of(attrs: &[Attribute]) -> Renamed<String> {
    let mut found = Renamed::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                found = renamed(&meta)?;
                return Ok(());
            }
            skip_value(&meta)
        });
    }
    found
}

/// What the user's `#[serde(..)]` attributes on a field say about its stored form.
#[derive(Default)]
pub struct FieldSerde {
    /// `default` or `default = ".."`: a missing value takes a default.
    pub default: bool,
    /// `skip` or `skip_deserializing`: never read, always the default.
    pub skip_reading: bool,
    /// `skip`, `skip_serializing` or `skip_serializing_if = ".."`: may be left out when written.
    pub may_be_omitted: bool,
    /// `flatten`: its fields are written at the level of the field's owner.
    pub flatten: bool,
    /// `alias = ".."`: other names accepted when read.
    pub aliases: Vec<String>,
}

impl FieldSerde {
    /// The user's `#[serde(..)]` attributes among a field's `attrs`, read.
    pub fn of(attrs: &[Attribute]) -> FieldSerde {
        let mut found = FieldSerde::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
            // A list serde cannot read is reported by serde's derive.
            let _ = attr.parse_nested_meta(|meta| {
                let key = meta.path.get_ident().map(Ident::to_string).unwrap_or_default();
                match key.as_str() {
                    "alias" if meta.input.peek(syn::Token![=]) => {
                        found.aliases.push(meta.value()?.parse::<LitStr>()?.value());
                        return Ok(());
                    }
                    "default" => found.default = true,
                    "skip" => (found.skip_reading, found.may_be_omitted) = (true, true),
                    "skip_deserializing" => found.skip_reading = true,
                    "skip_serializing" | "skip_serializing_if" => found.may_be_omitted = true,
                    "flatten" => found.flatten = true,
                    _ => {}
                }
                skip_value(&meta)
            });
        }
        found.aliases.sort();
        found
    }
}

/// `key = "name"` or `key(serialize = "name", deserialize = "name")`.
fn renamed(meta: &ParseNestedMeta) -> syn::Result<Renamed<String>> {
    let span = Some(meta.path.get_ident().map_or_else(Span::call_site, Ident::span));
    if meta.input.peek(syn::Token![=]) {
        let name = meta.value()?.parse::<LitStr>()?.value();
        return Ok(Renamed { serialize: Some(name.clone()), deserialize: Some(name), span });
    }
    let mut names = Renamed { span, ..Renamed::default() };
    meta.parse_nested_meta(|inner| {
        let name = inner.value()?.parse::<LitStr>()?.value();
        if inner.path.is_ident("serialize") {
            names.serialize = Some(name);
        } else if inner.path.is_ident("deserialize") {
            names.deserialize = Some(name);
        }
        Ok(())
    })?;
    Ok(names)
}

/// Skips the value of a key (`= expr` or `(..)`), so that the keys after it are read.
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        let _: syn::Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        let _content;
        syn::parenthesized!(_content in meta.input);
    }
    Ok(())
}

/// A field's name without its raw prefix: `type` for `r#type`, as serde has it.
pub fn unraw(ident: &Ident) -> String {
    let name = ident.to_string();
    name.strip_prefix("r#").map(str::to_owned).unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::RenameRule::{self, *};

    /// serde's own table (serde_derive's `case.rs` tests).
    #[test]
    fn rules_rename_as_serde_does() {
        let fields: &[(&str, [&str; 8])] = &[
            ("outcome", ["outcome", "OUTCOME", "Outcome", "outcome", "outcome", "OUTCOME", "outcome", "OUTCOME"]),
            (
                "very_tasty",
                [
                    "very_tasty",
                    "VERY_TASTY",
                    "VeryTasty",
                    "veryTasty",
                    "very_tasty",
                    "VERY_TASTY",
                    "very-tasty",
                    "VERY-TASTY",
                ],
            ),
            ("a", ["a", "A", "A", "a", "a", "A", "a", "A"]),
            ("z42", ["z42", "Z42", "Z42", "z42", "z42", "Z42", "z42", "Z42"]),
        ];
        let rules: [RenameRule; 8] = [Lower, Upper, Pascal, Camel, Snake, ScreamingSnake, Kebab, ScreamingKebab];
        for (field, expected) in fields {
            for (rule, name) in rules.iter().zip(expected) {
                assert_eq!(rule.apply_to_field(field), *name, "{rule:?} of {field}");
            }
        }
        let variants: &[(&str, [&str; 8])] = &[
            ("Outcome", ["outcome", "OUTCOME", "Outcome", "outcome", "outcome", "OUTCOME", "outcome", "OUTCOME"]),
            (
                "VeryTasty",
                [
                    "verytasty",
                    "VERYTASTY",
                    "VeryTasty",
                    "veryTasty",
                    "very_tasty",
                    "VERY_TASTY",
                    "very-tasty",
                    "VERY-TASTY",
                ],
            ),
            ("A", ["a", "A", "A", "a", "a", "A", "a", "A"]),
            ("Z42", ["z42", "Z42", "Z42", "z42", "z42", "Z42", "z42", "Z42"]),
        ];
        for (variant, expected) in variants {
            for (rule, name) in rules.iter().zip(expected) {
                assert_eq!(rule.apply_to_variant(variant), *name, "{rule:?} of {variant}");
            }
        }
    }
}
