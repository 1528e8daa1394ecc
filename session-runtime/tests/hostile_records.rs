//! Hostile records: MessagePack that claims huge arrays, maps, strings or binaries, or
//! nests deeply, fed to record decoding. Each must fail fast, with bounded memory, and
//! never panic or overflow the stack.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)]
// A counting global allocator is the one way to measure peak heap use from inside a test.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use session_runtime::record::decode_from_bytes;
use session_runtime::record::{DecodeError, Record, RecordField};
use session_runtime::Databag;

/// Counts the peak of live heap bytes, to show that no claim in the input makes the
/// decoder allocate in proportion to it. Each thread counts its own allocations, so tests
/// running in parallel do not show up in each other's peaks.
struct PeakAlloc;

thread_local! {
    // `const` and `Cell`s of plain integers: no lazy initialisation and no destructor, so
    // the allocator never allocates or registers anything itself. Signed, because a thread
    // may free what another allocated.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

/// Adds `delta` to the current thread's live bytes and raises its peak. `try_with`: during
/// thread teardown the counters may be gone, and the allocator must not panic then.
fn count(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().wrapping_add(delta);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

/// `Layout::size` is at most `isize::MAX`.
fn signed(size: usize) -> isize {
    isize::try_from(size).unwrap_or(isize::MAX)
}

unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(signed(layout.size()));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-signed(layout.size()));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Inner {
    pub a: u8,
}

/// A tree a hostile record could try to make deep.
#[derive(Debug, Default, Serialize, Deserialize)]
pub enum Tree {
    #[default]
    Leaf,
    Node(Vec<Tree>),
}

#[derive(Databag, Debug)]
pub struct Target {
    pub list: Vec<String>,
    pub map: HashMap<String, u64>,
    pub inner: Inner,
    pub tree: Tree,
    pub blob: Vec<u8>,
    pub text: String,
}

fn record_with(key: &str, value: Vec<u8>) -> Vec<u8> {
    Record {
        version: 1,
        fields: vec![RecordField {
            key: key.to_owned(),
            value,
        }],
    }
    .to_bytes()
    .unwrap()
}

/// Decodes `bytes`, and returns the error, the time and the peak extra heap it took (on
/// this thread, where the decoding runs).
fn decode(bytes: &[u8]) -> (DecodeError, Duration, usize) {
    let baseline = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(baseline));
    let started = Instant::now();
    let result = decode_from_bytes::<Target>(bytes);
    let elapsed = started.elapsed();
    // The decoder runs on this thread: its allocations are all counted here.
    let peak = usize::try_from(PEAK.with(Cell::get) - baseline).unwrap_or(0);
    (result.expect_err("hostile input decoded"), elapsed, peak)
}

fn assert_rejected_cheaply(what: &str, bytes: &[u8]) {
    let (error, elapsed, peak) = decode(bytes);
    // The time is reported, not asserted (a timing bound fails on a busy machine); the
    // work is bounded by what is counted: the peak heap, and the structural guard that
    // refuses before any allocation proportional to a claimed size.
    eprintln!("{what}: rejected in {elapsed:?}, peak extra heap {peak} bytes: {error}");
    // A few times the input at most: nothing proportional to the claimed sizes (GiBs).
    assert!(
        peak < 4 * bytes.len() + 64 * 1024,
        "{what} allocated {peak} bytes"
    );
}

#[test]
fn huge_array_claims_are_rejected_with_bounded_memory() {
    // array32 of 4,294,967,295 strings, then nothing.
    let value = vec![0xdd, 0xff, 0xff, 0xff, 0xff];
    assert_rejected_cheaply("array claim", &record_with("list", value));
    // A claim backed by some real elements, still far short of the claim.
    let mut value = vec![0xdd, 0x7f, 0xff, 0xff, 0xff];
    value.extend(std::iter::repeat_n(0xa0, 10_000));
    assert_rejected_cheaply("array claim with 10k elements", &record_with("list", value));
}

#[test]
fn huge_map_claims_are_rejected_with_bounded_memory() {
    let value = vec![0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, b'k', 0x01];
    assert_rejected_cheaply("map claim", &record_with("map", value));
}

#[test]
fn huge_string_and_binary_claims_are_rejected_with_bounded_memory() {
    assert_rejected_cheaply(
        "str32 claim",
        &record_with("text", vec![0xdb, 0xff, 0xff, 0xff, 0xff, b'a']),
    );
    assert_rejected_cheaply(
        "bin32 claim",
        &record_with("blob", vec![0xc6, 0xff, 0xff, 0xff, 0xff, 1]),
    );
    // The record framing itself: a field value claiming 4 GiB.
    let frame = [
        0x92, 0x01, 0x81, 0xa4, b'b', b'l', b'o', b'b', 0xc6, 0xff, 0xff, 0xff, 0xff,
    ];
    assert_rejected_cheaply("framed bin32 claim", &frame);
    // And a map of 2^32-1 fields.
    assert_rejected_cheaply(
        "field count claim",
        &[0x92, 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff],
    );
}

#[test]
fn deep_nesting_is_rejected_without_overflowing_the_stack() {
    // 100,000 nested one-element arrays: as a `Tree` (recursive type) and as an unknown
    // field inside `Inner` (skipped by serde, recursively).
    let depth = 100_000;
    let mut nested = vec![0x91; depth];
    nested.push(0xc0);

    let mut tree = Vec::new();
    for _ in 0..depth {
        tree.extend_from_slice(&[0x81, 0xa4, b'N', b'o', b'd', b'e', 0x91]);
    }
    tree.push(0xa4);
    tree.extend_from_slice(b"Leaf");
    assert_rejected_cheaply("deep tree", &record_with("tree", tree));

    let mut inner = vec![0x81, 0xa7];
    inner.extend_from_slice(b"unknown");
    inner.extend_from_slice(&nested);
    assert_rejected_cheaply("deep unknown field", &record_with("inner", inner));

    assert_rejected_cheaply("deep list", &record_with("list", nested));
}

#[test]
fn reasonable_nesting_still_decodes() {
    let mut tree = Tree::Leaf;
    for _ in 0..20 {
        tree = Tree::Node(vec![tree]);
    }
    let value = Target {
        list: vec!["a".to_owned(); 1000],
        map: HashMap::new(),
        inner: Inner { a: 1 },
        tree,
        blob: vec![7; 100_000],
        text: "t".repeat(10_000),
    };
    let bytes = session_runtime::record::encode_to_bytes(&value).unwrap();
    let decoded = decode_from_bytes::<Target>(&bytes).unwrap().value;
    assert_eq!(decoded.list.len(), 1000);
    assert_eq!(decoded.blob.len(), 100_000);
}
