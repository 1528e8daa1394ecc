//! Timing helpers: a runtime for async loops, and the interleaved median timing of the
//! `compare` binary.

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// A current-thread Tokio runtime with timers (the session layer bounds store calls with a
/// timeout), as each benchmark thread uses.
///
/// # Errors
/// If the operating system refuses the runtime's resources.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Runs `f` `iters` times inside `rt` and returns the time it took (for criterion's
/// `iter_custom`, and for [`interleaved`] batches).
pub fn time_async<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(f().await);
        }
        start.elapsed()
    })
}

/// Runs `f` `iters` times and returns the time it took.
pub fn time_sync<R>(iters: u64, mut f: impl FnMut() -> R) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(f());
    }
    start.elapsed()
}

/// One thing to measure: runs the operation the given number of times and returns the
/// elapsed time.
pub type Batch<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

/// How long to measure.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Rounds; each runs one batch of every variant.
    pub rounds: usize,
    /// The target duration of one batch.
    pub batch: Duration,
}

/// The distribution of per-batch nanoseconds per operation.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Median.
    pub median: f64,
    /// First quartile.
    pub q1: f64,
    /// Third quartile.
    pub q3: f64,
}

/// Measures every variant in interleaved batches (round `r` starts with variant
/// `r % len`), so that drift from other load on the machine affects all of them alike, and
/// returns each one's per-batch ns/op distribution.
pub fn interleaved(plan: Plan, variants: &mut [Batch<'_>]) -> Vec<Summary> {
    interleaved_samples(plan, variants)
        .into_iter()
        .map(summarize)
        .collect()
}

/// [`interleaved`], returning each variant's per-batch ns/op in round order (sample `r` of
/// every variant comes from round `r`, so they can be paired).
pub fn interleaved_samples(plan: Plan, variants: &mut [Batch<'_>]) -> Vec<Vec<f64>> {
    let sizes: Vec<u64> = variants
        .iter_mut()
        .map(|variant| calibrate(variant, plan.batch))
        .collect();
    let mut samples = vec![Vec::with_capacity(plan.rounds); variants.len()];
    for round in 0..plan.rounds {
        for k in 0..variants.len() {
            let index = (round + k) % variants.len();
            let elapsed = variants[index](sizes[index]);
            samples[index].push(elapsed.as_nanos() as f64 / sizes[index] as f64);
        }
    }
    samples
}

/// Round-by-round differences `with[r] - without[r]` of two variants measured by
/// [`interleaved_samples`]: the time of what `with` does beyond `without`, with the drift of
/// the machine between rounds cancelled.
#[must_use]
pub fn differences(with: &[f64], without: &[f64]) -> Vec<f64> {
    with.iter().zip(without).map(|(a, b)| a - b).collect()
}

/// A batch size that takes about `target` (after a warm-up).
fn calibrate(variant: &mut Batch<'_>, target: Duration) -> u64 {
    let mut iters = 1u64;
    loop {
        let elapsed = variant(iters);
        if elapsed >= target / 8 || iters >= 1 << 32 {
            let scale = target.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
            return ((iters as f64 * scale) as u64).max(1);
        }
        iters *= 4;
    }
}

/// The median and quartiles of `samples`.
#[must_use]
pub fn summarize(mut samples: Vec<f64>) -> Summary {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if samples.is_empty() {
            return f64::NAN;
        }
        let index = ((samples.len() - 1) as f64 * q).round() as usize;
        samples[index]
    };
    Summary {
        median: at(0.5),
        q1: at(0.25),
        q3: at(0.75),
    }
}
