//! The cookie codec: sealing and opening at 64 B, 256 B, 1 KiB and ~3 KiB of session data,
//! each step alone, rejecting a tampered cookie, and the cookie peer (`cookie`'s private
//! jar with the same data as JSON).

// criterion_group! and criterion_main! generate undocumented public items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use session_bench::cases::Codec;

/// Session data sizes. The largest is "3 KiB" as close as a cookie allows: 3072 bytes seal
/// to a token over the 4096-byte cookie limit (base64 adds a third), so 2900 bytes it is.
const SIZES: [usize; 4] = [64, 256, 1024, 2900];

fn fixtures() -> Vec<Codec> {
    SIZES
        .iter()
        .map(|&bytes| match Codec::new(bytes) {
            Ok(codec) => codec,
            Err(error) => panic!("{error}"),
        })
        .collect()
}

fn seal(c: &mut Criterion) {
    let mut group = c.benchmark_group("seal");
    for codec in &fixtures() {
        let size = codec.record_len();
        group.bench_with_input(BenchmarkId::new("ours", size), codec, |b, codec| {
            b.iter(|| codec.ours_seal());
        });
        group.bench_with_input(BenchmarkId::new("peer", size), codec, |b, codec| {
            b.iter(|| codec.peer_seal());
        });
        group.bench_with_input(BenchmarkId::new("step_encode", size), codec, |b, codec| {
            b.iter(|| codec.step_encode());
        });
        group.bench_with_input(BenchmarkId::new("step_salt", size), codec, |b, codec| {
            b.iter(|| codec.step_salt());
        });
        group.bench_with_input(BenchmarkId::new("step_encrypt", size), codec, |b, codec| {
            b.iter_batched_ref(
                || codec.plaintext(),
                |plaintext| codec.step_encrypt(plaintext),
                criterion::BatchSize::SmallInput,
            );
        });
        let raw = codec.raw();
        group.bench_with_input(BenchmarkId::new("step_base64", size), codec, |b, codec| {
            b.iter(|| codec.step_base64_encode(black_box(&raw)));
        });
    }
    group.finish();
}

fn open(c: &mut Criterion) {
    let mut group = c.benchmark_group("open");
    for codec in &fixtures() {
        let size = codec.record_len();
        group.bench_with_input(BenchmarkId::new("ours", size), codec, |b, codec| {
            b.iter(|| codec.ours_open());
        });
        group.bench_with_input(BenchmarkId::new("peer", size), codec, |b, codec| {
            b.iter(|| codec.peer_open());
        });
        group.bench_with_input(BenchmarkId::new("step_base64", size), codec, |b, codec| {
            b.iter(|| codec.step_base64_decode());
        });
        group.bench_with_input(BenchmarkId::new("step_decrypt", size), codec, |b, codec| {
            b.iter_batched_ref(
                || codec.raw(),
                |raw| codec.step_decrypt(raw),
                criterion::BatchSize::SmallInput,
            );
        });
        let decrypted = codec.decrypted();
        group.bench_with_input(BenchmarkId::new("step_decode", size), codec, |b, codec| {
            b.iter(|| codec.step_decode(black_box(&decrypted)));
        });
        group.bench_with_input(BenchmarkId::new("tampered", size), codec, |b, codec| {
            b.iter(|| codec.ours_open_tampered());
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = seal, open
}
criterion_main!(benches);
