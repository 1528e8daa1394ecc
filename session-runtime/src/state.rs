//! The per-request session state a handle carries, and the slot through which a handle goes
//! back to the layer when the handler drops it.

use std::sync::{Arc, Mutex, PoisonError};

use crate::config::Config;
use crate::databag::Databag;
use crate::id::SessionId;
use crate::store::SessionMeta;
use crate::tracking::Tracked;

/// What is known about the session of one request, besides its data.
#[derive(Debug, Clone)]
pub(crate) struct SessionState {
    /// The id the client will hold after this request.
    pub(crate) id: SessionId,
    /// The id the session is stored under, if it was loaded from the store.
    pub(crate) stored_id: Option<SessionId>,
    /// The stored meta, if loaded.
    pub(crate) meta: Option<SessionMeta>,
    /// When the session expires if unused, as far as this request knows.
    pub(crate) expires_ms: Option<u64>,
    /// Whether the client sent a token at all (even an invalid one).
    pub(crate) client_token: bool,
    pub(crate) destroyed: bool,
    /// `renew()` could not get randomness for a new id: the request must fail.
    pub(crate) renew_failed: bool,
    /// The cookie was opened with an old key: seal it again with the newest.
    pub(crate) reseal: bool,
}

impl SessionState {
    /// The state of a session that exists only in this request so far.
    pub(crate) fn new(id: SessionId, expires_ms: Option<u64>, client_token: bool) -> Self {
        Self {
            id,
            stored_id: None,
            meta: None,
            expires_ms,
            client_token,
            destroyed: false,
            renew_failed: false,
            reseal: false,
        }
    }

    /// The state of a session found in the store (or a cookie) under `id`.
    pub(crate) fn stored(id: SessionId, meta: SessionMeta) -> Self {
        let mut state = Self::new(id.clone(), meta.expires_ms, true);
        state.stored_id = Some(id);
        state.meta = Some(meta);
        state
    }

    pub(crate) fn is_new(&self) -> bool {
        self.stored_id.is_none()
    }

    pub(crate) fn is_renewed(&self) -> bool {
        self.stored_id
            .as_ref()
            .is_some_and(|stored| *stored != self.id)
    }
}

/// A handle's data and state once the handler is done with it.
pub(crate) struct Returned<T> {
    pub(crate) tracked: Tracked<T>,
    pub(crate) state: SessionState,
}

enum SlotState<T> {
    /// No handler has asked for the session.
    Untouched,
    /// A handle is alive.
    CheckedOut,
    /// The handle was dropped and gave its data back.
    Returned(Returned<T>),
}

/// One per request: the layer's configuration, and where the handle returns.
pub(crate) struct Slot<T> {
    pub(crate) config: Arc<Config<T>>,
    state: Mutex<SlotState<T>>,
}

/// What [`Slot::check_out`] found.
pub(crate) enum CheckOut<T> {
    /// First extraction in this request: load the session.
    Load,
    /// The session was extracted and dropped earlier in this request: reuse it.
    Again(Returned<T>),
    /// A handle for this request is still alive.
    Busy,
}

impl<T: Databag> Slot<T> {
    pub(crate) fn new(config: Arc<Config<T>>) -> Self {
        Self {
            config,
            state: Mutex::new(SlotState::Untouched),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState<T>> {
        // Every critical section only swaps whole values: a poisoned lock holds no broken
        // state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn check_out(&self) -> CheckOut<T> {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, SlotState::CheckedOut) {
            SlotState::Untouched => CheckOut::Load,
            SlotState::Returned(returned) => CheckOut::Again(returned),
            SlotState::CheckedOut => CheckOut::Busy,
        }
    }

    /// Loading failed: the next extraction may try again.
    pub(crate) fn release(&self) {
        *self.lock() = SlotState::Untouched;
    }

    pub(crate) fn give_back(&self, returned: Returned<T>) {
        *self.lock() = SlotState::Returned(returned);
    }

    /// What the layer commits after the handler: `None` when no handler used the session,
    /// or a handle outlived the response (it was moved into a task; its changes are not
    /// saved).
    pub(crate) fn take_returned(&self) -> Option<Returned<T>> {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, SlotState::Untouched) {
            SlotState::Returned(returned) => Some(returned),
            SlotState::CheckedOut => {
                *state = SlotState::CheckedOut;
                tracing::debug!(
                    "a session handle outlived its response; its changes are not saved"
                );
                None
            }
            SlotState::Untouched => None,
        }
    }
}
