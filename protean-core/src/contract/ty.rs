//! The lock's schema language for stored types, and how a type may change.

use std::fmt::{self, Write as _};

use crate::model::field::FieldShape;

/// A type, in the lock's stable schema language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    /// `bool`.
    Bool,
    /// `char`.
    Char,
    /// `int8` … `int128` (`isize` is `int64`).
    Int(u8),
    /// `uint8` … `uint128` (`usize` is `uint64`).
    Uint(u8),
    /// `float32`, `float64`.
    Float(u8),
    /// `text`.
    Text,
    /// `uuid`.
    Uuid,
    /// `timestamp`: a `SystemTime`, stored as seconds and nanoseconds since the epoch.
    Timestamp,
    /// `identifier(Target)`: the identity of an aggregate or entity, stored as text.
    Identifier(String),
    /// `choice(a|b)`: one of the stored names, sorted.
    Choice(Vec<String>),
    /// `object`: a value object, whose fields have lines of their own.
    Object,
    /// `list(T)`.
    List(Box<Ty>),
    /// `optional(T)`.
    Optional(Box<Ty>),
    /// `rust:Name`: a type the lock has no word for, kept as written.
    Other(String),
}

impl Ty {
    /// The type of a field of this shape.
    pub(crate) fn of(shape: &FieldShape) -> Ty {
        match shape {
            FieldShape::Primitive { name } => Ty::primitive(&name.replace(' ', "")),
            FieldShape::Identifier { target } => Ty::Identifier((*target).to_owned()),
            FieldShape::ValueObject { .. } => Ty::Object,
            FieldShape::Choices { choices, .. } => {
                let mut names: Vec<String> = choices.iter().map(|c| (*c).to_owned()).collect();
                names.sort();
                Ty::Choice(names)
            }
            // Entities, in their aggregate's record: a list, or one or none.
            FieldShape::HasMany { .. } => Ty::List(Box::new(Ty::Object)),
            FieldShape::HasOne { .. } => Ty::Optional(Box::new(Ty::Object)),
            FieldShape::Optional { of } => Ty::Optional(Box::new(Ty::of(of))),
            FieldShape::List { of } => Ty::List(Box::new(Ty::of(of))),
        }
    }

    fn primitive(name: &str) -> Ty {
        match name {
            "bool" => Ty::Bool,
            "char" => Ty::Char,
            "i8" => Ty::Int(8),
            "i16" => Ty::Int(16),
            "i32" => Ty::Int(32),
            "i64" | "isize" => Ty::Int(64),
            "i128" => Ty::Int(128),
            "u8" => Ty::Uint(8),
            "u16" => Ty::Uint(16),
            "u32" => Ty::Uint(32),
            "u64" | "usize" => Ty::Uint(64),
            "u128" => Ty::Uint(128),
            "f32" => Ty::Float(32),
            "f64" => Ty::Float(64),
            "String" => Ty::Text,
            "uuid::Uuid" | "Uuid" => Ty::Uuid,
            "std::time::SystemTime" | "SystemTime" => Ty::Timestamp,
            other => Ty::Other(other.to_owned()),
        }
    }

    /// Parses the lock's spelling of a type.
    pub(crate) fn parse(text: &str) -> Option<Ty> {
        let inner = |prefix: &str| text.strip_prefix(prefix).and_then(|t| t.strip_suffix(')'));
        if let Some(of) = inner("list(") {
            return Ty::parse(of).map(|t| Ty::List(Box::new(t)));
        }
        if let Some(of) = inner("optional(") {
            return Ty::parse(of).map(|t| Ty::Optional(Box::new(t)));
        }
        if let Some(target) = inner("identifier(") {
            return Some(Ty::Identifier(unescape(target)));
        }
        if let Some(names) = inner("choice(") {
            return Some(Ty::Choice(names.split('|').filter(|n| !n.is_empty()).map(unescape).collect()));
        }
        if let Some(name) = text.strip_prefix("rust:") {
            return Some(Ty::Other(unescape(name)));
        }
        let bits = |prefix: &str| text.strip_prefix(prefix).and_then(|b| b.parse::<u8>().ok());
        Some(match text {
            "bool" => Ty::Bool,
            "char" => Ty::Char,
            "text" => Ty::Text,
            "uuid" => Ty::Uuid,
            "timestamp" => Ty::Timestamp,
            "object" => Ty::Object,
            _ => {
                if let Some(b) = bits("uint") {
                    Ty::Uint(b)
                } else if let Some(b) = bits("int") {
                    Ty::Int(b)
                } else if let Some(b) = bits("float") {
                    Ty::Float(b)
                } else {
                    return None;
                }
            }
        })
    }

