//! Sessions outside a request: [`Sessions`] loads a session by id as the same typed handle
//! handlers get, for background jobs and admin code, and saves it through the same commit
//! path as the layer (plan, backend, hooks): no second implementation.

use std::sync::Arc;

use crate::backend::BoxFuture;
use crate::commit::{Outlet, Pending};
use crate::config::{Config, SessionLayer};
use crate::error::{LoadError, SaveError};
use crate::extract::{load_one, Seen};
use crate::handle::{Core, FromCore, ReturnTo, Returned, SessionState};
use crate::id::SessionId;
use crate::schema::Databag;

/// A layer's sessions, for code outside a request: `SessionLayer::sessions()`.
///
/// [`load`](Self::load) gives the session stored under an id as a `Session<T>`; change it
/// with the same setters, then call `save().await`. The save has the guarantees of the
/// commit after a handler: only the changed fields are written and merged with concurrent
/// changes, a session destroyed meanwhile is never brought back (the save fails with
/// [`SaveError::Ended`]), the deadlines follow the layer's timeouts and the session's own
/// settings, and `on_started` / `on_deleted` run. `destroy()` then `save()` revokes the
/// session (its next request starts afresh).
///
/// What needs a client cannot happen here: `renew()`, writes after `destroy()`, and
/// anything on a session that is not stored would issue a token no response can carry, so
/// such a save fails with [`SaveError::TokenUndeliverable`] and writes nothing. A handle
/// dropped without `save()` changes nothing.
///
/// With the cookie store the session lives only in the client's cookie: there is nothing
/// to load by id ([`LoadError::ClientSide`]), and no session can be changed or revoked
/// from here (rotate the key to end every session at once).
///
/// ```
/// use session_runtime::{Databag, MemoryStore, SessionLayer};
///
/// #[derive(Databag)]
/// struct Account { credits: u64 }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = SessionLayer::<Account>::new(MemoryStore::new());
/// let sessions = layer.sessions(); // keep it next to the router
/// # let id = session_runtime::SessionId::generate()?;
/// // In a background job, with an id kept from `on_started` (say):
/// if let Some(mut session) = sessions.load(&id).await? {
///     session.set_credits(session.credits + 10);
///     session.save().await?;
/// }
/// # Ok(()) }
/// ```
pub struct Sessions<T> {
    pub(crate) config: Arc<Config<T>>,
}

impl<T> Clone for Sessions<T> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
        }
    }
}

impl<T> std::fmt::Debug for Sessions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("type", &core::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

impl<T: Databag> SessionLayer<T> {
    /// A handle on this layer's sessions for code outside a request (background jobs, admin
    /// tools): load a session by id, change it with the same setters, and save it with the
    /// same guarantees as the commit after a handler. See [`Sessions`].
    #[must_use]
    pub fn sessions(&self) -> Sessions<T> {
        Sessions {
            config: Arc::new(self.config().clone()),
        }
    }
}

impl<T: Databag> Sessions<T> {
    /// The session stored under `id`, or `None` when there is none, or it expired (under
    /// the layer's current timeouts and its own settings) or does not decode. One store
    /// read, bounded by the layer's store timeout.
    ///
    /// # Errors
    /// [`LoadError::Store`] when the store fails or is too slow; [`LoadError::ClientSide`]
    /// with the cookie store.
    pub async fn load(&self, id: &SessionId) -> Result<Option<crate::Session<T>>, LoadError>
    where
        T::Handle: FromCore,
    {
        let config = &self.config;
        if config.backend.client_side() {
            return Err(LoadError::ClientSide);
        }
        let now = config.clock.now_ms();
        let seen = load_one(config, &id.expose_token(), now, &mut None)
            .await
            .map_err(LoadError::Store)?;
        let Seen::Live(found, expires) = seen else {
            return Ok(None);
        };
        let state = SessionState::stored(found.id, found.meta, expires, false);
        let back: Arc<dyn ReturnTo<T>> = Arc::new(Detached {
            config: Arc::clone(config),
        });
        let core = Core::resumed(Returned::new(found.tracked, state), back);
        Ok(Some(T::Handle::from_core(core)))
    }
}

/// The owner of a session loaded outside a request: saves go through the commit path, and
/// there is no response to carry a token.
struct Detached<T> {
    config: Arc<Config<T>>,
}

impl<T: Databag> ReturnTo<T> for Detached<T> {
    fn give_back(&self, returned: Returned<T>) {
        if returned.tracked.has_changes() || returned.state.intent.is_destroy() {
            tracing::debug!(
                session = %returned.state.id,
                "a session loaded outside a request was dropped without save(); nothing changed"
            );
        }
    }

    fn save<'a>(&'a self, session: &'a mut Returned<T>) -> BoxFuture<'a, Result<(), SaveError>> {
        Box::pin(crate::commit::save(&self.config, session, self))
    }
}

impl<T: Send + Sync> Outlet for Detached<T> {
    fn responded(&self) -> bool {
        true
    }

    fn deliver(&self, _pending: Pending) -> bool {
        false
    }
}
