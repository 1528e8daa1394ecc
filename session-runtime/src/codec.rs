//! How generated code encodes, decodes and defaults one field: the per-field [`Codec`] and the
//! compile-time checks on field types, whose diagnostics point at the user's field.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{DecodeError, EncodeError};
use crate::schema::Databag;

/// A type that can be a stored session field.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored in a session field",
    label = "this field's type does not implement serde's `Serialize` and `DeserializeOwned`",
    note = "derive `serde::Serialize` and `serde::Deserialize` for `{Self}`, or mark the field `#[databag(skip)]` if it should not be stored"
)]
pub trait StoredField: Serialize + DeserializeOwned + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> StoredField for T {}

/// How one stored field is encoded and decoded.
///
/// Generated code makes one `Codec` per stored field, in a constant spanned at the field's
/// type: that constant is the only place that requires [`StoredField`], so a field type
/// without serde support is reported once, at the field, and not again at every use.
pub struct Codec<V> {
    encode: fn(&V, &mut Vec<u8>) -> Result<(), rmp_serde::encode::Error>,
    decode: fn(&[u8]) -> Result<V, rmp_serde::decode::Error>,
}

impl<V> Codec<V> {
    /// The codec of a storable type.
    #[must_use]
    #[allow(clippy::new_without_default)] // only ever built in a constant
    pub const fn new() -> Self
    where
        V: StoredField,
    {
        Self {
            encode: encode_raw::<V>,
            decode: decode_raw::<V>,
        }
    }

    /// Appends the encoding of `value` to `out`.
    #[inline]
    pub fn encode<T: Databag>(
        &self,
        field: &'static str,
        value: &V,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        (self.encode)(value, out).map_err(|source| EncodeError::Field {
            field,
            type_name: core::any::type_name::<T>(),
            source,
        })
    }

    /// Decodes a value stored under `key`, after the structural check of
    /// [`guard`](crate::guard) (bounded nesting, honest lengths).
    #[inline]
    pub fn decode<T: Databag>(&self, key: &'static str, bytes: &[u8]) -> Result<V, DecodeError> {
        crate::guard::check(bytes).map_err(|reason| DecodeError::Rejected {
            key,
            type_name: core::any::type_name::<T>(),
            reason,
        })?;
        (self.decode)(bytes).map_err(|source| DecodeError::Field {
            key,
            type_name: core::any::type_name::<T>(),
            source,
        })
    }
}

/// MessagePack with structs as maps, so nested structs survive field reordering.
fn encode_raw<V: Serialize>(value: &V, out: &mut Vec<u8>) -> Result<(), rmp_serde::encode::Error> {
    let mut serializer = rmp_serde::Serializer::new(out).with_struct_map();
    value.serialize(&mut serializer)
}

fn decode_raw<V: DeserializeOwned>(bytes: &[u8]) -> Result<V, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}

/// A type that can be a `#[databag(skip)]` field.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a session field",
    label = "session data is shared across threads: this type must be `Send + Sync + 'static`"
)]
pub trait SkippedField: Send + Sync + 'static {}

impl<T: Send + Sync + 'static> SkippedField for T {}

/// Compile-time check for a skipped field's type.
#[inline(always)]
pub const fn assert_skipped_field<T: SkippedField>() {}

/// A type that can take its default from `Default` when no `#[databag(default = ..)]` is given.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no default value for a session field",
    label = "this field's type does not implement `Default`",
    note = "give the field a default with `#[databag(default = EXPR)]`, or implement `Default` for `{Self}`"
)]
pub trait DefaultField {
    /// The default.
    fn default_field() -> Self;
}

impl<T: Default> DefaultField for T {
    #[inline]
    fn default_field() -> Self {
        T::default()
    }
}

/// The default value of a field without `#[databag(default = ..)]`.
#[inline]
pub fn default_value<T: DefaultField>() -> T {
    T::default_field()
}

/// The error for an out-of-range field index.
#[cold]
pub fn no_such_field<T: Databag>(index: usize) -> EncodeError {
    EncodeError::NoSuchField {
        index,
        type_name: core::any::type_name::<T>(),
    }
}