    /// The type in words, for messages: "integer", "text", "a list of integer".
    pub fn words(&self) -> String {
        match self {
            Ty::Bool => "true/false".into(),
            Ty::Char => "a character".into(),
            Ty::Int(_) | Ty::Uint(_) => "integer".into(),
            Ty::Float(_) => "number".into(),
            Ty::Text => "text".into(),
            Ty::Uuid => "a UUID".into(),
            Ty::Timestamp => "a time".into(),
            Ty::Identifier(target) => format!("an identifier of {target}"),
            Ty::Choice(names) => format!("one of {}", names.join(", ")),
            Ty::Object => "an object".into(),
            Ty::List(of) => format!("a list of {}", of.words()),
            Ty::Optional(of) => format!("optional {}", of.words()),
            Ty::Other(name) => format!("`{name}`"),
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Bool => f.write_str("bool"),
            Ty::Char => f.write_str("char"),
            Ty::Int(b) => write!(f, "int{b}"),
            Ty::Uint(b) => write!(f, "uint{b}"),
            Ty::Float(b) => write!(f, "float{b}"),
            Ty::Text => f.write_str("text"),
            Ty::Uuid => f.write_str("uuid"),
            Ty::Timestamp => f.write_str("timestamp"),
            Ty::Identifier(target) => write!(f, "identifier({})", escape(target)),
            Ty::Choice(names) => {
                let names: Vec<String> = names.iter().map(|n| escape(n)).collect();
                write!(f, "choice({})", names.join("|"))
            }
            Ty::Object => f.write_str("object"),
            Ty::List(of) => write!(f, "list({of})"),
            Ty::Optional(of) => write!(f, "optional({of})"),
            Ty::Other(name) => write!(f, "rust:{}", escape(name)),
        }
    }
}

/// How the type of a field changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compat {
    Same,
    /// Every old value reads as the new type (`int32` to `int64`, `T` to `optional(T)`).
    Widened,
    /// Some old values do not read as the new type.
    Narrowed,
    /// No old value reads as the new type.
    Changed,
    ChoicesAdded,
    ChoicesRemoved,
    /// Both stored as text: only the meaning changed.
    TargetChanged,
}

