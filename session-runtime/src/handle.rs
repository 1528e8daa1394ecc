//! The runtime behind every generated handle: [`Core<T>`] holds the tracked data and the
//! request's session state (where the session came from, what the handler asked for), and
//! gives both back to the layer when the handler drops the handle.
//!
//! Nothing here knows about stores, cookies or HTTP: the layer hands a core a way back
//! ([`ReturnTo`]: where it goes when dropped, and how `save()` commits early) and reads the
//! [`SessionState`] when the request commits. The remember-me choice and a fixed end are
//! kept in the tracked data's internal fields, so they are stored with the session.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::backend::{BoxFuture, CommitError};
use crate::clock::{epoch_ms, millis, system_time};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{EncodeError, SaveError};
use crate::id::{RandomnessError, SessionId};
use crate::schema::{csrf, flash, keys, Databag, DatabagHandle, Tracked};
use crate::store::SessionMeta;

/// What the client sent, for a session that is new in this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientToken {
    /// No token at all.
    None,
    /// Tokens that can never open again (malformed, or naming an expired session): the
    /// client is told to forget them.
    Dead,
    /// Tokens this instance cannot use but that may be good elsewhere or later (an unknown
    /// id, perhaps just renewed; a newer record; a cookie sealed with another key): kept.
    Unusable,
    /// Several tokens that each name a live session (a cookie planted next to the real
    /// one), or more tokens than are looked at: none is trusted, and none is touched.
    Ambiguous,
}

/// Where the session of this request came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Not stored yet, with what the client sent.
    New { token: ClientToken },
    /// Loaded under the state's id, with the meta it was stored with. `reseal`: the token
    /// must be issued again even if nothing changes (a cookie opened with an old key).
    Stored { meta: SessionMeta, reseal: bool },
}

/// What the handler asked for, besides field changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Intent {
    /// Keep the session under its id.
    Keep,
    /// Move the session to a new id at commit (fixation defence). `to` is the id drawn when
    /// `renew()` was called; `None` if the random source failed then, and the commit draws
    /// one (and fails the request if it cannot).
    Renew { to: Option<SessionId> },
    /// End the session at commit. Writes after `destroy()` start a fresh session under `to`
    /// (drawn when `destroy()` was called, or by the commit), like Rails' `reset_session`.
    Destroy { to: Option<SessionId> },
}

impl Intent {
    pub(crate) fn is_destroy(&self) -> bool {
        matches!(self, Self::Destroy { .. })
    }
}

/// What is known about the session of one request, besides its data.
#[derive(Debug, Clone)]
pub(crate) struct SessionState {
    /// The id the session has: the stored one, or the one drawn for a new session.
    pub(crate) id: SessionId,
    pub(crate) origin: Origin,
    pub(crate) intent: Intent,
    /// When the session expires if unused, as far as this request knows.
    pub(crate) expires_ms: Option<u64>,
}

impl SessionState {
    /// A session that exists only in this request so far.
    pub(crate) fn new(id: SessionId, expires_ms: Option<u64>, token: ClientToken) -> Self {
        Self {
            id,
            origin: Origin::New { token },
            intent: Intent::Keep,
            expires_ms,
        }
    }

    /// A session found in the store (or a cookie) under `id`, stored with `meta`;
    /// `expires_ms` is when it expires under the current timeouts.
    pub(crate) fn stored(
        id: SessionId,
        meta: SessionMeta,
        expires_ms: Option<u64>,
        reseal: bool,
    ) -> Self {
        Self {
            id,
            expires_ms,
            origin: Origin::Stored { meta, reseal },
            intent: Intent::Keep,
        }
    }

    /// The id the client holds after this request, as far as the handler can tell.
    fn current_id(&self) -> &SessionId {
        match &self.intent {
            Intent::Renew { to: Some(to) } | Intent::Destroy { to: Some(to) } => to,
            _ => &self.id,
        }
    }
}

/// A handle's data and state: what the layer commits once the handler is done with it, and
/// what an explicit save works on.
pub(crate) struct Returned<T> {
    pub(crate) tracked: Tracked<T>,
    pub(crate) state: SessionState,
    /// The data as it was when `destroy()` was called, for `on_deleted` (the handle itself
    /// then reads defaults).
    pub(crate) destroyed: Option<T>,
}

