//! End to end in process: an axum `Router` called through `tower::ServiceExt`, no network.
//! Each case measures ours, the closest peer and the no-session baseline side by side; the
//! Redis cases start their own `redis-server` on a free loopback port, the PostgreSQL cases
//! their own PostgreSQL, the SQLite cases a file in a temporary directory.

// criterion_group! and criterion_main! generate undocumented public items.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use session_bench::apps::identity_layered;
use session_bench::cases::{end_to_end, redis_end_to_end, sql_end_to_end, SqlDatabases};
use session_bench::redis::RedisServer;
use session_bench::timing::{runtime, time_async};

fn cases(c: &mut Criterion) {
    let rt = runtime().unwrap_or_else(|error| panic!("{error}"));
    let mut cases = rt
        .block_on(end_to_end())
        .unwrap_or_else(|error| panic!("{error}"));
    // Redis on a server of our own; a missing redis-server fails the bench with a hint.
    let redis = RedisServer::start().unwrap_or_else(|error| panic!("{error}"));
    cases.extend(
        rt.block_on(redis_end_to_end(&redis))
            .unwrap_or_else(|error| panic!("{error}")),
    );
    // PostgreSQL on a server of our own, SQLite in a temporary file.
    let sql = rt.block_on(SqlDatabases::start());
    cases.extend(
        rt.block_on(sql_end_to_end(&sql))
            .unwrap_or_else(|error| panic!("{error}")),
    );
    for case in cases {
        let mut group = c.benchmark_group(case.name);
        group.bench_function("ours", |b| {
            b.iter_custom(|iters| time_async(&rt, iters, || case.ours.call()));
        });
        if let Some(peer) = &case.peer {
            group.bench_function("peer", |b| {
                b.iter_custom(|iters| time_async(&rt, iters, || peer.call()));
            });
        }
        group.bench_function("baseline", |b| {
            b.iter_custom(|iters| time_async(&rt, iters, || case.baseline.call()));
        });
        if case.name == "e2e_layer_unused" {
            // The floor any `Router::layer` costs in axum: a layer that does nothing.
            let identity = case.baseline.with_router(&identity_layered());
            group.bench_function("identity_layer", |b| {
                b.iter_custom(|iters| time_async(&rt, iters, || identity.call()));
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = cases
}
criterion_main!(benches);
