//! Waiting, with a bound, for work the layer may run in the background to settle: polls,
//! never a fixed sleep that a test's outcome depends on.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::counting::Counts;

/// How often the probes below look.
const POLL: Duration = Duration::from_millis(10);
/// How long the store must stay quiet (nothing running, nothing started or ended) before a
/// record count is trusted: longer than any gap between two steps of one background task.
const QUIET: Duration = Duration::from_millis(150);
/// The most any settling may take: past every stall the tests inject.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// Polls `done` until it holds, for at most `limit`; panics with `what` if it never does.
pub async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < limit,
            "gave up after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the store (whose operations `counts` sees) holds `expected` records, as
/// `records` counts them in the real store, and has been quiet for a while; gives up after
/// [`SETTLE_LIMIT`]. Returns the record count it settled on, or the last one seen when it
/// gave up, for the test to assert on.
pub async fn settle_records<F, Fut>(counts: &Counts, expected: usize, mut records: F) -> usize
where
    F: FnMut() -> Fut,
    Fut: Future<Output = usize>,
{
    let started = Instant::now();
    // Since when the store has been quiet and the count right, and the activity mark then.
    let mut steady: Option<(Instant, u64)> = None;
    loop {
        let mark = counts.activity_mark();
        let count = records().await;
        let quiet = counts.is_quiet_since(mark);
        steady = match steady {
            Some((since, first)) if quiet && count == expected && mark == first => {
                if since.elapsed() >= QUIET {
                    return count;
                }
                Some((since, first))
            }
            _ if quiet && count == expected => Some((Instant::now(), mark)),
            _ => None,
        };
        if started.elapsed() >= SETTLE_LIMIT {
            return count;
        }
        tokio::time::sleep(POLL).await;
    }
}