pub(crate) fn compat(old: &Ty, new: &Ty) -> Compat {
    use Compat::*;
    let textual = |t: &Ty| matches!(t, Ty::Identifier(_) | Ty::Uuid);
    match (old, new) {
        _ if old == new => Same,
        (Ty::Int(a), Ty::Int(b)) | (Ty::Uint(a), Ty::Uint(b)) | (Ty::Float(a), Ty::Float(b)) => {
            if b > a {
                Widened
            } else {
                Narrowed
            }
        }
        (Ty::Uint(a), Ty::Int(b)) => {
            if b > a {
                Widened
            } else {
                Narrowed
            }
        }
        (Ty::Int(_), Ty::Uint(_)) => Narrowed,
        (Ty::Int(_) | Ty::Uint(_), Ty::Float(_)) => Widened,
        (Ty::Float(_), Ty::Int(_) | Ty::Uint(_)) => Narrowed,
        (Ty::Identifier(_), Ty::Identifier(_)) => TargetChanged,
        (a, b) if textual(a) && textual(b) => TargetChanged,
        (a, Ty::Text) if textual(a) => Widened,
        (Ty::Text, b) if textual(b) => Narrowed,
        (Ty::Char, Ty::Text) => Widened,
        (Ty::Text, Ty::Char) => Narrowed,
        (Ty::Choice(a), Ty::Choice(b)) => {
            if a.iter().all(|c| b.contains(c)) {
                ChoicesAdded
            } else {
                ChoicesRemoved
            }
        }
        (Ty::List(a), Ty::List(b)) => compat(a, b),
        (Ty::Optional(a), Ty::Optional(b)) => compat(a, b),
        (a, Ty::Optional(b)) => match compat(a, b) {
            Same | Widened | TargetChanged | ChoicesAdded => Widened,
            other => other,
        },
        (Ty::Optional(a), b) => match compat(a, b) {
            Same | Widened | TargetChanged | ChoicesAdded | Narrowed => Narrowed,
            other => other,
        },
        _ => Changed,
    }
}

/// Characters the lock's words cannot hold as they are (its separators), escaped as
/// `%XX` so that any stored name round-trips.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, '%' | '|' | ',' | '(' | ')' | '=' | '#') || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The reverse of [`escape`].
pub(crate) fn unescape(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if let (b'%', Some(Some(high)), Some(Some(low))) =
            (bytes[i], bytes.get(i + 1).map(|b| hex(*b)), bytes.get(i + 2).map(|b| hex(*b)))
        {
            // Two hex digits make a byte below 256.
            out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_through_their_spelling() {
        let types = [
            Ty::Bool,
            Ty::Int(64),
            Ty::Uint(32),
            Ty::Float(64),
            Ty::Text,
            Ty::Uuid,
            Ty::Timestamp,
            Ty::Identifier("Customer".into()),
            Ty::Choice(vec!["AUDIO_BOOK".into(), "e book".into(), "x|y".into()]),
            Ty::List(Box::new(Ty::Optional(Box::new(Ty::Object)))),
            Ty::Other("HasMany<Line>".into()),
        ];
        for ty in types {
            assert_eq!(Ty::parse(&ty.to_string()), Some(ty.clone()), "{ty}");
        }
    }

    #[test]
    fn names_with_separators_are_escaped_and_read_back() {
        for name in ["plain", "with space", "a|b", "50%", "x=(1,2)", "é"] {
            assert_eq!(unescape(&escape(name)), name);
            assert!(!escape(name).contains(' '));
        }
    }

    #[test]
    fn widening_and_narrowing() {
        let int = |b| Ty::Int(b);
        assert_eq!(compat(&int(32), &int(64)), Compat::Widened);
        assert_eq!(compat(&int(64), &int(32)), Compat::Narrowed);
        assert_eq!(compat(&Ty::Uint(32), &int(64)), Compat::Widened);
        assert_eq!(compat(&int(64), &Ty::Float(64)), Compat::Widened);
        assert_eq!(compat(&int(64), &Ty::Text), Compat::Changed);
        assert_eq!(compat(&int(64), &Ty::Optional(Box::new(int(64)))), Compat::Widened);
        assert_eq!(compat(&Ty::Optional(Box::new(int(64))), &int(64)), Compat::Narrowed);
        assert_eq!(compat(&Ty::Identifier("A".into()), &Ty::Identifier("B".into())), Compat::TargetChanged);
        let choice = |c: &[&str]| Ty::Choice(c.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(compat(&choice(&["a"]), &choice(&["a", "b"])), Compat::ChoicesAdded);
        assert_eq!(compat(&choice(&["a", "b"]), &choice(&["a"])), Compat::ChoicesRemoved);
        assert_eq!(compat(&Ty::List(Box::new(int(32))), &Ty::List(Box::new(int(64)))), Compat::Widened);
    }
}
