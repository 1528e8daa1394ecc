//! Where a layer keeps its sessions, behind one internal trait: [`Backend`] loads the session
//! a token names and applies a [`Plan`] (the store operations one commit needs), saying which
//! token to send back. Two implementations: any [`SessionStore`] (the client holds an id),
//! and the cookie store (the client holds the sealed session).
//!
//! The request path above this module never asks which kind of backend it has.

#[cfg(feature = "cookie-store")]
mod cookie;
mod server;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::id::{SessionDigest, SessionId};
use crate::record::Snapshot;
use crate::schema::{Databag, Tracked};
use crate::store::{Loaded, RemovalListener, RemovalWatch, SessionMeta, SessionStore, StoreError};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A backend's answer: at once when it needs no I/O (the cookie store: no allocation, no
/// timer), or a future to wait on within the store timeout.
pub(crate) enum Answer<'a, R> {
    Now(R),
    Later(BoxFuture<'a, R>),
}

/// What a token names, as far as this backend can tell.
pub(crate) enum Lookup<T> {
    /// A live session, decoded.
    Live(Found<T>),
    /// Nothing that can ever open: a malformed token, or a session found expired. The
    /// client may be told to forget it.
    Dead,
    /// Nothing this instance can use now, though the token may be good elsewhere or later:
    /// an id the store does not know (a concurrent request may have just renewed it), a
    /// record of a newer schema (after a rollback), a cookie this instance cannot open (a
    /// key it does not have yet). The client keeps it.
    Unusable,
}

/// A session a token named, found live and decoded.
pub(crate) struct Found<T> {
    pub(crate) id: SessionId,
    pub(crate) meta: SessionMeta,
    pub(crate) tracked: Tracked<T>,
    /// The token must be issued again even if nothing changes (opened with an old key).
    pub(crate) reseal: bool,
    /// The record as loaded, to drop changes that change nothing at commit; `None` after a
    /// migration (the record is written back whole).
    pub(crate) snapshot: Option<Snapshot>,
}

/// The store operations of one commit, decided by the request layer's `plan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Nothing to write and nothing to send.
    Nothing,
    /// Store a new session for the first time.
    Create { id: SessionId, meta: SessionMeta },
    /// Write the changed fields of the stored session `id`, with new deadlines.
    Save { id: SessionId, meta: SessionMeta },
    /// Write new deadlines (or issue the token again) for `id`; the data is unchanged.
    Touch { id: SessionId, meta: SessionMeta },
    /// Move the stored session `from` to a new id (`to`, or one drawn now), carrying its
    /// data and this request's changes.
    Renew {
        from: SessionId,
        to: Option<SessionId>,
        meta: SessionMeta,
    },
    /// End the session: delete the stored one (if any), and tell the client to forget its
    /// token (if it sent one).
    Destroy {
        stored: Option<SessionId>,
        forget: bool,
    },
    /// Reset in place: end the stored session `from` and start a fresh one under a new id
    /// (`to`, or one drawn now) holding only the data written after `destroy()`.
    Restart {
        from: SessionId,
        to: Option<SessionId>,
        meta: SessionMeta,
    },
}

impl Plan {
    /// Whether the plan takes more than one store operation, so that stopping it halfway
    /// could leave the session in neither place: such a plan runs to completion on its own
    /// task. Every other plan is one operation, which either happens or not.
    pub(crate) fn is_multi_step(&self) -> bool {
        matches!(self, Self::Renew { .. } | Self::Restart { .. })
    }
}

/// A token as the client holds it.
#[derive(Debug)]
pub(crate) enum Token {
    /// The token's text: a session id's, or a sealed session.
    Text(String),
    /// A session id whose text is made only if it is sent (a refresh often is not).
    Id(SessionId),
}

impl Token {
    pub(crate) fn expose(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::Text(text) => std::borrow::Cow::Borrowed(text),
            Self::Id(id) => std::borrow::Cow::Owned(id.expose_token()),
        }
    }
}

/// What the client must be told after a commit.
#[derive(Debug)]
pub(crate) enum TokenUpdate {
    /// Nothing.
    Keep,
    /// A new token: always send it. `expires_ms` is the session's deadline.
    Send {
        token: Token,
        expires_ms: Option<u64>,
    },
    /// The same token, with a deadline that moved: send it again only where the client's
    /// copy carries its own expiry (a persistent cookie).
    Refresh {
        token: Token,
        expires_ms: Option<u64>,
    },
    /// Forget the token.
    Forget,
}

