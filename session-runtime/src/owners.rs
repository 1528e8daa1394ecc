//! Every session of a user: [`Sessions`] lists an owner's sessions (`#[databag(owner)]`),
//! revokes one, all but the current one, or all of them, counts and clears sessions, and
//! waits on a session's end; [`SessionInfo`] is what a listing shows of one session.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum_core::extract::FromRequestParts;
use http::request::Parts;

use crate::backend::{until, Admin};
use crate::config::Config;
use crate::error::LoadError;
use crate::id::SessionDigest;
use crate::plan::tightened;
use crate::rejection::SessionRejection;
use crate::schema::owner::key_of;
use crate::schema::{Databag, DatabagHandle, OwnerKey};
use crate::sessions::Sessions;
use crate::slot::Slot;
use crate::store::{Loaded, RemovalWatch};

/// One session of an owner, as [`Sessions::list`] shows it. Never the token: `id` is the
/// session's digest, which names it (to revoke it, say) without giving access to it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The session's digest; [`SessionDigest::to_hex`] is a stable id for URLs and JSON
    /// ([`SessionDigest::parse_hex`] reads it back).
    pub id: SessionDigest,
    /// Whether it is the session of the request that listed it
    /// ([`Sessions::list_for`]).
    pub current: bool,
    /// When it was started.
    pub created: SystemTime,
    /// When it was last used, at the granularity of the layer's touches (a request that
    /// only reads refreshes it at most once per fraction of the idle timeout).
    pub last_seen: SystemTime,
    /// When it expires if not used again (under the layer's current timeouts); `None`
    /// without timeouts.
    pub expires: Option<SystemTime>,
    /// The device that started it, with
    /// [`SessionLayer::track_devices`](crate::SessionLayer::track_devices).
    pub device: Option<String>,
    /// The client address that started it, with
    /// [`SessionLayer::track_client_address`](crate::SessionLayer::track_client_address).
    pub address: Option<IpAddr>,
}

