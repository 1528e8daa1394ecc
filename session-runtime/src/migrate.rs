//! Schema migration glue for `#[databag(migrate_from = Prev)]`: decoding an older record
//! through its ancestor type and converting it, checked at compile time.

use crate::error::DecodeError;
use crate::schema::{Databag, RawField};

/// A session type that can be built from `Prev` when migrating an old record.
#[diagnostic::on_unimplemented(
    message = "`{Self}` declares `migrate_from = {Prev}` but cannot be built from `{Prev}`",
    label = "no `From<{Prev}>` for `{Self}`",
    note = "write the migration: `impl From<{Prev}> for {Self} {{ fn from(old: {Prev}) -> Self {{ .. }} }}`"
)]
pub trait MigratesFrom<Prev>: From<Prev> {}

impl<Prev, T: From<Prev>> MigratesFrom<Prev> for T {}

/// Decodes a record of an older version into `T`.
pub type MigrateFn<T> = fn(u32, &[RawField<'_>]) -> Result<T, DecodeError>;

/// The migration from `Prev` to `T`, checked at compile time: `Prev` is a `Databag` of a
/// lower version and `T: From<Prev>`. Generated code evaluates it in one constant spanned at
/// the `migrate_from` type, so each mistake is reported once, there.
pub const fn migration<Prev: Databag, T: Databag + MigratesFrom<Prev>>() -> MigrateFn<T> {
    assert!(
        Prev::VERSION < T::VERSION,
        "`migrate_from` must name a Databag with a lower `version` than this struct's"
    );
    migrate::<Prev, T>
}

/// Decodes an older record through `Prev` (recursively down its own `migrate_from` chain)
/// and converts it to `T`.
fn migrate<Prev: Databag, T: Databag + From<Prev>>(
    version: u32,
    fields: &[RawField<'_>],
) -> Result<T, DecodeError> {
    if version > Prev::VERSION {
        // Between `Prev` and `T`: no struct of that version is in the chain.
        return Err(DecodeError::NoMigrationPath {
            found: version,
            current: T::VERSION,
            type_name: core::any::type_name::<T>(),
        });
    }
    let previous =
        crate::record::decode_fields::<Prev>(version, fields).map_err(|error| match error {
            DecodeError::NoMigrationPath { found, .. } => DecodeError::NoMigrationPath {
                found,
                current: T::VERSION,
                type_name: core::any::type_name::<T>(),
            },
            other => other,
        })?;
    Ok(T::from(previous.value))
}
