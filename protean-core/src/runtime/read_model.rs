//! Read models and their keys: [`ReadModel`], what a unit of work reads by key, and
//! the [`ProjectionKey`] and [`AsKey`] traits its keys are written with.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::identity::Identifier;

/// Data a handler may read but never change: a view kept for lookups, such as a
/// product's current price or a customer's name. It is not an aggregate, has no
/// version and is not saved by the unit of work; projections or application code write
/// it with [`Domain::put_read_model`](crate::runtime::Domain::put_read_model).
///
/// ```
/// # extern crate protean_core as protean;
/// use protean::runtime::ReadModel;
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct ProductPrice { sku: String, cents: i64 }
/// impl ReadModel for ProductPrice {
///     const NAME: &'static str = "ProductPrice";
///     type Key = String; // read with `ctx.read::<ProductPrice>("SKU-1")` or `(&sku)`
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a read model",
    label = "`ctx.read` returns read models only",
    note = "implement `ReadModel` for a view type; an aggregate is changed through its own handlers, not read here"
)]
pub trait ReadModel: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The name it is stored under (a table or a key prefix).
    const NAME: &'static str;
    /// The type of the keys it is stored under: reads take a `&Key` (or what a `Key`
    /// borrows as: a `&str` for a `String`; see [`AsKey`]). A
    /// `#[projection]`'s is its `#[key]` field's type.
    type Key: ProjectionKey + ?Sized;
    /// Whether it is a `#[projection]`, whose rows the store keeps in copies (set by
    /// the macro; a hand-written read model leaves it `false`).
    #[doc(hidden)]
    const PROJECTED: bool = false;
}

/// What looks up rows keyed by `K`: a `K`, or what `K` borrows as (a `str` for a
/// `String` key), as `HashMap::get` takes keys. Reads take `&(impl AsKey<V::Key>)`, where
/// `V::Key` is the read model's key type ([`ReadModel::Key`]; a projection's `#[key]`
/// field's type), so `ctx.read::<LoanView>(&cmd.loan_id)` compiles and a key of another
/// type does not.
pub trait AsKey<K: ?Sized> {
    /// The key as stored.
    fn key_text(&self) -> String;
}

impl<K: std::borrow::Borrow<Q> + ?Sized, Q: ProjectionKey + ?Sized> AsKey<K> for Q {
    fn key_text(&self) -> String {
        ProjectionKey::key_text(self)
    }
}

/// A value that keys projection rows (and process manager instances): its text.
pub trait ProjectionKey {
    /// The key as stored.
    fn key_text(&self) -> String;
}

impl<T: ?Sized> ProjectionKey for Identifier<T> {
    fn key_text(&self) -> String {
        self.to_string()
    }
}

impl ProjectionKey for str {
    fn key_text(&self) -> String {
        self.to_owned()
    }
}

impl ProjectionKey for String {
    fn key_text(&self) -> String {
        self.clone()
    }
}

impl ProjectionKey for uuid::Uuid {
    fn key_text(&self) -> String {
        self.to_string()
    }
}

macro_rules! integer_keys {
    ($($t:ty),*) => {$(
        impl ProjectionKey for $t {
            fn key_text(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
integer_keys!(u8, u16, u32, u64, i8, i16, i32, i64, usize, isize);

impl<T: ProjectionKey + ?Sized> ProjectionKey for &T {
    fn key_text(&self) -> String {
        (**self).key_text()
    }
}
