//! The quick side-by-side comparison: every case of the benchmarks, ours next to the
//! closest peer and the no-session baseline, measured in interleaved batches in one run.
//!
//! ```sh
//! cargo run --release -p session-bench --bin compare
//! ```
//!
//! Prints one line per case on stdout:
//! `<case> ours_ns=<median> peer_ns=<median or -> baseline_ns=<median or ->`, where each
//! median is taken over per-batch nanoseconds per operation. The cookie codec cases report
//! the codec's share of a request: the median of round-by-round differences between a
//! request that opens (or seals) the cookie and the same request that does not. Ratios, quartiles and the
//! machine's load go to stderr. `COMPARE_ROUNDS` changes the number of rounds (default 41);
//! `COMPARE_ONLY=<text>` runs only the cases whose name contains `<text>`.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Duration;

use session_bench::apps::identity_layered;
use session_bench::cases::{self, Codec, Stores};
use session_bench::data::{logged_in, BenchSession, BenchSessionHandle};
use session_bench::redis::RedisServer;
use session_bench::timing::{
    differences, interleaved, interleaved_samples, runtime, summarize, time_async, time_sync,
    Batch, Plan, Summary,
};

/// Sessions held by each memory store in the store cases.
const STORE_SESSIONS: usize = 100_000;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("compare: {error}");
            ExitCode::FAILURE
        }
    }
}

type Error = Box<dyn std::error::Error>;

