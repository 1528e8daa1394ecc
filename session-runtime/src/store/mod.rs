//! Server-side session storage: the [`SessionStore`] trait and its implementations.
//!
//! A store keeps [`Record`]s (the encoded fields of a session) with their [`SessionMeta`]
//! (creation time, last use and deadlines), keyed by [`SessionDigest`] (the SHA-256 of the
//! session id: a store never needs, nor keeps, the token itself). The session layer decides what to
//! do; a store only has to do each operation atomically for one session:
//!
//! | operation | contract |
//! |---|---|
//! | [`load`](SessionStore::load) | the record and meta, or `None` if unknown **or expired** (never return an expired session, even before it is cleaned up) |
//! | [`create`](SessionStore::create) | store a new session; if the id is already taken, change nothing and say so |
//! | [`save`](SessionStore::save) | merge the changed fields into an existing session ([`Record::merge`]) and set the new meta; if the session is gone (deleted or expired), or the stored record has a newer schema version than the changes, change nothing and say so: never re-create it, never downgrade it |
//! | [`touch`](SessionStore::touch) | set the new meta (deadlines) of an existing session without rewriting its data |
//! | [`take`](SessionStore::take) | remove the session and return what it held, in one atomic step (`None` if it was gone or expired) |
//! | [`delete`](SessionStore::delete) | remove the session; say whether there was one |
//!
//! Implementations: [`MemoryStore`](crate::MemoryStore) (this process's memory) and, with the
//! feature `redis`, `RedisStore` (Redis or Redis Cluster).
//!
//! Writing a custom store:
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use session_runtime::store::{CreateOutcome, Loaded, SaveOutcome, SessionMeta, SessionStore, StoreError};
//! use session_runtime::record::Record;
//! use session_runtime::SessionDigest;
//!
//! /// One mutex around a map: simple, correct, not fast.
//! #[derive(Default)]
//! struct MapStore(Mutex<HashMap<SessionDigest, Loaded>>);
//!
//! impl MapStore {
//!     fn map(&self) -> Result<std::sync::MutexGuard<'_, HashMap<SessionDigest, Loaded>>, StoreError> {
//!         self.0.lock().map_err(|_| StoreError::message("store mutex poisoned"))
//!     }
//! }
//!
//! impl SessionStore for MapStore {
//!     async fn load(&self, id: &SessionDigest, now_ms: u64) -> Result<Option<Loaded>, StoreError> {
//!         let map = self.map()?;
//!         Ok(map.get(id).filter(|s| !s.meta.is_expired(now_ms)).cloned())
//!     }
//!     async fn create(&self, id: &SessionDigest, record: &Record, meta: &SessionMeta, now_ms: u64) -> Result<CreateOutcome, StoreError> {
//!         let mut map = self.map()?;
//!         if map.get(id).is_some_and(|s| !s.meta.is_expired(now_ms)) {
//!             return Ok(CreateOutcome::IdTaken);
//!         }
//!         map.insert(*id, Loaded { record: record.clone(), meta: *meta });
//!         Ok(CreateOutcome::Created)
//!     }
//!     async fn save(&self, id: &SessionDigest, changes: &Record, meta: &SessionMeta, now_ms: u64) -> Result<SaveOutcome, StoreError> {
//!         let mut map = self.map()?;
//!         match map.get_mut(id) {
//!             Some(stored) if !stored.meta.is_expired(now_ms) && stored.record.version <= changes.version => {
//!                 stored.record.merge(changes.clone());
//!                 stored.meta = *meta;
//!                 Ok(SaveOutcome::Saved)
//!             }
//!             _ => Ok(SaveOutcome::Missing),
//!         }
//!     }
//!     async fn touch(&self, id: &SessionDigest, meta: &SessionMeta, now_ms: u64) -> Result<SaveOutcome, StoreError> {
//!         let mut map = self.map()?;
//!         match map.get_mut(id) {
//!             Some(stored) if !stored.meta.is_expired(now_ms) => { stored.meta = *meta; Ok(SaveOutcome::Saved) }
//!             _ => Ok(SaveOutcome::Missing),
//!         }
//!     }
//!     async fn take(&self, id: &SessionDigest, now_ms: u64) -> Result<Option<Loaded>, StoreError> {
//!         Ok(self.map()?.remove(id).filter(|s| !s.meta.is_expired(now_ms)))
//!     }
//!     async fn delete(&self, id: &SessionDigest) -> Result<bool, StoreError> {
//!         Ok(self.map()?.remove(id).is_some())
//!     }
//! }
//! ```

pub(crate) mod memory;
pub(crate) mod owners;
#[cfg(feature = "redis")]
pub(crate) mod redis;
pub(crate) mod removals;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod sql;
pub(crate) mod sweeper;
pub(crate) mod watch;

pub use watch::{RemovalWatch, Watchers};

use std::future::Future;
use std::sync::Arc;

use crate::id::SessionDigest;
use crate::record::Record;

pub use crate::error::StoreError;

/// When a session was created and when it expires, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionMeta {
    /// When the session was first stored.
    pub created_ms: u64,
    /// When a request last wrote the session or moved its deadline (its last use, at the
    /// granularity of the layer's touches: a request that only reads does not write it).
    pub seen_ms: u64,
    /// When the session expires if it is not used again: the idle deadline, capped by the
    /// absolute deadline. `None` when neither timeout is configured.
    pub expires_ms: Option<u64>,
    /// The absolute deadline (creation plus the absolute timeout), which use never extends.
    pub absolute_ms: Option<u64>,
}

impl SessionMeta {
    /// Whether the session has expired at `now_ms`.
    #[must_use]
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_ms.is_some_and(|expires| expires <= now_ms)
    }
}

