//! Heap allocations per request of every end-to-end case, ours, the peer's and the
//! no-session baseline's, counted by a per-thread counting allocator: each request runs in
//! process on a current-thread runtime, so every allocation it makes happens on the test's
//! thread and nothing another test does is counted. The numbers are printed as the
//! allocation column of BENCHMARKS.md (`cargo test -p session-bench --test allocations --
//! --nocapture`), and each of ours is held to a budget, so that a regression fails here as
//! a number rather than showing up later as time.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
// A counting global allocator is the one way to count allocations from inside a test.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use session_bench::cases::{end_to_end, redis_end_to_end, Case, Target};
use session_bench::redis::RedisServer;

struct Counting;

thread_local! {
    // `const` `Cell` of a plain integer: no lazy initialisation and no destructor, so the
    // allocator never allocates or registers anything itself.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const WARM_UP: u64 = 20;
const REQUESTS: u64 = 100;

/// Allocations per request of `target` (allocations and reallocations; the request itself
/// is built inside the count, the same for every variant).
async fn per_request(target: &Target) -> f64 {
    for _ in 0..WARM_UP {
        assert!(target.call().await.status().is_success());
    }
    let before = allocations();
    for _ in 0..REQUESTS {
        let response = target.call().await;
        assert!(response.status().is_success());
        drop(response);
    }
    (allocations() - before) as f64 / REQUESTS as f64
}

/// The most allocations per request each of our cases may make: the counts of 2026-11-24
/// (issue 16, after the structural guard stopped allocating and records were encoded into
/// one buffer): exact for the in-process cases; for Redis, whose client's reads can split
/// differently from run to run (a tenth of an allocation per request was seen), the count
/// rounded up plus one. Redis grew with issue 14 (the owner index): a read by 2 (the session
/// hash holds the last use, `__s`: one more field and value in the `HGETALL` reply), a write
/// by 7 (the last use written, the owner arguments of the script, an array reply).
fn budget(case: &str) -> f64 {
    match case {
        "e2e_layer_unused" => 20.0,
        "e2e_memory_read" => 26.0,
        "e2e_memory_write" => 30.0,
        "e2e_cookie_read" => 27.0,
        "e2e_cookie_write" => 33.0,
        "e2e_redis_read" => 59.0,
        "e2e_redis_write" => 104.0,
        _ => 0.0,
    }
}

async fn count_cases(cases: &[Case]) -> Vec<(String, f64, Option<f64>, f64)> {
    let mut rows = Vec::new();
    for case in cases {
        let baseline = per_request(&case.baseline).await;
        let ours = per_request(&case.ours).await;
        let peer = match &case.peer {
            Some(peer) => Some(per_request(peer).await),
            None => None,
        };
        rows.push((case.name.to_owned(), ours, peer, baseline));
    }
    rows
}

#[test]
fn allocations_per_request_of_every_case() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let redis = RedisServer::start().unwrap();
    let rows = runtime.block_on(async {
        let mut rows = count_cases(&end_to_end().await.unwrap()).await;
        rows.extend(count_cases(&redis_end_to_end(&redis).await.unwrap()).await);
        rows
    });
    println!("| case | ours | peer | no session |");
    println!("|---|---:|---:|---:|");
    for (name, ours, peer, baseline) in &rows {
        let peer = peer.map_or("-".to_owned(), |peer| format!("{peer:.1}"));
        println!("| {name} | {ours:.1} | {peer} | {baseline:.1} |");
    }
    for (name, ours, _, _) in &rows {
        assert!(
            *ours <= budget(name),
            "{name}: {ours:.1} allocations per request, over its budget of {}",
            budget(name)
        );
    }
}
