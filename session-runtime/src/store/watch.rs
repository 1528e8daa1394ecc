//! Waiting for a session's removal: [`Watchers`] is the registry a store keeps of who waits
//! on which session, and [`RemovalWatch`] is what a waiter holds (a WebSocket handler that
//! closes its socket when its session is destroyed or revoked).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::id::SessionDigest;

/// Resolves when the session it watches is removed (see
/// [`SessionStore::watch_removal`](super::SessionStore::watch_removal)), or when the store
/// that made it is dropped (a session cannot outlive its store). Dropping it stops watching.
#[derive(Debug)]
#[must_use = "a watch does nothing unless awaited"]
pub struct RemovalWatch {
    inner: Option<oneshot::Receiver<()>>,
}

impl RemovalWatch {
    /// A watch that is already resolved: the session is not stored.
    pub fn resolved() -> Self {
        Self { inner: None }
    }

    /// Whether the session was removed (or the store dropped) already, without waiting.
    pub fn is_resolved(&mut self) -> bool {
        let Some(receiver) = &mut self.inner else {
            return true;
        };
        if matches!(
            receiver.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        ) {
            return false;
        }
        // Received or closed: resolved for good (a receiver is never polled again).
        self.inner = None;
        true
    }
}

impl Future for RemovalWatch {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.inner {
            None => Poll::Ready(()),
            Some(receiver) => {
                // Sent (removed) or closed (the store is gone): either way, resolved.
                std::task::ready!(Pin::new(receiver).poll(cx)).ok();
                self.inner = None;
                Poll::Ready(())
            }
        }
    }
}

/// Who waits on which session, for a store to notify on removal. Cheap when nobody waits:
/// [`notify`](Self::notify) is one atomic load then.
#[derive(Debug, Default)]
pub struct Watchers {
    waiting: Mutex<HashMap<SessionDigest, Vec<oneshot::Sender<()>>>>,
    /// How many sessions have waiters, to skip the lock when none has.
    watched: AtomicUsize,
    /// The map's size after its last clean-up of abandoned watches.
    cleaned_at: AtomicUsize,
}

impl Watchers {
    /// No waiter.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A watch on `id`, resolved by the next [`notify`](Self::notify) of it. The caller
    /// checks afterwards (not before) that the session is still stored, and resolves the
    /// watch itself if not, so a removal between the check and the registration is never
    /// missed.
    pub fn watch(&self, id: &SessionDigest) -> RemovalWatch {
        let (sender, receiver) = oneshot::channel();
        let mut waiting = self.lock();
        let senders = waiting.entry(*id).or_default();
        senders.retain(|sender| !sender.is_closed());
        senders.push(sender);
        let len = waiting.len();
        // Abandoned watches of sessions never removed would pile up: sweep them whenever
        // the map has doubled since the last sweep.
        if len > 64 && len >= self.cleaned_at.load(Ordering::Relaxed).saturating_mul(2) {
            waiting.retain(|_, senders| {
                senders.retain(|sender| !sender.is_closed());
                !senders.is_empty()
            });
            self.cleaned_at.store(waiting.len(), Ordering::Relaxed);
        }
        self.watched.store(waiting.len(), Ordering::Relaxed);
        RemovalWatch {
            inner: Some(receiver),
        }
    }

    /// Resolves every watch on `id`.
    pub fn notify(&self, id: &SessionDigest) {
        if self.watched.load(Ordering::Relaxed) == 0 {
            return;
        }
        let senders = {
            let mut waiting = self.lock();
            let senders = waiting.remove(id);
            self.watched.store(waiting.len(), Ordering::Relaxed);
            senders
        };
        for sender in senders.into_iter().flatten() {
            let _ = sender.send(());
        }
    }

    /// The sessions someone waits on now (for a store that must check them after missing
    /// notifications, such as a Redis subscriber that reconnected).
    #[must_use]
    pub fn watched(&self) -> Vec<SessionDigest> {
        if self.watched.load(Ordering::Relaxed) == 0 {
            return Vec::new();
        }
        let mut waiting = self.lock();
        waiting.retain(|_, senders| {
            senders.retain(|sender| !sender.is_closed());
            !senders.is_empty()
        });
        self.watched.store(waiting.len(), Ordering::Relaxed);
        waiting.keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionDigest, Vec<oneshot::Sender<()>>>> {
        // Nothing user-provided runs under the lock: a poisoned map is still consistent.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(byte: u8) -> SessionDigest {
        SessionDigest::from_bytes([byte; 32])
    }

    #[tokio::test]
    async fn a_notify_resolves_every_watch_of_that_session_only() {
        let watchers = Watchers::new();
        let mut first = watchers.watch(&digest(1));
        let mut second = watchers.watch(&digest(1));
        let mut other = watchers.watch(&digest(2));
        assert!(!first.is_resolved());
        watchers.notify(&digest(1));
        assert!(first.is_resolved());
        assert!(second.is_resolved());
        assert!(!other.is_resolved());
        first.await;
        assert_eq!(watchers.watched(), vec![digest(2)]);
    }

    #[tokio::test]
    async fn dropped_watches_are_forgotten() {
        let watchers = Watchers::new();
        for byte in 0..200 {
            drop(watchers.watch(&digest(byte)));
        }
        assert!(watchers.watched().is_empty());
        // Sweeping happens on registration too: the map stays bounded.
        assert!(watchers.lock().len() < 200);
    }

    #[tokio::test]
    async fn a_dropped_store_resolves_its_watches() {
        let watchers = Watchers::new();
        let watch = watchers.watch(&digest(3));
        drop(watchers);
        watch.await;
    }

    #[test]
    fn notify_without_waiters_takes_no_lock() {
        let watchers = Watchers::new();
        let guard = watchers.lock();
        watchers.notify(&digest(4)); // would deadlock if it locked
        drop(guard);
    }
}
