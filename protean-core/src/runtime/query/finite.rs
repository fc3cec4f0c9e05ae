//! A serializer that only looks for floats JSON cannot hold: what
//! [`bound`](super::field::bound) runs before `serde_json` (which writes them as null)
//! to refuse them by name.

use serde::ser::{self, Serialize};

/// A float that is NaN or infinite, as text; `None` for another failure, which
/// serde_json reports when it serializes the value.
#[derive(Debug)]
pub(super) struct NotFinite(pub(super) Option<String>);

impl std::fmt::Display for NotFinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_deref().unwrap_or("a value that does not serialize"))
    }
}

impl std::error::Error for NotFinite {}

impl ser::Error for NotFinite {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        NotFinite(None)
    }
}

/// Checks floats; everything else passes.
pub(super) struct Check;

fn float(value: f64) -> Result<(), NotFinite> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(NotFinite(Some(if value.is_nan() { "NaN".to_owned() } else { value.to_string() })))
    }
}

macro_rules! pass {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method(self, _: $ty) -> Result<(), NotFinite> {
            Ok(())
        }
    )*};
}

impl ser::Serializer for Check {
    type Ok = ();
    type Error = NotFinite;
    type SerializeSeq = Check;
    type SerializeTuple = Check;
    type SerializeTupleStruct = Check;
    type SerializeTupleVariant = Check;
    type SerializeMap = Check;
    type SerializeStruct = Check;
    type SerializeStructVariant = Check;

    pass!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    );

    fn serialize_f32(self, value: f32) -> Result<(), NotFinite> {
        float(f64::from(value))
    }
    fn serialize_f64(self, value: f64) -> Result<(), NotFinite> {
        float(value)
    }
    fn serialize_none(self) -> Result<(), NotFinite> {
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), NotFinite> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), NotFinite> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), NotFinite> {
        Ok(())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, value: &T) -> Result<(), NotFinite> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Result<(), NotFinite> {
        value.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Check, NotFinite> {
        Ok(Check)
    }
    fn serialize_tuple(self, _: usize) -> Result<Check, NotFinite> {
        Ok(Check)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Check, NotFinite> {
        Ok(Check)
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Check, NotFinite> {
        Ok(Check)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Check, NotFinite> {
        Ok(Check)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Check, NotFinite> {
        Ok(Check)
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Check, NotFinite> {
        Ok(Check)
    }
}

// Lists and objects are refused as bounds whatever they hold: nothing in them is checked.
macro_rules! compound {
    ($($trait:ident { $($method:ident),* }),* $(,)?) => {$(
        impl ser::$trait for Check {
            type Ok = ();
            type Error = NotFinite;
            $(
                fn $method<T: ?Sized + Serialize>(&mut self, _: &T) -> Result<(), NotFinite> {
                    Ok(())
                }
            )*
            fn end(self) -> Result<(), NotFinite> {
                Ok(())
            }
        }
    )*};
}
compound!(
    SerializeSeq { serialize_element },
    SerializeTuple { serialize_element },
    SerializeTupleStruct { serialize_field },
    SerializeTupleVariant { serialize_field },
    SerializeMap { serialize_key, serialize_value },
);

impl ser::SerializeStruct for Check {
    type Ok = ();
    type Error = NotFinite;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, _: &'static str, _: &T) -> Result<(), NotFinite> {
        Ok(())
    }
    fn end(self) -> Result<(), NotFinite> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Check {
    type Ok = ();
    type Error = NotFinite;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, _: &'static str, _: &T) -> Result<(), NotFinite> {
        Ok(())
    }
    fn end(self) -> Result<(), NotFinite> {
        Ok(())
    }
}
