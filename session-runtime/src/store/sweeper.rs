//! The background task of a store that removes expired sessions periodically: started on
//! the store's first use inside a Tokio runtime, stopped when the store is dropped.

use std::future::Future;
use std::sync::{OnceLock, Weak};
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
    task: OnceLock<AbortHandle>,
}

impl Sweeper {
    /// A sweeper that runs every `interval`, clamped to between a millisecond and a year
    /// (Tokio's interval refuses zero, and overflows near `Duration::MAX`).
    pub(crate) fn new(interval: Duration) -> Self {
        const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
        Self {
            interval: interval.clamp(Duration::from_millis(1), YEAR),
            task: OnceLock::new(),
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Starts the task for `store` unless it runs already or there is no Tokio runtime
    /// here (then the next call inside one starts it). Cheap when it runs: one atomic load.
    pub(crate) fn ensure<S: Sweep>(&self, store: impl FnOnce() -> Weak<S>) {
        if self.task.get().is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let interval = self.interval;
        let _ = self.task.get_or_init(|| {
            runtime
                .spawn(sweep_periodically(store(), interval))
                .abort_handle()
        });
    }

    /// The running task, if it was started (for tests that watch it end).
    #[cfg(test)]
    pub(crate) fn task(&self) -> Option<AbortHandle> {
        self.task.get().cloned()
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

/// The task: holds only a weak reference, so it never keeps the store alive.
async fn sweep_periodically<S: Sweep>(store: Weak<S>, interval: Duration) {
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
