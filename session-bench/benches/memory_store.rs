//! Memory stores holding 100k sessions: load and save, from 1 and 2 threads, ours against
//! tower-sessions' `MemoryStore`. With 2 threads the time is wall-clock time per operation
//! with both threads working (so perfect scaling halves it).

// criterion_group! and criterion_main! generate undocumented public items.
#![allow(missing_docs)]

use std::future::Future;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use session_bench::cases::Stores;
use session_bench::timing::runtime;

const SESSIONS: usize = 100_000;

/// Runs `iters` operations split over `threads` threads, each on its own runtime, and
/// returns the wall-clock time from a common start until the last thread is done.
fn run_threads<F, Fut>(threads: usize, iters: u64, op: F) -> Duration
where
    F: Fn(usize) -> Fut + Sync,
    Fut: Future<Output = bool>,
{
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (barrier, op) = (&barrier, &op);
            scope.spawn(move || {
                let rt = runtime().unwrap_or_else(|error| panic!("{error}"));
                let share = iters / threads as u64;
                // Each thread walks the sessions with a large odd stride from its own
                // start, so that threads hit different sessions and shards.
                let mut index = thread * SESSIONS / threads;
                barrier.wait();
                rt.block_on(async {
                    for _ in 0..share {
                        index = index.wrapping_add(7_919);
                        assert!(op(index).await);
                    }
                });
            });
        }
        barrier.wait();
        let start = Instant::now();
        // The scope joins every thread before returning.
        start
    })
    .elapsed()
}

fn stores(c: &mut Criterion) {
    let rt = runtime().unwrap_or_else(|error| panic!("{error}"));
    let stores = Arc::new(
        rt.block_on(Stores::new(SESSIONS))
            .unwrap_or_else(|error| panic!("{error}")),
    );
    for operation in ["load", "save"] {
        let mut group = c.benchmark_group(format!("memory_store_{operation}_100k"));
        for threads in [1, 2] {
            group.bench_function(BenchmarkId::new("ours", threads), |b| {
                b.iter_custom(|iters| {
                    run_threads(threads, iters, |index| {
                        let stores = &stores;
                        async move {
                            match operation {
                                "load" => stores.ours_load(index).await,
                                _ => stores.ours_save(index).await,
                            }
                        }
                    })
                });
            });
            group.bench_function(BenchmarkId::new("peer", threads), |b| {
                b.iter_custom(|iters| {
                    run_threads(threads, iters, |index| {
                        let stores = &stores;
                        async move {
                            match operation {
                                "load" => stores.peer_load(index).await,
                                _ => stores.peer_save(index).await,
                            }
                        }
                    })
                });
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = stores
}
criterion_main!(benches);
