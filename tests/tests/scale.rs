//! Ids, expiry and capacity at scale: a million ids without a collision; a million sessions
//! in an unbounded memory store that expire, are never returned after their deadline, and
//! give their memory back when swept; a million cookie-less writes that keep the default
//! memory store at its capacity, in bounded memory; and a flood of new sessions that evicts
//! the least recently used ones while a user who keeps coming back keeps theirs.
#![allow(clippy::unwrap_used)]
// A counting global allocator is the one way to measure live heap from inside a test.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::HeaderValue;
use integration_tests::app::TestSession;
use integration_tests::inprocess::{send, service};
use session_runtime::clock::{Clock, ManualClock, SystemClock};
use session_runtime::record::{Record, RecordField};
use session_runtime::store::{CreateOutcome, SessionMeta, SessionStore};
use session_runtime::{MemoryStore, SessionId, SessionLayer};

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
    // No sweep until the test asks: the first tick is an hour away. Unbounded, to hold the
    // whole million.
    let store = MemoryStore::builder()
        .unbounded()
        .clock(clock.clone())
        .sweep_interval(Duration::from_secs(3600))
        .build();
    let baseline = live();
    let rss_before = rss();
    let now = clock.now_ms();
    let meta = SessionMeta {
        created_ms: now,
        seen_ms: now,
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
        let outcome = store
            .create(&id.digest(), &record, &meta, now)
            .await
            .unwrap();
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
        assert!(store
            .load(&id.digest(), clock.now_ms())
            .await
            .unwrap()
            .is_some());
    }

    // Past the deadline, before any sweep: none is returned.
    clock.advance(Duration::from_secs(61));
    for id in &sample {
        assert_eq!(
            store.load(&id.digest(), clock.now_ms()).await.unwrap(),
            None
        );
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
        seen_ms: now,
        expires_ms: Some(now + 60_000),
        absolute_ms: None,
    };
    for _ in 0..MILLION {
        let id = SessionId::generate().unwrap();
        store
            .create(&id.digest(), &record, &meta, now)
            .await
            .unwrap();
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

/// The problem this pins: before the memory store had a default bound, 50,000 requests
/// without a cookie to a route that writes the session left 50,000 sessions in memory for
/// the whole idle timeout. Here a million such writes (as the layer stores them: a new id,
/// a small record, a 24-hour idle deadline) go to `MemoryStore::new()`: the store fills to
/// its default capacity, then evicts as fast as it creates. Its heap settles soon after it
/// is full (each shard's hash table grows once under the churn of evictions, as tombstones
/// fill it) and the last half million writes neither grow the heap nor the process.
#[tokio::test]
async fn a_million_cookieless_writes_keep_the_default_store_at_its_capacity_in_bounded_memory() {
    let _serial = SERIAL.lock().await;
    let store = MemoryStore::new();
    let capacity = store.capacity().unwrap();
    assert_eq!(capacity, MemoryStore::DEFAULT_MAX_SESSIONS);
    let baseline = live();
    let heap = || usize::try_from(live() - baseline).unwrap_or(0);
    let rss_before = rss();
    let now = SystemClock.now_ms();
    let meta = SessionMeta {
        created_ms: now,
        seen_ms: now,
        expires_ms: Some(now + 24 * 3600 * 1000),
        absolute_ms: None,
    };
    // What a first write of the test app's session stores: `visits = 1`.
    let record = Record {
        version: 1,
        fields: vec![RecordField {
            key: "visits".to_owned(),
            value: vec![0x01],
        }],
    };
    let started = Instant::now();
    let mut at_capacity = (Duration::ZERO, 0, 0);
    let mut halfway = (0, 0);
    let mut heap_peak = 0;
    for written in 1..=MILLION {
        let id = SessionId::generate().unwrap();
        let outcome = store
            .create(&id.digest(), &record, &meta, now)
            .await
            .unwrap();
        assert_eq!(outcome, CreateOutcome::Created);
        if written == capacity {
            at_capacity = (started.elapsed(), heap(), rss());
        }
        if written == MILLION / 2 {
            halfway = (heap(), rss());
        }
        if written % 10_000 == 0 {
            heap_peak = heap_peak.max(heap());
        }
    }
    let elapsed = started.elapsed();
    let (fill_time, heap_full, rss_full) = at_capacity;
    let (heap_half, rss_half) = halfway;
    let (heap_end, rss_end) = (heap(), rss());
    let grown = |rss: usize| mib(rss.saturating_sub(rss_before));
    println!(
        "{MILLION} cookie-less writes into MemoryStore::new() in {elapsed:?} \
         ({:.1} µs each); the first {capacity} in {fill_time:?}; {} sessions held at the end",
        elapsed.as_secs_f64() * 1e6 / MILLION as f64,
        store.len()
    );
    println!(
        "heap: at capacity {:.1} MiB ({} bytes a session), after {} writes {:.1} MiB, \
         after {MILLION} {:.1} MiB ({} bytes a session), peak {:.1} MiB",
        mib(heap_full),
        heap_full / capacity,
        MILLION / 2,
        mib(heap_half),
        mib(heap_end),
        heap_end / capacity,
        mib(heap_peak)
    );
    println!(
        "rss: {:.1} MiB before; +{:.1} MiB at capacity, +{:.1} MiB after {} writes, \
         +{:.1} MiB after {MILLION} (unbounded, the million would take about {:.0} MiB of heap)",
        mib(rss_before),
        grown(rss_full),
        grown(rss_half),
        MILLION / 2,
        grown(rss_end),
        mib(heap_full) * (MILLION as f64 / capacity as f64)
    );
    // Every shard is full: exactly the capacity, not one session more.
    assert_eq!(store.len(), capacity);
    // Bounded: at most the one growth of the tables past the heap at capacity, and no
    // growth at all over the last half million writes (a percent for B-tree node fill).
    assert!(
        heap_peak < heap_full * 2,
        "heap grew past capacity: {heap_full} at capacity, peak {heap_peak}"
    );
    assert!(
        heap_end <= heap_half + heap_half / 100,
        "heap still growing: {heap_half} halfway, {heap_end} at the end"
    );
    // The process neither (a few MiB of allocator slack allowed).
    assert!(
        rss_end <= rss_half + rss_half / 20 + 4 * 1024 * 1024,
        "rss still growing: {rss_half} halfway, {rss_end} at the end"
    );
}

/// The eviction policy through the layer, in process: a store of 6,400 sessions (100 a
/// shard) takes a flood of 50,000 cookie-less writes, eight times its capacity. A user who
/// only reads their session (a load is a use) once every 1,000 flood requests (about 16 in
/// their shard, far below its 100) keeps it and never hears `on_deleted`; a user who came
/// once before the flood and not again is evicted and reported; the flood's oldest
/// sessions went first and the store ends exactly at its capacity.
#[tokio::test]
async fn lru_keeps_a_recently_used_session_through_a_flood_that_evicts_older_ones() {
    let _serial = SERIAL.lock().await;
    const CAPACITY: usize = 6_400;
    const FLOOD: usize = 50_000;
    const EVERY: usize = 1_000;
    let store = MemoryStore::builder().max_sessions(CAPACITY).build();
    let deleted = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&deleted);
    let layer = SessionLayer::<TestSession>::new(store.clone())
        .secure(false)
        .on_deleted(move |id, _| sink.lock().unwrap().push(id.to_string()));
    let svc = service(&layer);
    let login = || async {
        let (seen, response) = send(&svc, "/visit", None).await;
        assert!(seen.is_new && seen.visits == 1, "{seen:?}");
        let cookie = response.headers()["set-cookie"].to_str().unwrap();
        let pair = cookie.split(';').next().unwrap().to_owned();
        (HeaderValue::from_str(&pair).unwrap(), seen.id)
    };
    let (active, active_id) = login().await;
    let (idle, idle_id) = login().await;

    let started = Instant::now();
    let mut first_flood_ids = Vec::new();
    for sent in 1..=FLOOD {
        let (seen, _) = send(&svc, "/visit", None).await;
        assert!(seen.is_new && seen.status == 200, "{seen:?}");
        if sent <= 100 {
            first_flood_ids.push(seen.id);
        }
        if sent % EVERY == 0 {
            let (seen, _) = send(&svc, "/read", Some(("cookie", active.clone()))).await;
            assert!(
                !seen.is_new && seen.id == active_id && seen.visits == 1,
                "the active user lost their session after {sent} flood requests: {seen:?}"
            );
        }
    }
    let elapsed = started.elapsed();

    let (seen, _) = send(&svc, "/read", Some(("cookie", active))).await;
    assert!(!seen.is_new && seen.id == active_id, "{seen:?}");
    let (seen, _) = send(&svc, "/read", Some(("cookie", idle))).await;
    assert!(
        seen.is_new,
        "the idle session survived eight times its capacity: {seen:?}"
    );
    assert_eq!(store.len(), CAPACITY);
    let deleted = deleted.lock().unwrap();
    println!(
        "{FLOOD} cookie-less writes through the layer in {elapsed:?}: {} sessions evicted \
         and reported, {} held",
        deleted.len(),
        store.len()
    );
    // Every session created and not held any more was evicted and reported, once.
    assert_eq!(deleted.len(), FLOOD + 2 - CAPACITY);
    assert!(deleted.contains(&idle_id));
    assert!(!deleted.contains(&active_id));
    for id in &first_flood_ids {
        assert!(deleted.contains(id), "an early flood session was kept");
    }
}