impl<T: Databag> Returned<T> {
    pub(crate) fn new(tracked: Tracked<T>, state: SessionState) -> Self {
        Self {
            tracked,
            state,
            destroyed: None,
        }
    }
}

/// Where a managed core goes: the layer's per-request slot, or (for a session loaded outside
/// a request) a detached owner. Implemented by the request layer, which knows the backend.
pub(crate) trait ReturnTo<T>: Send + Sync {
    /// The handle was dropped.
    fn give_back(&self, returned: Returned<T>);

    /// Persists what changed so far (`session.save()`), updating `session` to what is now
    /// stored: its state, and a change set that is empty again.
    fn save<'a>(&'a self, session: &'a mut Returned<T>) -> BoxFuture<'a, Result<(), SaveError>>;
}

impl From<CommitError> for SaveError {
    fn from(error: CommitError) -> Self {
        match error {
            CommitError::Store(error) => Self::Store(error),
            CommitError::Internal(error) => Self::Internal(error),
        }
    }
}

/// What a generated handle wraps: the tracked data, the session's state, and (inside a
/// request) where the handle returns when dropped.
pub struct Core<T: Databag> {
    // Always `Some` while the core is alive; taken only by `Drop` and `into_tracked`.
    parts: Option<Returned<T>>,
    back: Option<Arc<dyn ReturnTo<T>>>,
}

impl<T: Databag> Core<T> {
    /// A core that no layer manages (for unit tests of code taking a handle). Its id is
    /// random, it is new, and nothing it does is stored.
    pub fn new(tracked: Tracked<T>) -> Self {
        let id = SessionId::generate().unwrap_or_else(|_| SessionId::from_bytes([0; 24]));
        Self {
            parts: Some(Returned::new(
                tracked,
                SessionState::new(id, None, ClientToken::None),
            )),
            back: None,
        }
    }

    /// A managed core: a session loaded for this request, given back earlier in it (a
    /// second extraction), or loaded outside a request.
    pub(crate) fn resumed(parts: Returned<T>, back: Arc<dyn ReturnTo<T>>) -> Self {
        Self {
            parts: Some(parts),
            back: Some(back),
        }
    }

    #[inline]
    fn parts(&self) -> &Returned<T> {
        match &self.parts {
            Some(parts) => parts,
            None => unreachable!("a session core is used after it was taken apart"),
        }
    }

    #[inline]
    fn parts_mut(&mut self) -> &mut Returned<T> {
        match &mut self.parts {
            Some(parts) => parts,
            None => unreachable!("a session core is used after it was taken apart"),
        }
    }

    /// The tracked data.
    #[inline]
    pub fn tracked(&self) -> &Tracked<T> {
        &self.parts().tracked
    }

    /// The tracked data, mutably.
    #[inline]
    pub fn tracked_mut(&mut self) -> &mut Tracked<T> {
        &mut self.parts_mut().tracked
    }

    /// Unwraps the tracked data; nothing goes back to the layer.
    pub fn into_tracked(mut self) -> Tracked<T> {
        self.back = None;
        match self.parts.take() {
            Some(parts) => parts.tracked,
            None => unreachable!("a session core is used after it was taken apart"),
        }
    }

    /// See [`DatabagHandle::id`].
    #[inline]
    pub fn id(&self) -> &SessionId {
        self.parts().state.current_id()
    }

    /// See [`DatabagHandle::is_new`].
    #[inline]
    pub fn is_new(&self) -> bool {
        matches!(self.parts().state.origin, Origin::New { .. })
    }

