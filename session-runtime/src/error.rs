//! Errors of encoding and decoding session records, of stores, and of explicit saves.

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
    /// A flash message's `Serialize` implementation failed.
    #[error("could not encode a flash message of type `{type_name}`")]
    Flash {
        /// The message type.
        type_name: &'static str,
        /// What MessagePack encoding reported.
        #[source]
        source: rmp_serde::encode::Error,
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

/// A store operation failed (the store is down, too slow, or broken).
///
/// The layer answers such a request with an opaque `503 Service Unavailable` and logs the
/// error; it never shows it to the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store did not answer within the layer's store timeout.
    #[error("the session store did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The store's backend failed.
    #[error("the session store failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store failed, described in words (for stores with no error type of their own).
    #[error("the session store failed: {0}")]
    Message(String),
    /// The store does not offer this operation (a custom store that did not implement it).
    #[error("this session store does not support {0}")]
    Unsupported(&'static str),
}

impl StoreError {
    /// Wraps a backend's error.
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(error))
    }

    /// An error described in words.
    pub fn message(message: impl Into<String>) -> Self {
        Self::Message(message.into())
    }
}

/// Why `session.save()` failed. The session in the handle is unchanged by a failed save: the
/// same changes are still pending, and the commit after the handler tries them again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaveError {
    /// The store failed or did not answer within the layer's store timeout.
    #[error("the session store failed")]
    Store(#[source] StoreError),
    /// The session is no longer in the store: another request destroyed or renewed it, or
    /// it expired. Nothing was written (a save never brings a session back).
    #[error(
        "the session ended meanwhile (destroyed, renewed or expired elsewhere); nothing was \
         written"
    )]
    Ended,
    /// The save would give the client a new token (a new session, a renewal, a reset after
    /// `destroy()`, or any change with the cookie store, whose token is the session) but no
    /// response can carry it any more: the response was already sent (a WebSocket after the
    /// upgrade), or the session was loaded outside a request. Nothing was written. Save
    /// before the response (before the upgrade) instead.
    #[error(
        "the save needs to send the client a new session token, and no response can carry it \
         any more; nothing was written"
    )]
    TokenUndeliverable,
    /// Anything else: a field that does not encode, a cookie over the size limit, no
    /// randomness for a new id.
    #[error("the session could not be saved")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why an operation of [`Sessions`](crate::Sessions) failed (loading a session by id,
/// listing or revoking an owner's sessions, counting, clearing, watching).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The store failed or did not answer within the layer's store timeout (or, for a
    /// custom store, does not offer the operation: [`StoreError::Unsupported`]).
    #[error("the session store failed")]
    Store(#[source] StoreError),
    /// The layer uses the cookie store: sessions live only in clients' cookies, so none can
    /// be loaded by id, listed, or revoked one by one.
    #[error(
        "the cookie store keeps no sessions on the server: none can be loaded by id, listed \
         or revoked (a cookie-store session can only be read and changed in a request that \
         carries its cookie; rotate the key to end every session)"
    )]
    ClientSide,
}