fn run() -> Result<(), Error> {
    let rounds = std::env::var("COMPARE_ROUNDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(41);
    let plan = Plan {
        rounds,
        batch: Duration::from_millis(2),
    };
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        eprintln!("# load average: {}", load.trim());
    }
    eprintln!(
        "# {} rounds of ~{:?} batches per variant, interleaved",
        plan.rounds, plan.batch
    );
    let rt = &runtime()?;
    let only = std::env::var("COMPARE_ONLY").unwrap_or_default();
    let wanted = |case: &str| case.contains(only.as_str());

    // End to end, in process; Redis on a server of our own (an error, not a skip, if
    // redis-server is missing).
    let redis = RedisServer::start()?;
    let mut e2e = rt.block_on(cases::end_to_end())?;
    e2e.extend(rt.block_on(cases::redis_end_to_end(&redis))?);
    // PostgreSQL on a server of our own, SQLite in a temporary file (an error, not a skip,
    // if PostgreSQL is missing).
    let sql = rt.block_on(cases::SqlDatabases::start());
    e2e.extend(rt.block_on(cases::sql_end_to_end(&sql))?);
    for case in e2e.into_iter().filter(|case| wanted(case.name)) {
        // A Redis or SQL request is a round trip to a server or a file (~100 us and more):
        // longer batches, fewer rounds, so that each batch still holds a few hundred
        // requests.
        let plan = if ["e2e_redis", "e2e_sqlite", "e2e_postgres"]
            .iter()
            .any(|prefix| case.name.starts_with(prefix))
        {
            Plan {
                rounds: plan.rounds.div_ceil(2),
                batch: plan.batch * 20,
            }
        } else {
            plan
        };
        let mut variants: Vec<Batch<'_>> = Vec::new();
        let ours = case.ours.clone();
        variants.push(Box::new(move |n| time_async(rt, n, || ours.call())));
        if let Some(peer) = case.peer.clone() {
            variants.push(Box::new(move |n| time_async(rt, n, || peer.call())));
        }
        let baseline = case.baseline.clone();
        variants.push(Box::new(move |n| time_async(rt, n, || baseline.call())));
        let summaries = interleaved(plan, &mut variants);
        let (ours, rest) = split(&summaries);
        let (peer, baseline) = match rest {
            [peer, baseline] => (Some(*peer), Some(*baseline)),
            [baseline] => (None, Some(*baseline)),
            _ => (None, None),
        };
        report(case.name, ours, peer, baseline);
        if case.name == "e2e_layer_unused" {
            // Not a line of its own: the floor any `Router::layer` costs in axum.
            let identity = case.baseline.with_router(&identity_layered());
            let baseline = case.baseline.clone();
            let summaries = interleaved(
                plan,
                &mut [
                    Box::new(|n| time_async(rt, n, || identity.call())),
                    Box::new(|n| time_async(rt, n, || baseline.call())),
                ],
            );
            eprintln!(
                "#   axum's floor for any layer (tower Identity): {:.1} ns, baseline {:.1} ns, ratio {:.3}",
                summaries[0].median,
                summaries[1].median,
                summaries[0].median / summaries[1].median
            );
        }
    }

    // Accessors: a setter with change tracking against tower-sessions' insert, and a read
    // against its get, of the same u32.
    if wanted("accessor_set") || wanted("accessor_get") {
        let mut handle = BenchSessionHandle::new(BenchSession::from(logged_in()));
        let session = tower_sessions::Session::new(
            None,
            std::sync::Arc::new(tower_sessions::MemoryStore::default()),
            None,
        );
        let mut value = 0u32;
        let mut peer_value = 0u32;
        let summaries = interleaved(
            plan,
            &mut [
                Box::new(|n| {
                    time_sync(n, || {
                        value = value.wrapping_add(1);
                        black_box(&mut handle).set_visits(black_box(value));
                    })
                }),
                Box::new(|n| {
                    time_async(rt, n, || {
                        peer_value = peer_value.wrapping_add(1);
                        session.insert("visits", peer_value)
                    })
                }),
            ],
        );
        report("accessor_set", summaries[0], Some(summaries[1]), None);

        let handle = BenchSessionHandle::new(BenchSession::from(logged_in()));
        let summaries = interleaved(
            plan,
            &mut [
                Box::new(|n| time_sync(n, || black_box(&handle).visits)),
                Box::new(|n| time_async(rt, n, || session.get::<u32>("visits"))),
            ],
        );
        report("accessor_get", summaries[0], Some(summaries[1]), None);
    }

    // Cookie codec at ~300 bytes of session data, against the cookie peer's private jar
    // with the same data as JSON, both through their public API: each step is the
    // round-by-round difference of two requests (see `cases::Codec`).
    if wanted("cookie_open_300B") || wanted("cookie_seal_300B") {
        let codec = rt.block_on(Codec::new(300))?;
        eprintln!(
            "# codec: {} bytes of record, {} bytes of token",
            codec.record_len(),
            codec.token_len()
        );
        for (name, ours, peer) in [
            ("cookie_open_300B", &codec.ours_open, &codec.peer_open),
            ("cookie_seal_300B", &codec.ours_seal, &codec.peer_seal),
        ] {
            let samples = interleaved_samples(
                plan,
                &mut [
                    Box::new(|n| time_async(rt, n, || ours.with.call())),
                    Box::new(|n| time_async(rt, n, || ours.without.call())),
                    Box::new(|n| time_async(rt, n, || peer.with.call())),
                    Box::new(|n| time_async(rt, n, || peer.without.call())),
                ],
            );
            let [ours_with, ours_without, peer_with, peer_without] = samples.as_slice() else {
                return Err("four variants gave no four sample sets".into());
            };
            report(
                name,
                summarize(differences(ours_with, ours_without)),
                Some(summarize(differences(peer_with, peer_without))),
                None,
            );
            let median = |samples: &[f64]| summarize(samples.to_vec()).median;
            eprintln!(
                "#   {name} requests: ours {:.1} - {:.1} ns, peer {:.1} - {:.1} ns",
                median(ours_with),
                median(ours_without),
                median(peer_with),
                median(peer_without)
            );
        }
    }

    // Memory stores with 100k sessions, one thread.
    if wanted("memory_store_load_100k") || wanted("memory_store_save_100k") {
        let stores = rt.block_on(Stores::new(STORE_SESSIONS))?;
        let (mut a, mut b) = (0usize, 0usize);
        let summaries = interleaved(
            plan,
            &mut [
                Box::new(|n| {
                    time_async(rt, n, || {
                        a = a.wrapping_add(7919);
                        stores.ours_load(a)
                    })
                }),
                Box::new(|n| {
                    time_async(rt, n, || {
                        b = b.wrapping_add(7919);
                        stores.peer_load(b)
                    })
                }),
            ],
        );
        report(
            "memory_store_load_100k",
            summaries[0],
            Some(summaries[1]),
            None,
        );
        let summaries = interleaved(
            plan,
            &mut [
                Box::new(|n| {
                    time_async(rt, n, || {
                        a = a.wrapping_add(7919);
                        stores.ours_save(a)
                    })
                }),
                Box::new(|n| {
                    time_async(rt, n, || {
                        b = b.wrapping_add(7919);
                        stores.peer_save(b)
                    })
                }),
            ],
        );
        report(
            "memory_store_save_100k",
            summaries[0],
            Some(summaries[1]),
            None,
        );
    }
    Ok(())
}

fn split(summaries: &[Summary]) -> (Summary, &[Summary]) {
    match summaries.split_first() {
        Some((first, rest)) => (*first, rest),
        None => (
            Summary {
                median: f64::NAN,
                q1: f64::NAN,
                q3: f64::NAN,
            },
            &[],
        ),
    }
}

fn report(case: &str, ours: Summary, peer: Option<Summary>, baseline: Option<Summary>) {
    let show = |summary: Option<Summary>| {
        summary.map_or_else(|| "-".to_owned(), |s| format!("{:.1}", s.median))
    };
    println!(
        "{case} ours_ns={} peer_ns={} baseline_ns={}",
        show(Some(ours)),
        show(peer),
        show(baseline)
    );
    let ratio = |other: Option<Summary>| {
        other.map_or_else(
            || "-".to_owned(),
            |o| format!("{:.3}", ours.median / o.median),
        )
    };
    let iqr = |summary: Option<Summary>| {
        summary.map_or_else(|| "-".to_owned(), |s| format!("{:.1}..{:.1}", s.q1, s.q3))
    };
    eprintln!(
        "#   {case}: ours/peer={} ours/baseline={} iqr ours={} peer={} baseline={}",
        ratio(peer),
        ratio(baseline),
        iqr(Some(ours)),
        iqr(peer),
        iqr(baseline)
    );
}