/// A stored session as [`SessionStore::load`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The encoded fields.
    pub record: Record,
    /// Creation time and deadlines.
    pub meta: SessionMeta,
}

/// What [`SessionStore::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The session was stored.
    Created,
    /// A session with this id already exists; nothing was changed.
    IdTaken,
}

/// What [`SessionStore::save`] or [`SessionStore::touch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// The session was updated.
    Saved,
    /// The session no longer exists (deleted or expired), or holds a record of a newer
    /// schema version than the changes (written by a newer deploy); nothing was written.
    Missing,
}

/// Called by a store for each session it removes by itself (expiry, capacity eviction),
/// with the session's digest (stores keep no ids) and last record. A layer with an `on_deleted` hook subscribes one
/// (see [`SessionStore::subscribe_removals`]).
pub type RemovalListener = Arc<dyn Fn(&SessionDigest, &Record) + Send + Sync>;

/// Server-side storage of sessions. See the [module docs](self) for the contract of each
/// operation and an example.
///
/// Stores are shared by all requests: every method takes `&self` and must be safe to call
/// concurrently; each call must be atomic for its session.
pub trait SessionStore: Send + Sync + 'static {
    /// The session stored under `id`, or `None` when it is unknown or expired at `now_ms`.
    fn load(
        &self,
        id: &SessionDigest,
        now_ms: u64,
    ) -> impl Future<Output = Result<Option<Loaded>, StoreError>> + Send;

    /// Stores a new session, unless `id` is already taken by a session not expired at
    /// `now_ms`.
    fn create(
        &self,
        id: &SessionDigest,
        record: &Record,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> impl Future<Output = Result<CreateOutcome, StoreError>> + Send;

    /// Merges `changes` (only the fields that changed) into the existing session `id` and
    /// sets its meta; never re-creates a session that is gone (deleted, or expired at
    /// `now_ms`), and never writes over a record of a newer schema version than
    /// `changes.version` (an older deploy must not downgrade a migrated session).
    fn save(
        &self,
        id: &SessionDigest,
        changes: &Record,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> impl Future<Output = Result<SaveOutcome, StoreError>> + Send;

    /// Sets new deadlines for the existing session `id` (not expired at `now_ms`) without
    /// rewriting its data.
    fn touch(
        &self,
        id: &SessionDigest,
        meta: &SessionMeta,
        now_ms: u64,
    ) -> impl Future<Output = Result<SaveOutcome, StoreError>> + Send;

    /// Removes the session `id` and returns it, atomically: of two concurrent `take`s or a
    /// `take` and a `delete`, only one finds the session. `None` when there was none, or it
    /// had expired at `now_ms`. The layer renews ids with it, so that a session destroyed
    /// or renewed by a concurrent request is never brought back under a new id, and changes
    /// other requests saved meanwhile move along.
    fn take(
        &self,
        id: &SessionDigest,
        now_ms: u64,
    ) -> impl Future<Output = Result<Option<Loaded>, StoreError>> + Send;

    /// Removes the session `id`; `true` if there was one (no error if there was not). The
    /// layer runs `on_deleted` only when this returns `true`, so one session is reported
    /// once even when two requests destroy it.
    fn delete(&self, id: &SessionDigest) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Subscribes `listener` to the sessions the store removes by itself (expiry sweeps,
    /// capacity eviction). A `SessionLayer` with an `on_deleted` hook calls it when the layer
    /// is applied to a router; every layer using the store gets its own reports.
    ///
    /// A store should keep only a weak reference (`Arc::downgrade`), so that a listener ends
    /// with the last layer holding it, and ignore a listener it already holds
    /// (`Arc::ptr_eq`): a layer is applied once per route. Stores that cannot observe
    /// expiry (most external databases) keep the default, which ignores it.
    fn subscribe_removals(&self, listener: &RemovalListener) {
        let _ = listener;
    }

    /// The live sessions (not expired at `now_ms`) whose record names `owner` in its owner
    /// field ([`Record::owner`]), in no particular order. Stores keep an index from owner
    /// to sessions, maintained in the same operation as each write ([`create`](Self::create),
    /// [`save`](Self::save) when the changes carry the owner field, [`take`](Self::take),
    /// [`delete`](Self::delete), expiry), so this costs O(sessions of the owner), never a scan
    /// of every session. A listed session must be live; a live session whose last write set
    /// `owner` must be listed. The default says the store cannot list.
    fn owned_by(
        &self,
        owner: &str,
        now_ms: u64,
    ) -> impl Future<Output = Result<Vec<(SessionDigest, Loaded)>, StoreError>> + Send {
        let _ = (owner, now_ms);
        async { Err(StoreError::Unsupported("listing sessions by owner")) }
    }

    /// How many live sessions the store holds at `now_ms` (sessions that expired but were
    /// not swept yet may be counted by stores that cannot tell cheaply; each store documents
    /// which). The default says the store cannot count.
    fn count(&self, now_ms: u64) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let _ = now_ms;
        async { Err(StoreError::Unsupported("counting sessions")) }
    }

    /// Removes every session (and the owner index); returns how many sessions were removed.
    /// No removal listener is called: this is the administrator's reset, not an expiry. The
    /// default says the store cannot clear.
    fn clear(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        async { Err(StoreError::Unsupported("clearing every session")) }
    }

    /// A watch that resolves when session `id` is removed (deleted, taken, revoked, or,
    /// where the store observes it, expired), in this process or, for stores that can
    /// publish removals, in any process sharing the store. Resolves at once when the
    /// session is not stored now. The default says the store cannot watch.
    fn watch_removal(
        &self,
        id: &SessionDigest,
    ) -> impl Future<Output = Result<RemovalWatch, StoreError>> + Send {
        let _ = id;
        async {
            Err(StoreError::Unsupported(
                "watching a session for its removal",
            ))
        }
    }
}
