//! The cookie codec through the public API: sealing and opening at 64 B, 256 B, 1 KiB and
//! ~3 KiB of session data, and rejecting a tampered cookie, ours (`SessionLayer` with a
//! `CookieStore`) and the cookie peer's (axum-extra's `PrivateCookieJar`, the same data as
//! JSON).
//!
//! A step is the time of a request that pays for it minus the same request without it (see
//! `session_bench::cases::Codec`), both run in process through the same router. Criterion
//! measures both requests, `<who>/<bytes>` and `<who>_without/<bytes>`; subtract the second
//! from the first. (Timing the difference inside one criterion sample does not work: on a
//! busy machine a short sample of it can come out at or below zero.) For the difference with
//! the machine's drift cancelled, `compare` pairs the two requests round by round (300 B).
//! The steps inside sealing and opening (encode, encrypt, base64) are not measured
//! separately: the library does not expose them.

// criterion_group! and criterion_main! generate undocumented public items.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion};
use session_bench::cases::{Codec, Step};
use session_bench::timing::{runtime, time_async};
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

/// One step at one size: `<group>/<who>/<record bytes>` (the request that pays for the step)
/// and `<group>/<who>_without/<record bytes>` (the same request without it).
fn bench(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    codec: &Codec,
    who: &str,
    step: &Step,
) {
    let size = codec.record_len();
    for (id, target) in [
        (who.to_owned(), &step.with),
        (format!("{who}_without"), &step.without),
    ] {
        group.bench_with_input(BenchmarkId::new(id, size), target, |b, target| {
            b.iter_custom(|iters| time_async(rt, iters, || target.call()));
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = codec
}
criterion_main!(benches);