    /// See [`DatabagHandle::expires_at`].
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.parts().state.expires_ms.and_then(system_time)
    }

    /// See [`DatabagHandle::renew`]. A destroyed session stays destroyed (writes after
    /// `destroy()` already start a fresh session under a new id).
    pub fn renew(&mut self) {
        let state = &mut self.parts_mut().state;
        if state.intent.is_destroy() {
            return;
        }
        state.intent = Intent::Renew { to: draw_id() };
        // A CSRF token minted before the privilege change (say, on the login form) must not
        // work after it: the secret goes with the old id, a new one is made on demand.
        csrf::forget(self.tracked_mut().internal_mut());
    }

    /// See [`DatabagHandle::destroy`]. The data reads as defaults from here on; the data
    /// as it was is kept for `on_deleted`.
    pub fn destroy(&mut self) {
        let parts = self.parts_mut();
        let old = std::mem::take(&mut parts.tracked);
        if !parts.state.intent.is_destroy() {
            parts.state.intent = Intent::Destroy { to: draw_id() };
            parts.destroyed = Some(old.into_inner());
        }
    }

    /// See [`DatabagHandle::reset`].
    pub fn reset(&mut self) {
        let _ = self.tracked_mut().replace(T::defaults());
    }

    /// See [`DatabagHandle::remember_for`].
    pub fn remember_for(&mut self, duration: Option<Duration>) {
        let ms = duration.map(millis).filter(|ms| *ms > 0);
        self.tracked_mut()
            .internal_mut()
            .set_u64(keys::REMEMBER, ms);
    }

    /// See [`DatabagHandle::remembered_for`].
    pub fn remembered_for(&self) -> Option<Duration> {
        self.tracked()
            .internal()
            .get_u64(keys::REMEMBER)
            .map(Duration::from_millis)
    }

    /// See [`DatabagHandle::end_at`].
    pub fn end_at(&mut self, at: Option<SystemTime>) {
        self.tracked_mut()
            .internal_mut()
            .set_u64(keys::END, at.map(epoch_ms));
    }

    /// See [`DatabagHandle::ends_at`].
    pub fn ends_at(&self) -> Option<SystemTime> {
        self.tracked()
            .internal()
            .get_u64(keys::END)
            .and_then(system_time)
    }

    /// See [`DatabagHandle::csrf_token`].
    ///
    /// # Errors
    /// If the operating system's random source fails.
    pub fn csrf_token(&mut self) -> Result<String, RandomnessError> {
        csrf::token(self.tracked_mut().internal_mut())
    }

    /// See [`DatabagHandle::flash`].
    ///
    /// # Errors
    /// If the message's `Serialize` implementation fails.
    pub fn flash<M: Serialize>(&mut self, message: M) -> Result<(), EncodeError> {
        flash::push(self.tracked_mut().internal_mut(), &message)
    }

    /// See [`DatabagHandle::take_flash`].
    pub fn take_flash<M: DeserializeOwned>(&mut self) -> Vec<M> {
        flash::take(self.tracked_mut().internal_mut())
    }

    /// See [`DatabagHandle::save`].
    ///
    /// # Errors
    /// See [`SaveError`].
    pub async fn save(&mut self) -> Result<(), SaveError> {
        // A handle no layer manages stores nothing, by definition.
        let Some(back) = self.back.clone() else {
            return Ok(());
        };
        back.save(self.parts_mut()).await
    }
}

/// A fresh id, or `None` (logged) if the random source fails now: the commit draws again.
fn draw_id() -> Option<SessionId> {
    SessionId::generate()
        .map_err(|error| tracing::error!(%error, "cannot draw a new session id now; the commit will try again"))
        .ok()
}

impl<T: Databag> Drop for Core<T> {
    fn drop(&mut self) {
        if let (Some(back), Some(parts)) = (self.back.take(), self.parts.take()) {
            back.give_back(parts);
        }
    }
}

/// Any `Serialize` type: what generated `flash` methods bound their message on. (Naming
/// serde's trait in generated code would need a public re-export of it, and rustc would then
/// print that re-export's path in every "does not implement `Serialize`" error.)
pub trait FlashOut: Serialize {}
impl<M: Serialize> FlashOut for M {}

/// Any `DeserializeOwned` type: what generated `take_flash` methods bound their message on
/// (see [`FlashOut`] for why).
pub trait FlashIn: DeserializeOwned {}
impl<M: DeserializeOwned> FlashIn for M {}

/// Builds a generated handle around a core; generated code implements it next to
/// [`DatabagHandle`], and the layer's extractor uses it.
pub trait FromCore: DatabagHandle {
    /// Wraps `core`.
    fn from_core(core: Core<Self::Data>) -> Self;
}

/// Marks stored field `index` changed and returns the value for writing it.
#[inline]
pub fn field_mut<T: Databag>(core: &mut Core<T>, index: usize) -> &mut T {
    let tracked = core.tracked_mut();
    tracked.mark_changed(index);
    tracked.value_mut_untracked()
}

/// The value for writing a `#[databag(skip)]` field, which is never stored and so never
/// marked changed.
#[inline]
pub fn skipped_field_mut<T: Databag>(core: &mut Core<T>) -> &mut T {
    core.tracked_mut().value_mut_untracked()
}
