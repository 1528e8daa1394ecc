//! The runtime behind every generated handle: [`Core<T>`] holds the tracked data and the
//! request's session state (where the session came from, what the handler asked for), and
//! gives both back to the layer when the handler drops the handle.
//!
//! Nothing here knows about stores, cookies or HTTP: the layer hands a core a way back
//! ([`ReturnTo`]) and reads the [`SessionState`] when the request commits.

use std::sync::Arc;
use std::time::SystemTime;

use crate::clock::system_time;
use crate::id::SessionId;
use crate::schema::{Databag, DatabagHandle, Tracked};
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
    /// End the session at commit.
    Destroy,
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
            Intent::Renew { to: Some(to) } => to,
            _ => &self.id,
        }
    }
}

/// A handle's data and state once the handler is done with it.
pub(crate) struct Returned<T> {
    pub(crate) tracked: Tracked<T>,
    pub(crate) state: SessionState,
}

/// Where a managed core goes when its handle is dropped: the layer's per-request slot.
pub(crate) trait ReturnTo<T>: Send + Sync {
    fn give_back(&self, returned: Returned<T>);
}

/// What a generated handle wraps: the tracked data, the session's state, and (inside a
/// request) where the handle returns when dropped.
pub struct Core<T: Databag> {
    // Always `Some` while the core is alive; taken only by `Drop` and `into_tracked`.
    tracked: Option<Tracked<T>>,
    state: SessionState,
    back: Option<Arc<dyn ReturnTo<T>>>,
}

impl<T: Databag> Core<T> {
    /// A core that no layer manages (for unit tests of code taking a handle). Its id is
    /// random, it is new, and nothing it does is stored.
    pub fn new(tracked: Tracked<T>) -> Self {
        let id = SessionId::generate().unwrap_or_else(|_| SessionId::from_bytes([0; 24]));
        Self {
            tracked: Some(tracked),
            state: SessionState::new(id, None, ClientToken::None),
            back: None,
        }
    }

    pub(crate) fn managed(
        tracked: Tracked<T>,
        state: SessionState,
        back: Arc<dyn ReturnTo<T>>,
    ) -> Self {
        Self {
            tracked: Some(tracked),
            state,
            back: Some(back),
        }
    }

    /// The tracked data.
    #[inline]
    pub fn tracked(&self) -> &Tracked<T> {
        match &self.tracked {
            Some(tracked) => tracked,
            None => unreachable!("a session core is used after it was taken apart"),
        }
    }

    /// The tracked data, mutably.
    #[inline]
    pub fn tracked_mut(&mut self) -> &mut Tracked<T> {
        match &mut self.tracked {
            Some(tracked) => tracked,
            None => unreachable!("a session core is used after it was taken apart"),
        }
    }

    /// Unwraps the tracked data; nothing goes back to the layer.
    pub fn into_tracked(mut self) -> Tracked<T> {
        self.back = None;
        match self.tracked.take() {
            Some(tracked) => tracked,
            None => unreachable!("a session core is used after it was taken apart"),
        }
    }

    /// See [`DatabagHandle::id`].
    #[inline]
    pub fn id(&self) -> &SessionId {
        self.state.current_id()
    }

    /// See [`DatabagHandle::is_new`].
    #[inline]
    pub fn is_new(&self) -> bool {
        matches!(self.state.origin, Origin::New { .. })
    }

    /// See [`DatabagHandle::expires_at`].
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.state.expires_ms.and_then(system_time)
    }

    /// See [`DatabagHandle::renew`]. A destroyed session stays destroyed.
    pub fn renew(&mut self) {
        if self.state.intent == Intent::Destroy {
            return;
        }
        let to = SessionId::generate()
            .map_err(|error| tracing::error!(%error, "cannot draw a new session id now; the commit will try again"))
            .ok();
        self.state.intent = Intent::Renew { to };
    }

    /// See [`DatabagHandle::destroy`].
    pub fn destroy(&mut self) {
        self.state.intent = Intent::Destroy;
    }

    /// See [`DatabagHandle::reset`].
    pub fn reset(&mut self) {
        let _ = self.tracked_mut().replace(T::defaults());
    }
}

impl<T: Databag> Drop for Core<T> {
    fn drop(&mut self) {
        if let (Some(back), Some(tracked)) = (self.back.take(), self.tracked.take()) {
            let state = std::mem::replace(&mut self.state, SessionState::placeholder());
            back.give_back(Returned { tracked, state });
        }
    }
}

impl SessionState {
    /// What a dropped core leaves behind in place of its state (never read).
    fn placeholder() -> Self {
        Self::new(SessionId::from_bytes([0; 24]), None, ClientToken::None)
    }
}

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
