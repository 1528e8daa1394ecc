//! Accessors: our generated setter (with change tracking) and plain field read, against
//! tower-sessions' `insert` and `get` of the same `u32`.

// criterion_group! and criterion_main! generate undocumented public items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use session_bench::data::{logged_in, BenchSession, BenchSessionHandle};
use session_bench::timing::{runtime, time_async};

fn peer_session() -> tower_sessions::Session {
    tower_sessions::Session::new(None, Arc::new(tower_sessions::MemoryStore::default()), None)
}

fn set(c: &mut Criterion) {
    let mut group = c.benchmark_group("set");
    let mut handle = BenchSessionHandle::new(BenchSession::from(logged_in()));
    let mut value = 0u32;
    group.bench_function("ours", |b| {
        b.iter(|| {
            value = value.wrapping_add(1);
            black_box(&mut handle).set_visits(black_box(value));
        });
    });
    assert!(handle.is_changed());
    let rt = runtime().unwrap_or_else(|error| panic!("{error}"));
    let session = peer_session();
    let mut value = 0u32;
    group.bench_function("peer", |b| {
        b.iter_custom(|iters| {
            time_async(&rt, iters, || {
                value = value.wrapping_add(1);
                session.insert("visits", value)
            })
        });
    });
    group.finish();
}

fn get(c: &mut Criterion) {
    let mut group = c.benchmark_group("get");
    let handle = BenchSessionHandle::new(BenchSession::from(logged_in()));
    group.bench_function("ours", |b| b.iter(|| black_box(&handle).visits));
    let rt = runtime().unwrap_or_else(|error| panic!("{error}"));
    let session = peer_session();
    rt.block_on(session.insert("visits", 1u32))
        .unwrap_or_else(|error| panic!("{error}"));
    group.bench_function("peer", |b| {
        b.iter_custom(|iters| time_async(&rt, iters, || session.get::<u32>("visits")));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = set, get
}
criterion_main!(benches);
