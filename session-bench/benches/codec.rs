//! The cookie codec through the public API: sealing and opening at 64 B, 256 B, 1 KiB and
//! ~3 KiB of session data, and rejecting a tampered cookie, ours (`SessionLayer` with a
//! `CookieStore`) and the cookie peer's (axum-extra's `PrivateCookieJar`, the same data as
//! JSON).
//!
//! Each measurement is the time of a request that pays for the step minus the same request
//! without it (see `session_bench::cases::Codec`), both run in process through the same
//! router; criterion reports that difference. The steps inside sealing and opening (encode,
//! encrypt, base64) are not measured separately: the library does not expose them.

// criterion_group! and criterion_main! generate undocumented public items.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion};
use session_bench::cases::{Codec, Step};
use session_bench::timing::runtime;
use tokio::runtime::Runtime;

/// Session data sizes. The largest is "3 KiB" as close as a cookie allows: 3072 bytes seal
/// to a token over the 4096-byte cookie limit (base64 adds a third), so 2900 bytes it is.
const SIZES: [usize; 4] = [64, 256, 1024, 2900];

fn codec(c: &mut Criterion) {
    let rt = runtime().unwrap_or_else(|error| panic!("{error}"));
    let fixtures: Vec<Codec> = SIZES
        .iter()
        .map(|&bytes| {
            rt.block_on(Codec::new(bytes))
                .unwrap_or_else(|error| panic!("{error}"))
        })
        .collect();
    let mut group = c.benchmark_group("seal");
    for codec in &fixtures {
        bench(&mut group, &rt, codec, "ours", &codec.ours_seal);
        bench(&mut group, &rt, codec, "peer", &codec.peer_seal);
    }
    group.finish();
    let mut group = c.benchmark_group("open");
    for codec in &fixtures {
        bench(&mut group, &rt, codec, "ours", &codec.ours_open);
        bench(&mut group, &rt, codec, "peer", &codec.peer_open);
        bench(&mut group, &rt, codec, "tampered", &codec.ours_tampered);
    }
    group.finish();
}

/// One step at one size: `<group>/<who>/<record bytes>`.
fn bench(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    codec: &Codec,
    who: &str,
    step: &Step,
) {
    group.bench_with_input(
        BenchmarkId::new(who, codec.record_len()),
        step,
        |b, step| b.iter_custom(|iters| step.time(rt, iters)),
    );
}

criterion_group! {
    name = benches;
    // Each measurement runs two requests per iteration but counts only their difference,
    // so a run takes several times the measurement time criterion plans for.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1));
    targets = codec
}
criterion_main!(benches);