fn time(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

/// The sessions of one owner, and of everyone: the owner index every server-side store
/// keeps (memory, Redis, Redis Cluster, SQLite, PostgreSQL), for handlers ("your devices")
/// and admin code (log a user out everywhere on a password change). Each call is bounded by
/// the layer's store timeout.
///
/// A session is listed under the owner its `#[databag(owner)]` field names as of its last
/// write; listing costs O(sessions of that owner), not a scan. A revoked session is gone
/// from the store at once: its next request gets a fresh session, a save of a request in
/// flight finds it gone (nothing is brought back), `on_deleted` runs once for it, and
/// [`watch`](Self::watch)es on it resolve (a WebSocket can close).
///
/// With the cookie store, sessions live in clients' cookies: none can be listed or revoked
/// one by one (every call fails with [`LoadError::ClientSide`]); rotate the key to end them
/// all.
impl<T: Databag> Sessions<T> {
    fn admin(&self) -> Result<&dyn Admin, LoadError> {
        self.config.backend.admin().ok_or(LoadError::ClientSide)
    }

    async fn bounded<R>(
        &self,
        operation: impl std::future::Future<Output = Result<R, crate::store::StoreError>>,
    ) -> Result<R, LoadError> {
        let config = &self.config;
        let deadline = tokio::time::Instant::now() + config.store_timeout;
        until(deadline, config.store_timeout, operation)
            .await
            .map_err(LoadError::Store)
    }

    /// The live sessions of `owner`, the most recently used first.
    ///
    /// # Errors
    /// [`LoadError::Store`] when the store fails or is too slow (or, for a custom store,
    /// cannot list); [`LoadError::ClientSide`] with the cookie store.
    pub async fn list(&self, owner: &T::Owner) -> Result<Vec<SessionInfo>, LoadError> {
        let Some(owner) = owner_key(owner) else {
            return Ok(Vec::new());
        };
        self.listed(&owner, None).await
    }

    /// The live sessions of the owner of `session` (the request's own), the most recently
    /// used first, with `session` marked [`current`](SessionInfo::current). Empty when the
    /// session has no owner.
    ///
    /// # Errors
    /// As [`list`](Self::list).
    pub async fn list_for<H: DatabagHandle<Data = T>>(
        &self,
        session: &H,
    ) -> Result<Vec<SessionInfo>, LoadError> {
        let Some(owner) = key_of(&**session) else {
            return Ok(Vec::new());
        };
        self.listed(&owner, Some(session.id().digest())).await
    }

    async fn listed(
        &self,
        owner: &str,
        current: Option<SessionDigest>,
    ) -> Result<Vec<SessionInfo>, LoadError> {
        let admin = self.admin()?;
        let now = self.config.clock.now_ms();
        let found = self.bounded(admin.owned_by(owner, now)).await?;
        let mut infos: Vec<SessionInfo> = found
            .into_iter()
            .filter_map(|(id, loaded)| self.info(id, &loaded, current.as_ref(), now))
            .collect();
        infos.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(a.id.cmp(&b.id)));
        Ok(infos)
    }

    /// What a listing shows of a stored session; `None` when it is dead under the layer's
    /// current timeouts or does not decode (its next request starts afresh anyway).
    fn info(
        &self,
        id: SessionDigest,
        loaded: &Loaded,
        current: Option<&SessionDigest>,
        now: u64,
    ) -> Option<SessionInfo> {
        let tracked = loaded.record.decode::<T>().ok()?.into_tracked();
        let timeouts = self.config.timeouts_for(&tracked);
        let expires = tightened(&timeouts, &loaded.meta, now)?;
        let (device, address) = crate::client::remembered(tracked.internal());
        Some(SessionInfo {
            current: current == Some(&id),
            id,
            created: time(loaded.meta.created_ms),
            last_seen: time(loaded.meta.seen_ms),
            expires: expires.map(time),
            device,
            address,
        })
    }

    /// Revokes the session `id`, whoever owns it (admin code). `true` if there was one.
    ///
    /// # Errors
    /// As [`list`](Self::list).
    pub async fn revoke(&self, id: &SessionDigest) -> Result<bool, LoadError> {
        let admin = self.admin()?;
        self.take(admin, id).await
    }

    /// Revokes the session `id` if it belongs to `owner` (a user revoking one of their own
    /// sessions, by an id from their list): a session of anyone else is left alone and
    /// `false` returned, so an id from elsewhere revokes nothing.
    ///
    /// # Errors
    /// As [`list`](Self::list).
    pub async fn revoke_of(&self, owner: &T::Owner, id: &SessionDigest) -> Result<bool, LoadError> {
        let Some(owner) = owner_key(owner) else {
            return Ok(false);
        };
        let admin = self.admin()?;
        let now = self.config.clock.now_ms();
        let Some(loaded) = self.bounded(admin.load(id, now)).await? else {
            return Ok(false);
        };
        if loaded.record.owner().key() != Some(owner.as_str()) {
            return Ok(false);
        }
        self.take(admin, id).await
    }

    /// Revokes every session of `owner` (a password change, "log out everywhere"); returns
    /// how many were revoked. The request that calls it may be one of them: its own commit
    /// then finds its session gone and writes nothing.
    ///
    /// # Errors
    /// As [`list`](Self::list); sessions revoked before an error stay revoked.
    pub async fn revoke_all(&self, owner: &T::Owner) -> Result<usize, LoadError> {
        let Some(owner) = owner_key(owner) else {
            return Ok(0);
        };
        self.revoke_owned(&owner, None).await
    }

    /// Revokes every session of the owner of `session` except `session` itself ("log out
    /// my other devices"); returns how many were revoked. Nothing when it has no owner.
    ///
    /// # Errors
    /// As [`revoke_all`](Self::revoke_all).
    pub async fn revoke_others<H: DatabagHandle<Data = T>>(
        &self,
        session: &H,
    ) -> Result<usize, LoadError> {
        let Some(owner) = key_of(&**session) else {
            return Ok(0);
        };
        self.revoke_owned(&owner, Some(session.id().digest())).await
    }

    async fn revoke_owned(
        &self,
        owner: &str,
        keep: Option<SessionDigest>,
    ) -> Result<usize, LoadError> {
        let admin = self.admin()?;
        let now = self.config.clock.now_ms();
        let found = self.bounded(admin.owned_by(owner, now)).await?;
        let mut revoked = 0;
        // Undecodable and otherwise dead-looking sessions are revoked too: a password change
        // leaves nothing of the owner behind.
        for (id, _) in found {
            if Some(id) != keep && self.take(admin, &id).await? {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Takes the session out of the store and reports it to `on_deleted`, once: of two
    /// concurrent revocations only the one that took it reports it.
    async fn take(&self, admin: &dyn Admin, id: &SessionDigest) -> Result<bool, LoadError> {
        let now = self.config.clock.now_ms();
        let Some(taken) = self.bounded(admin.take(id, now)).await? else {
            return Ok(false);
        };
        tracing::info!(session = %id, "session revoked");
        if let Some(report) = &self.config.removals {
            report(id, &taken.record);
        }
        Ok(true)
    }

    /// How many live sessions the store holds (all owners, and none). See each store for
    /// what it costs (the memory store counts in memory; Redis scans its keys).
    ///
    /// # Errors
    /// As [`list`](Self::list).
    pub async fn count(&self) -> Result<u64, LoadError> {
        let admin = self.admin()?;
        let now = self.config.clock.now_ms();
        self.bounded(admin.count(now)).await
    }

    /// Removes every session of the store (every user is logged out; `on_deleted` is not
    /// called); returns how many were removed. The store may be shared with other layers:
    /// their sessions go too.
    ///
    /// # Errors
    /// As [`list`](Self::list).
    pub async fn clear(&self) -> Result<u64, LoadError> {
        let admin = self.admin()?;
        let removed = self.bounded(admin.clear()).await?;
        tracing::warn!(removed, "every session was cleared");
        Ok(removed)
    }

    /// A future that resolves when the session `id` ends: destroyed, revoked, renewed
    /// (its old id ends), or expired where the store observes expiry. A WebSocket handler
    /// selects on it next to its socket and closes the socket when it resolves, as Phoenix
    /// does on logout. Resolves at once when the session is not stored now. See each store
    /// for what reaches other processes (Redis publishes removals; the memory store is one
    /// process).
    ///
    /// ```
    /// # use session_runtime::{Databag, Session, Sessions};
    /// # #[derive(Databag)] struct Account { user: Option<u64> }
    /// async fn live(session: Session<Account>, sessions: Sessions<Account>) {
    ///     let Ok(ended) = sessions.watch(&session.id().digest()).await else { return };
    ///     drop(session); // a handle held across the socket's life would keep nothing
    ///     tokio::select! {
    ///         () = ended => { /* close the socket: the session was revoked */ }
    ///         () = std::future::pending::<()>() => { /* the socket's own loop */ }
    ///     }
    /// }
    /// ```
    ///
    /// # Errors
    /// As [`list`](Self::list).
    pub async fn watch(&self, id: &SessionDigest) -> Result<RemovalWatch, LoadError> {
        let admin = self.admin()?;
        self.bounded(admin.watch(id)).await
    }
}

fn owner_key<K: OwnerKey + ?Sized>(owner: &K) -> Option<String> {
    Some(owner.owner_key()).filter(|key| !key.is_empty())
}

/// `Sessions<T>` as an extractor, for handlers that list or revoke sessions: needs the
/// `SessionLayer<T>` in front of the handler, like `Session<T>`, and costs no store
/// operation until a method is called.
impl<S: Send + Sync, T: Databag> FromRequestParts<S> for Sessions<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Arc<Slot<T>>>() {
            Some(slot) => Ok(Self::from_config(Arc::clone(&slot.config))),
            None => Err(SessionRejection::MissingLayer {
                type_name: core::any::type_name::<T>(),
            }),
        }
    }
}

impl<T> Sessions<T> {
    pub(crate) fn from_config(config: Arc<Config<T>>) -> Self {
        Self { config }
    }
}