/// What a commit did, for the hooks and the response.
#[derive(Debug)]
pub(crate) struct Applied {
    pub(crate) token: TokenUpdate,
    /// A new session was stored under this id (`on_started`).
    pub(crate) started: Option<SessionId>,
    /// This commit removed the stored session with this id (`on_deleted`).
    pub(crate) deleted: Option<SessionId>,
    /// The id the session lives under after a commit that created or moved it.
    pub(crate) now_under: Option<SessionId>,
    /// The session was no longer in the store (deleted, expired, moved, or rewritten by a
    /// newer deploy meanwhile): nothing was written.
    pub(crate) missing: bool,
}

impl Applied {
    pub(crate) fn token(token: TokenUpdate) -> Self {
        Self {
            token,
            started: None,
            deleted: None,
            now_under: None,
            missing: false,
        }
    }

    /// Nothing written: the session was gone.
    pub(crate) fn missing() -> Self {
        Self {
            missing: true,
            ..Self::token(TokenUpdate::Keep)
        }
    }
}

/// Why a commit failed; the layer answers 503 (store) or 500 (the rest) and logs it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommitError {
    /// The store failed or was too slow.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else: encoding, randomness, sealing, size.
    #[error(transparent)]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl CommitError {
    pub(crate) fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(error))
    }
}

impl From<crate::error::EncodeError> for CommitError {
    fn from(error: crate::error::EncodeError) -> Self {
        Self::internal(error)
    }
}

impl From<crate::id::RandomnessError> for CommitError {
    fn from(error: crate::id::RandomnessError) -> Self {
        Self::internal(error)
    }
}

/// Set when the response a commit works for was dropped (the client went away, or an outer
/// timeout fired): a multi-step commit then rolls back to the state the client still holds.
#[derive(Debug, Clone)]
pub(crate) struct Abandoned(Option<Arc<AtomicBool>>);

impl Abandoned {
    /// For a commit whose response is watched: [`set`](Self::set) when it is dropped.
    pub(crate) fn watched() -> Self {
        Self(Some(Arc::new(AtomicBool::new(false))))
    }

    /// For a commit of one operation, which never needs to know.
    pub(crate) const fn unwatched() -> Self {
        Self(None)
    }

    pub(crate) fn set(&self) {
        if let Some(flag) = &self.0 {
            flag.store(true, Ordering::SeqCst);
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::SeqCst))
    }
}

/// What a commit runs with.
pub(crate) struct Ctx<'a> {
    /// Every store operation of the commit finishes by this instant.
    pub(crate) deadline: tokio::time::Instant,
    /// The store timeout: the bound reported, and the time cleanup work gets.
    pub(crate) timeout: Duration,
    /// The commit's time, milliseconds since the epoch.
    pub(crate) now: u64,
    /// What a sealed token is bound to: the cookie or header name.
    #[cfg_attr(not(feature = "cookie-store"), allow(dead_code))] // only sealing reads it
    pub(crate) purpose: &'a str,
    pub(crate) abandoned: &'a Abandoned,
}

impl Ctx<'_> {
    /// Runs a store operation within the commit's deadline.
    pub(crate) async fn bounded<R>(
        &self,
        operation: impl Future<Output = Result<R, StoreError>>,
    ) -> Result<R, StoreError> {
        until(self.deadline, self.timeout, operation).await
    }
}

/// Runs a store operation that must finish by `deadline`; `timeout` is what a miss reports.
pub(crate) async fn until<R>(
    deadline: tokio::time::Instant,
    timeout: Duration,
    operation: impl Future<Output = Result<R, StoreError>>,
) -> Result<R, StoreError> {
    match tokio::time::timeout_at(deadline, operation).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Timeout(timeout)),
    }
}

/// A stored session as found, if its record decodes (migrating older versions); logs a
/// migration, and warns about a record that does not decode (the layer then starts afresh).
pub(crate) fn decoded<T: Databag>(
    id: SessionId,
    meta: SessionMeta,
    decoded: Result<crate::record::Decoded<T>, crate::error::DecodeError>,
    reseal: bool,
    snapshot: Snapshot,
) -> Lookup<T> {
    match decoded {
        Ok(decoded) => {
            let snapshot = match decoded.migrated_from {
                Some(from) => {
                    tracing::info!(session = %id, from, to = T::VERSION, "migrated a session record");
                    None
                }
                None => Some(snapshot),
            };
            Lookup::Live(Found {
                id,
                meta,
                tracked: decoded.into_tracked(),
                reseal,
                snapshot,
            })
        }
        Err(error) => {
            tracing::warn!(
                session = %id,
                %error,
                "stored session record does not decode; starting a fresh session"
            );
            Lookup::Unusable
        }
    }
}

