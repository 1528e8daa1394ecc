//! Listing an owner's sessions in the memory store (issue 14): fills a store with
//! 1,000,000 sessions over 100,000 owners (10 each), then times `owned_by` for random owners.
//! Listing k sessions costs O(k), not O(all sessions): the time per list does not grow with
//! the store.
//!
//! `cargo run --release -p session-bench --bin owners_memory [sessions] [owners]`
#![allow(clippy::expect_used)] // a benchmark binary: a failure ends the run with its message

use std::time::{Duration, Instant};

use session_runtime::record::{Record, RecordField};
use session_runtime::store::{SessionMeta, SessionStore};
use session_runtime::{MemoryStore, SessionId};

const NOW: u64 = 1_700_000_000_000;
const LISTS: usize = 1_000;

fn owner_record(owner: usize) -> Record {
    let mut value = Vec::new();
    rmp::encode::write_str(&mut value, &format!("user-{owner}")).expect("writing into a Vec");
    Record {
        version: 1,
        fields: vec![
            RecordField {
                key: "visits".into(),
                value: vec![0x01],
            },
            RecordField {
                key: "__owner".into(),
                value,
            },
        ],
    }
}

/// A small, deterministic generator (xorshift), so that runs pick the same owners.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let sessions: usize = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("a number of sessions"));
    let owners: usize = args
        .next()
        .map_or(100_000, |a| a.parse().expect("a number of owners"));
    let store = MemoryStore::builder().unbounded().build();
    let meta = SessionMeta {
        created_ms: NOW,
        seen_ms: NOW,
        expires_ms: Some(NOW + 3_600_000),
        absolute_ms: None,
    };
    let started = Instant::now();
    for index in 0..sessions {
        let id = SessionId::generate().expect("randomness").digest();
        store
            .create(&id, &owner_record(index % owners), &meta, NOW)
            .await
            .expect("the memory store does not fail");
    }
    let fill = started.elapsed();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut times = Vec::with_capacity(LISTS);
    let mut listed = 0;
    for _ in 0..LISTS {
        let owner = format!("user-{}", rng.below(owners));
        let started = Instant::now();
        let found = store.owned_by(&owner, NOW).await.expect("no failure");
        times.push(started.elapsed());
        listed += found.len();
    }
    times.sort();
    println!(
        "memory store: {sessions} sessions, {owners} owners, filled in {:.1} s",
        fill.as_secs_f64()
    );
    println!(
        "owned_by over {LISTS} random owners ({:.1} sessions each): median {:.1} us, p99 {:.1} us",
        listed as f64 / LISTS as f64,
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
    );
}
