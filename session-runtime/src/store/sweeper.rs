//! The background task of a store that removes expired sessions periodically: started on
//! the store's first use inside a Tokio runtime (again on a use after that runtime shut
//! down), stopped when the store is dropped.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::task::AbortHandle;

/// A store that can remove its expired sessions; returns how many it removed.
pub(crate) trait Sweep: Send + Sync + 'static {
    /// What the store is called in the log.
    const NAME: &'static str;

    fn sweep_expired(&self) -> impl Future<Output = usize> + Send;
}

/// The sweeper of one store. Lives in the store's shared state: dropping it (with the last
/// clone of the store) aborts the task.
pub(crate) struct Sweeper {
    interval: Duration,
    /// Whether a task is alive: set when one is spawned, cleared when its future is
    /// dropped (it returned, was aborted, or the runtime it ran on shut down).
    running: Arc<AtomicBool>,
    /// The task last spawned.
    task: Mutex<Option<AbortHandle>>,
}

impl Sweeper {
    /// A sweeper that runs every `interval`, clamped to between a millisecond and a year
    /// (Tokio's interval refuses zero, and overflows near `Duration::MAX`).
    pub(crate) fn new(interval: Duration) -> Self {
        const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
        Self {
            interval: interval.clamp(Duration::from_millis(1), YEAR),
            running: Arc::new(AtomicBool::new(false)),
            task: Mutex::new(None),
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Starts the task for `store` unless it runs already or there is no Tokio runtime
    /// here (then the next call inside one starts it). A task whose runtime shut down is
    /// gone: the next call starts another on the caller's runtime. Cheap when it runs: one
    /// atomic load.
    pub(crate) fn ensure<S: Sweep>(&self, store: impl FnOnce() -> Weak<S>) {
        if self.running.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if self.running.load(Ordering::Acquire) {
            return; // another caller started it meanwhile
        }
        if let Some(old) = task.take() {
            old.abort();
        }
        self.running.store(true, Ordering::Release);
        let alive = Alive(Arc::clone(&self.running));
        *task = Some(
            runtime
                .spawn(sweep_periodically(store(), self.interval, alive))
                .abort_handle(),
        );
    }

    /// The task last started, if one was (for tests that watch it end).
    #[cfg(test)]
    pub(crate) fn task(&self) -> Option<AbortHandle> {
        self.task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        let task = self.task.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = task.take() {
            task.abort();
        }
    }
}

/// Held by the task: clears the sweeper's `running` flag when the task's future is dropped,
/// however it ends (a runtime shutting down drops its tasks' futures).
struct Alive(Arc<AtomicBool>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The task: holds only a weak reference, so it never keeps the store alive.
async fn sweep_periodically<S: Sweep>(store: Weak<S>, interval: Duration, _alive: Alive) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate
    loop {
        ticks.tick().await;
        let Some(store) = store.upgrade() else { return };
        let removed = store.sweep_expired().await;
        if removed > 0 {
            tracing::debug!(removed, store = S::NAME, "swept expired sessions");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Counts the sweeps it is asked for.
    #[derive(Default)]
    struct Counted(AtomicUsize);

    impl Sweep for Counted {
        const NAME: &'static str = "counted";

        async fn sweep_expired(&self) -> usize {
            self.0.fetch_add(1, Ordering::SeqCst);
            0
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    /// Runs `runtime` until `store` was swept `at_least` times (counted, not timed: the
    /// sweep interval is a millisecond and the loop gives up after many of them).
    fn swept_on(runtime: &tokio::runtime::Runtime, store: &Arc<Counted>, at_least: usize) -> bool {
        runtime.block_on(async {
            for _ in 0..10_000 {
                if store.0.load(Ordering::SeqCst) >= at_least {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            false
        })
    }

    #[test]
    fn a_sweeper_whose_runtime_shut_down_is_started_again_by_the_next_use() {
        let store = Arc::new(Counted::default());
        let sweeper = Sweeper::new(Duration::from_millis(1));
        let first = runtime();
        first.block_on(async { sweeper.ensure(|| Arc::downgrade(&store)) });
        assert!(swept_on(&first, &store, 1), "the sweeper never ran");
        let task = sweeper.task().unwrap();
        drop(first);
        assert!(
            task.is_finished(),
            "the runtime shut down, its task with it"
        );

        let second = runtime();
        let before = store.0.load(Ordering::SeqCst);
        second.block_on(async { sweeper.ensure(|| Arc::downgrade(&store)) });
        assert!(
            swept_on(&second, &store, before + 1),
            "no sweeper runs on the second runtime"
        );
        // Further uses while it runs start nothing more.
        let running = sweeper.task().unwrap();
        second.block_on(async { sweeper.ensure(|| Arc::downgrade(&store)) });
        assert!(!running.is_finished());
        assert_eq!(sweeper.task().unwrap().id(), running.id());
        drop(sweeper);
        second.block_on(tokio::task::yield_now());
        assert!(running.is_finished(), "dropping the sweeper stops the task");
    }
}