/// Where a layer keeps sessions of type `T`.
pub(crate) trait Backend<T>: Send + Sync + 'static {
    /// What `token` names: a live session, decoded, or why not (the layer then starts a
    /// fresh session). At most one store read.
    fn load<'a>(
        &'a self,
        token: &'a str,
        purpose: &'a str,
        now: u64,
    ) -> Answer<'a, Result<Lookup<T>, StoreError>>;

    /// Carries out `plan` with the request's data, and says what to tell the client.
    fn apply<'a>(
        &'a self,
        plan: Plan,
        tracked: &'a Tracked<T>,
        ctx: &'a Ctx<'a>,
    ) -> Answer<'a, Result<Applied, CommitError>>;

    /// Whether [`apply`](Self::apply) answers `plan` at once ([`Answer::Now`]): the commit
    /// then runs it inside the request's poll, without a boxed future.
    fn commits_at_once(&self, plan: &Plan) -> bool;

    /// Registers the layer's `on_deleted` for sessions the backend removes by itself.
    fn subscribe_removals(&self, listener: &RemovalListener);

    /// Whether the client's token holds the session itself (the cookie store): then every
    /// write is a new token, and nothing can be loaded by id or saved without a response.
    fn client_side(&self) -> bool {
        false
    }

    /// The store behind a server-side backend, for code that works on sessions other than
    /// the request's own (listing an owner's sessions, revoking them); `None` for the cookie
    /// store, which keeps nothing on the server.
    fn admin(&self) -> Option<&dyn Admin> {
        None
    }
}

/// The store operations admin code uses, object-safe (boxed futures): implemented by every
/// [`SessionStore`].
pub(crate) trait Admin: Send + Sync {
    fn owned_by<'a>(
        &'a self,
        owner: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Result<Vec<(SessionDigest, Loaded)>, StoreError>>;
    fn load<'a>(
        &'a self,
        id: &'a SessionDigest,
        now: u64,
    ) -> BoxFuture<'a, Result<Option<Loaded>, StoreError>>;
    fn take<'a>(
        &'a self,
        id: &'a SessionDigest,
        now: u64,
    ) -> BoxFuture<'a, Result<Option<Loaded>, StoreError>>;
    fn count(&self, now: u64) -> BoxFuture<'_, Result<u64, StoreError>>;
    fn clear(&self) -> BoxFuture<'_, Result<u64, StoreError>>;
    fn watch<'a>(
        &'a self,
        id: &'a SessionDigest,
    ) -> BoxFuture<'a, Result<RemovalWatch, StoreError>>;
}

impl<S: SessionStore> Admin for S {
    fn owned_by<'a>(
        &'a self,
        owner: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Result<Vec<(SessionDigest, Loaded)>, StoreError>> {
        Box::pin(SessionStore::owned_by(self, owner, now))
    }

    fn load<'a>(
        &'a self,
        id: &'a SessionDigest,
        now: u64,
    ) -> BoxFuture<'a, Result<Option<Loaded>, StoreError>> {
        Box::pin(SessionStore::load(self, id, now))
    }

    fn take<'a>(
        &'a self,
        id: &'a SessionDigest,
        now: u64,
    ) -> BoxFuture<'a, Result<Option<Loaded>, StoreError>> {
        Box::pin(SessionStore::take(self, id, now))
    }

    fn count(&self, now: u64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(SessionStore::count(self, now))
    }

    fn clear(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(SessionStore::clear(self))
    }

    fn watch<'a>(
        &'a self,
        id: &'a SessionDigest,
    ) -> BoxFuture<'a, Result<RemovalWatch, StoreError>> {
        Box::pin(SessionStore::watch_removal(self, id))
    }
}

/// Anything `SessionLayer::new` accepts: every [`SessionStore`], and `CookieStore`.
pub trait SessionBackend: sealed::IntoBackend {}

impl<S: SessionStore> SessionBackend for S {}
#[cfg(feature = "cookie-store")]
impl SessionBackend for crate::cookie_store::CookieStore {}

pub(crate) mod sealed {
    /// Turns a store into the layer's backend; sealed so that it stays internal.
    pub trait IntoBackend {
        #[allow(private_interfaces)] // the backend trait is internal by design
        fn into_backend<T: crate::schema::Databag>(self) -> std::sync::Arc<dyn super::Backend<T>>;
    }
}

impl<S: SessionStore> sealed::IntoBackend for S {
    #[allow(private_interfaces)]
    fn into_backend<T: Databag>(self) -> Arc<dyn Backend<T>> {
        Arc::new(server::StoreBackend::new(self))
    }
}
