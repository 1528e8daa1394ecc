//! Who hears of the sessions a store removes by itself (expiry sweeps, eviction): the
//! layers' `on_deleted` listeners, held weakly, each told of every removal once.

use std::sync::{Arc, PoisonError, RwLock, Weak};

use super::RemovalListener;
use crate::id::SessionDigest;
use crate::record::Record;

type WeakListener = Weak<dyn Fn(&SessionDigest, &Record) + Send + Sync>;

/// A session a store removed by itself, to report.
pub(crate) struct Removed {
    pub(crate) digest: SessionDigest,
    pub(crate) record: Record,
}

/// The listeners subscribed to one store. Each is held weakly, so that it ends with the last
/// layer holding it; one subscribed twice (a layer applied to several routes) is held once.
#[derive(Default)]
pub(crate) struct Removals {
    listeners: RwLock<Vec<WeakListener>>,
}

impl Removals {
    pub(crate) fn subscribe(&self, listener: &RemovalListener) {
        let mut listeners = self
            .listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        listeners.retain(|held| held.strong_count() > 0);
        if !listeners.iter().any(|held| {
            held.upgrade()
                .is_some_and(|held| Arc::ptr_eq(&held, listener))
        }) {
            listeners.push(Arc::downgrade(listener));
        }
    }

    /// The listeners still alive, dropping the others from the list.
    pub(crate) fn alive(&self) -> Vec<RemovalListener> {
        let mut listeners = self
            .listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        listeners.retain(|listener| listener.strong_count() > 0);
        listeners.iter().filter_map(Weak::upgrade).collect()
    }

    /// Tells every live listener of each of `removed`, in order. A listener is the app's
    /// code: if it panics, the sweeper (or the request whose create evicted a session) must
    /// not die with it, and the other reports go on.
    pub(crate) fn report(&self, removed: &[Removed]) {
        if removed.is_empty() {
            return;
        }
        for listener in &self.alive() {
            for session in removed {
                let call =
                    std::panic::AssertUnwindSafe(|| listener(&session.digest, &session.record));
                if std::panic::catch_unwind(call).is_err() {
                    tracing::error!(
                        session = %session.digest,
                        "an on_deleted hook panicked; the other reports go on"
                    );
                }
            }
        }
    }
}
