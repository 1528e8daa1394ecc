//! The per-request slot: the layer puts one in the request's extensions, the extractor takes
//! the session out of it, and the handle gives the session back to it when dropped.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::config::Config;
use crate::handle::{ReturnTo, Returned};
use crate::record::Snapshot;

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
    /// The record as the store held it when this request loaded the session: at commit, a
    /// field set to the value it already had is no change. Whatever writes the session
    /// before the commit must replace it with what it wrote.
    snapshot: Mutex<Option<Snapshot>>,
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

impl<T> Slot<T> {
    pub(crate) fn new(config: Arc<Config<T>>) -> Self {
        Self {
            config,
            state: Mutex::new(SlotState::Untouched),
            snapshot: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
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

    /// Keeps what the session was loaded from, for the commit.
    pub(crate) fn keep_snapshot(&self, snapshot: Option<Snapshot>) {
        *self.snapshot.lock().unwrap_or_else(PoisonError::into_inner) = snapshot;
    }

    /// What the session was loaded from, if it was loaded from a store and kept.
    pub(crate) fn take_snapshot(&self) -> Option<Snapshot> {
        self.snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Loading failed: the next extraction may try again.
    pub(crate) fn release(&self) {
        *self.lock() = SlotState::Untouched;
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

impl<T: Send> ReturnTo<T> for Slot<T> {
    fn give_back(&self, returned: Returned<T>) {
        *self.lock() = SlotState::Returned(returned);
    }
}
