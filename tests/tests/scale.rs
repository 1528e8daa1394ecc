//! Ids and expiry at scale: a million ids without a collision, and a million sessions in
//! the memory store that expire, are never returned after their deadline, and give their
//! memory back when swept.
#![allow(clippy::unwrap_used)]
// A counting global allocator is the one way to measure live heap from inside a test.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use session_runtime::clock::{Clock, ManualClock};
use session_runtime::record::{Record, RecordField};
use session_runtime::store::{CreateOutcome, SessionMeta, SessionStore};
use session_runtime::{MemoryStore, SessionId};

/// Counts the live heap bytes of each thread: the store is filled and swept on the test's
/// thread (tokio's current-thread runtime), so other threads' allocations do not count.
struct Counting;

thread_local! {
    // `const` `Cell` of a plain integer: no lazy initialisation and no destructor, so the
    // allocator never allocates or registers anything itself. Signed, because a thread may
    // free what another allocated.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

/// Adds `delta` to the current thread's live bytes; `try_with` so that thread teardown,
/// when the counter may be gone, cannot make the allocator panic.
fn count(delta: isize) {
    let _ = LIVE.try_with(|live| live.set(live.get().wrapping_add(delta)));
}

/// `Layout::size` is at most `isize::MAX`.
fn signed(size: usize) -> isize {
    isize::try_from(size).unwrap_or(isize::MAX)
}

/// The current thread's live heap bytes (relative: only differences mean something).
fn live() -> isize {
    LIVE.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(signed(layout.size()));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-signed(layout.size()));
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(signed(new_size) - signed(layout.size()));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MILLION: usize = 1_000_000;

/// The resident set size is the process's: the tests of this file run one at a time so that
/// neither measures the other's memory (and the two do not need the memory of both at once).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[test]
fn one_million_generated_ids_have_no_collision() {
    let _serial = SERIAL.blocking_lock();
    let started = Instant::now();
    let mut seen = HashSet::with_capacity(MILLION);
    for _ in 0..MILLION {
        let id = SessionId::generate().unwrap();
        assert!(
            seen.insert(id.expose_bytes().to_vec()),
            "session id collision"
        );
    }
    eprintln!("{MILLION} ids, no collision, in {:?}", started.elapsed());
}

#[tokio::test]
async fn a_million_expired_sessions_are_never_returned_and_their_memory_comes_back() {
    let _serial = SERIAL.lock().await;
    let clock = ManualClock::new();
    // No sweep until the test asks: the first tick is an hour away.
    let store = MemoryStore::builder()
        .clock(clock.clone())
        .sweep_interval(Duration::from_secs(3600))
        .build();
    let baseline = live();
    let rss_before = rss();
    let now = clock.now_ms();
    let meta = SessionMeta {
        created_ms: now,
        expires_ms: Some(now + 60_000),
        absolute_ms: None,
    };
    let record = Record {
        version: 1,
        fields: vec![RecordField {
            key: "user_id".to_owned(),
            value: vec![0xcd, 0x30, 0x39],
        }],
    };
    let started = Instant::now();
    let mut sample = Vec::new();
    for i in 0..MILLION {
        let id = SessionId::generate().unwrap();
        let outcome = store.create(&id, &record, &meta, now).await.unwrap();
        assert_eq!(outcome, CreateOutcome::Created);
        if i % 100 == 0 {
            sample.push(id);
        }
    }
    let filled = usize::try_from(live() - baseline).unwrap_or(0);
    let rss_peak = rss();
    eprintln!(
        "{MILLION} sessions stored in {:?}: {:.1} MiB of heap, rss +{:.1} MiB",
        started.elapsed(),
        mib(filled),
        mib(rss().saturating_sub(rss_before))
    );
    assert_eq!(store.len(), MILLION);
    for id in &sample {
        assert!(store.load(id, clock.now_ms()).await.unwrap().is_some());
    }

    // Past the deadline, before any sweep: none is returned.
    clock.advance(Duration::from_secs(61));
    for id in &sample {
        assert_eq!(store.load(id, clock.now_ms()).await.unwrap(), None);
    }
    assert_eq!(store.len(), MILLION, "nothing swept yet");

    let started = Instant::now();
    assert_eq!(store.sweep(), MILLION);
    let left = usize::try_from(live() - baseline).unwrap_or(0);
    eprintln!(
        "swept {MILLION} sessions in {:?}: heap back to baseline + {:.2} MiB (was + {:.1} MiB), rss +{:.1} MiB",
        started.elapsed(),
        mib(left),
        mib(filled),
        mib(rss().saturating_sub(rss_before))
    );
    assert!(store.is_empty());
    // The shards shrink after a large expiry wave: at most a few percent of the peak stays.
    assert!(left < filled / 20, "{left} bytes still held of {filled}");

    // The allocator keeps some freed pages for reuse (resident, not leaked): a second
    // wave of a million sessions fits in them instead of growing the process.
    let now = clock.now_ms();
    let meta = SessionMeta {
        created_ms: now,
        expires_ms: Some(now + 60_000),
        absolute_ms: None,
    };
    for _ in 0..MILLION {
        let id = SessionId::generate().unwrap();
        store.create(&id, &record, &meta, now).await.unwrap();
    }
    let rss_second = rss();
    eprintln!(
        "second wave of {MILLION}: rss {:.1} MiB vs first peak {:.1} MiB",
        mib(rss_second),
        mib(rss_peak)
    );
    assert!(
        // A leak would double it; allocator and hash-table growth patterns vary by a few
        // percent between waves.
        rss_second < rss_peak + rss_peak / 4,
        "memory grew across waves: {rss_second} > {rss_peak}"
    );
}
