//! The per-request slot: the layer puts one in the request's extensions, the extractor takes
//! the session out of it, the handle gives the session back to it when dropped, and explicit
//! saves leave the token updates for the response in it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::backend::BoxFuture;
use crate::client::Client;
use crate::commit::{merge, Outlet, Pending};
use crate::config::Config;
use crate::error::SaveError;
use crate::handle::{ReturnTo, Returned};
use crate::record::Snapshot;
use crate::schema::Databag;

enum SlotState<T> {
    /// No handler has asked for the session.
    Untouched,
    /// A handle is alive.
    CheckedOut,
    /// The handle was dropped and gave its data back.
    Returned(Returned<T>),
}

struct Inner<T> {
    state: SlotState<T>,
    /// Token updates of explicit saves, for the response.
    pending: Option<Pending>,
    /// The layer took what it commits: no later save can reach the response.
    responded: bool,
    /// The record as the store held it when this request loaded the session: at commit, a
    /// field set to the value it already had is no change. An explicit save drops it (what
    /// is stored is no longer what was loaded).
    snapshot: Option<Snapshot>,
    /// What the layer keeps of this request's client, when it keeps anything.
    client: Option<Client>,
}

/// One per request: the layer's configuration, and where the handle returns.
pub(crate) struct Slot<T> {
    pub(crate) config: Arc<Config<T>>,
    inner: Mutex<Inner<T>>,
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
            inner: Mutex::new(Inner {
                state: SlotState::Untouched,
                pending: None,
                responded: false,
                snapshot: None,
                client: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // Every critical section only swaps whole values: a poisoned lock holds no broken
        // state.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn check_out(&self) -> CheckOut<T> {
        let mut inner = self.lock();
        match std::mem::replace(&mut inner.state, SlotState::CheckedOut) {
            SlotState::Untouched => CheckOut::Load,
            SlotState::Returned(returned) => CheckOut::Again(returned),
            SlotState::CheckedOut => CheckOut::Busy,
        }
    }

    /// Keeps what the session was loaded from, for the commit.
    pub(crate) fn keep_snapshot(&self, snapshot: Option<Snapshot>) {
        self.lock().snapshot = snapshot;
    }

    /// What the session was loaded from, if it was loaded from a store, kept, and not
    /// written since by an explicit save.
    pub(crate) fn take_snapshot(&self) -> Option<Snapshot> {
        self.lock().snapshot.take()
    }

    /// What the layer keeps of this request's client (device, address), for a commit that
    /// stores the session under a new id.
    pub(crate) fn keep_client(&self, client: Client) {
        self.lock().client = Some(client);
    }

    /// What was kept of the client, if anything.
    pub(crate) fn client(&self) -> Option<Client> {
        self.lock().client.clone()
    }

    /// Loading failed: the next extraction may try again.
    pub(crate) fn release(&self) {
        self.lock().state = SlotState::Untouched;
    }

    /// What the layer commits after the handler: the session given back (`None` when no
    /// handler used it, or a handle outlived the response: it was moved into a task, and
    /// only what it saves explicitly is kept), and the token updates of explicit saves.
    /// From here on, saves can no longer reach the response.
    pub(crate) fn finish(&self) -> (Option<Returned<T>>, Option<Pending>) {
        let mut inner = self.lock();
        inner.responded = true;
        let pending = inner.pending.take();
        let returned = match std::mem::replace(&mut inner.state, SlotState::Untouched) {
            SlotState::Returned(returned) => Some(returned),
            SlotState::CheckedOut => {
                inner.state = SlotState::CheckedOut;
                tracing::debug!(
                    "a session handle outlived its response; only what it saves explicitly is \
                     kept"
                );
                None
            }
            SlotState::Untouched => None,
        };
        (returned, pending)
    }
}

impl<T: Databag> ReturnTo<T> for Slot<T> {
    fn give_back(&self, returned: Returned<T>) {
        let mut inner = self.lock();
        if inner.responded && returned.tracked.has_changes() {
            tracing::warn!(
                "a session handle was dropped after its response with unsaved changes; they are \
                 lost (call `save().await` before dropping it)"
            );
        }
        inner.state = SlotState::Returned(returned);
    }

    fn save<'a>(&'a self, session: &'a mut Returned<T>) -> BoxFuture<'a, Result<(), SaveError>> {
        // Whatever the save's outcome, the store may no longer hold what was loaded.
        self.lock().snapshot = None;
        Box::pin(crate::commit::save(&self.config, session, self))
    }
}

impl<T: Send> Outlet for Slot<T> {
    fn responded(&self) -> bool {
        self.lock().responded
    }

    fn client(&self) -> Option<Client> {
        Slot::client(self)
    }

    fn deliver(&self, pending: Pending) -> bool {
        let mut inner = self.lock();
        if inner.responded {
            return false;
        }
        inner.pending = Some(match inner.pending.take() {
            Some(earlier) => Pending {
                update: merge(earlier.update, pending.update),
                persistent: pending.persistent,
            },
            None => pending,
        });
        true
    }
}
