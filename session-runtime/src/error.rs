//! Errors of encoding and decoding session records.

/// A session value could not be encoded for storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A field's `Serialize` implementation failed.
    #[error("could not encode session field `{field}` of `{type_name}`")]
    Field {
        /// The Rust name of the field.
        field: &'static str,
        /// The session data type.
        type_name: &'static str,
        /// What MessagePack encoding reported.
        #[source]
        source: rmp_serde::encode::Error,
    },
    /// An index past the end of [`Databag::FIELDS`](crate::Databag::FIELDS) was asked for.
    #[error("`{type_name}` has no stored field with index {index}")]
    NoSuchField {
        /// The index asked for.
        index: usize,
        /// The session data type.
        type_name: &'static str,
    },
    /// A record part was too large for the wire format (over `u32::MAX` bytes or entries).
    #[error("session record is too large to encode: {what}")]
    TooLarge {
        /// Which part overflowed.
        what: &'static str,
    },
}

/// A stored session record could not be turned back into session data.
///
/// The session layer never shows this error to a client: it starts a fresh session and logs
/// the error instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not a session record at all (truncated, wrong framing, garbage).
    #[error("malformed session record: {reason}")]
    Malformed {
        /// What was wrong with the framing.
        reason: &'static str,
    },
    /// One field's stored value does not decode as the field's current type.
    #[error("could not decode session field `{key}` of `{type_name}`")]
    Field {
        /// The wire key of the field.
        key: &'static str,
        /// The session data type.
        type_name: &'static str,
        /// What MessagePack decoding reported.
        #[source]
        source: rmp_serde::decode::Error,
    },
    /// One field's stored value was refused before decoding: nested deeper than
    /// [`MAX_DEPTH`](crate::record::MAX_DEPTH), or framed with lengths the input cannot
    /// hold.
    #[error("session field `{key}` of `{type_name}` refused before decoding: {reason}")]
    Rejected {
        /// The wire key of the field.
        key: &'static str,
        /// The session data type.
        type_name: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// The record was written by a newer version of the app (for example after a rollback).
    #[error(
        "session record has schema version {found}, newer than version {current} of \
         `{type_name}`; was the app rolled back?"
    )]
    NewerVersion {
        /// The version stored in the record.
        found: u32,
        /// The version this app knows.
        current: u32,
        /// The session data type.
        type_name: &'static str,
    },
    /// The record is older than the current version and no `migrate_from` chain reaches it.
    #[error(
        "no migration path from schema version {found} to version {current} of `{type_name}`; \
         add `#[databag(migrate_from = ..)]` with a struct of version {found}"
    )]
    NoMigrationPath {
        /// The version stored in the record.
        found: u32,
        /// The version this app knows.
        current: u32,
        /// The session data type.
        type_name: &'static str,
    },
}
