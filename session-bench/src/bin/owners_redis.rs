//! Listing an owner's sessions in Redis (issue 14): fills a real Redis with many sessions
//! spread over many owners through `RedisStore::create` (many creates in flight on the
//! store's multiplexed connection: pipelined), then times `owned_by` for random owners.
//!
//! ```text
//! cargo run --release -p session-bench --bin owners_redis -- [--sessions N] [--owners M] [--lists L] [--cluster]
//! ```
//!
//! Defaults: 1,000,000 sessions over 100,000 owners, 1,000 listings. The Redis server (or a
//! 3-master cluster with `--cluster`) is started like the tests start theirs, unless
//! `REDIS_URL` names one (single server; the sessions go under a fresh prefix, removed with
//! `clear` at the end).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // a benchmark binary

use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::redis_harness::{RedisCluster, RedisServer};
use session_runtime::record::{Record, RecordField};
use session_runtime::store::{SessionMeta, SessionStore};
use session_runtime::{RedisStore, SessionId};

const IN_FLIGHT: usize = 512;

struct Options {
    sessions: usize,
    owners: usize,
    lists: usize,
    cluster: bool,
}

fn options() -> Options {
    let mut options = Options {
        sessions: 1_000_000,
        owners: 100_000,
        lists: 1_000,
        cluster: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || -> usize {
            args.next()
                .and_then(|value| value.replace('_', "").parse().ok())
                .unwrap_or_else(|| panic!("{arg} needs a number"))
        };
        match arg.as_str() {
            "--sessions" => options.sessions = number(),
            "--owners" => options.owners = number(),
            "--lists" => options.lists = number(),
            "--cluster" => options.cluster = true,
            other => panic!("unknown option {other}"),
        }
    }
    options
}

fn owner_record(owner: usize) -> Record {
    let mut value = Vec::new();
    rmp::encode::write_str(&mut value, &format!("user-{owner}")).unwrap();
    Record {
        version: 1,
        fields: vec![
            RecordField {
                key: "visits".to_owned(),
                value: vec![1],
            },
            RecordField {
                key: "__owner".to_owned(),
                value,
            },
        ],
    }
}

/// xorshift64*: reproducible random owners without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let options = options();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let prefix = format!("bench{}:", std::process::id());
    let (_server, _cluster, store, mode) = if options.cluster {
        let cluster = RedisCluster::start().await;
        let store = RedisStore::cluster(cluster.urls()).await.unwrap();
        (None, Some(cluster), store, "cluster (3 masters)")
    } else if let Ok(url) = std::env::var("REDIS_URL") {
        (
            None,
            None,
            RedisStore::new(&url).await.unwrap(),
            "single server (REDIS_URL)",
        )
    } else {
        let server = RedisServer::start().await;
        let store = RedisStore::new(&server.url()).await.unwrap();
        (Some(server), None, store, "single server")
    };
    let store = store
        .prefix(prefix)
        .command_timeout(Duration::from_secs(30));
    let meta = SessionMeta {
        created_ms: now,
        seen_ms: now,
        expires_ms: Some(now + 3_600_000),
        absolute_ms: None,
    };
    println!(
        "owners_redis: {mode}, {} sessions over {} owners",
        options.sessions, options.owners
    );

    // Fill: session i belongs to owner i % owners, so every owner has sessions/owners.
    let started = Instant::now();
    let next_index = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (store, next_index, total, owners) = (
            store.clone(),
            Arc::clone(&next_index),
            options.sessions,
            options.owners,
        );
        workers.spawn(async move {
            loop {
                let index = next_index.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= total {
                    return;
                }
                let id = SessionId::generate().unwrap().digest();
                store
                    .create(&id, &owner_record(index % owners), &meta, now)
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.unwrap();
    }
    let fill = started.elapsed();
    println!(
        "fill: {:.1} s ({:.0} creates/s, {IN_FLIGHT} in flight)",
        fill.as_secs_f64(),
        options.sessions as f64 / fill.as_secs_f64()
    );
    let counted = store.count(now).await.unwrap();
    println!("count: {counted} sessions");

    // List random owners, one at a time.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut times = Vec::with_capacity(options.lists);
    let mut listed = 0;
    for _ in 0..options.lists {
        let owner = (next(&mut state) % options.owners as u64) as usize;
        let started = Instant::now();
        let sessions = store.owned_by(&format!("user-{owner}"), now).await.unwrap();
        times.push(started.elapsed());
        listed += sessions.len();
    }
    times.sort();
    println!(
        "owned_by: {} lists, {:.1} sessions each: median {:?}, p99 {:?}, max {:?}",
        options.lists,
        listed as f64 / options.lists as f64,
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times[times.len() - 1]
    );
    let started = Instant::now();
    let removed = store.clear().await.unwrap();
    println!(
        "clear: {removed} sessions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
