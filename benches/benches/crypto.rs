//! Criterion benchmarks of `bastion-crypto`'s hot paths.
//!
//! * `ed25519_verify`: signatures checked per second, side by side at batch sizes 1 to 1024,
//!   for ed25519-dalek (single `verify`, `verify_batch` parsing keys in the timed loop,
//!   `verify_batch` with pre-parsed keys), ours (`verify_batch` with raw keys as from fresh
//!   senders, with prepared keys as for validators and cached senders, and the rayon version
//!   at 1024) and ed25519-consensus's batch verifier. Every signature has its own key.
//! * `ed25519_verify_16_senders`: 1024 signatures by 16 keys, where ours adds each key to
//!   the multiscalar multiplication once.
//!
//! Every contender cycles through [`ROTATION`] distinct batches (own keys, messages and
//! signatures), one per iteration, as a validator never checks the same batch twice.
//! Repeating one batch favours ed25519-dalek: its coefficients `z_i` are derived from the
//! batch's contents, so a repeated batch repeats the same scalars and the CPU's branch
//! predictor learns the data-dependent branches of the multiscalar multiplication (about
//! 5 % at batch 64 here); ours draws fresh `z_i` every time. `dalek_batch_preparsed_same`
//! keeps the repeated-batch figure for comparison.
//! * `sha256`: bytes hashed per second from 64 B to 1 MiB.

use std::time::Duration;

use bastion_benches::Workload;
use bastion_crypto::{sha256, verify_batch, verify_batch_parallel};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ed25519_dalek::Verifier;

const SIZES: [usize; 5] = [1, 8, 64, 256, 1024];
/// Distinct batches each benchmark cycles through.
const ROTATION: usize = 8;

/// [`ROTATION`] distinct workloads of `n` signatures by `senders` keys.
fn workloads(n: usize, senders: usize) -> Vec<Workload> {
    (0..ROTATION).map(|r| Workload::new(n, senders, (n * ROTATION + r) as u64)).collect()
}

/// The inputs in turn, one per call, starting over after the last.
fn cycle<'a, T>(inputs: &'a [T]) -> impl FnMut() -> &'a T {
    let mut i = 0;
    move || {
        i = (i + 1) % inputs.len();
        &inputs[i]
    }
}

fn ed25519_verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("ed25519_verify");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for n in SIZES {
        let ws = workloads(n, n);
        let raw: Vec<_> = ws.iter().map(Workload::raw_items).collect();
        let prepared: Vec<_> = ws.iter().map(Workload::prepared_items).collect();
        let signed: Vec<_> = ws.iter().map(Workload::signed_refs).collect();
        assert!(raw.iter().chain(&prepared).all(|items| verify_batch(items).is_ok()));
        let batches: Vec<_> = ws.iter().zip(&signed).collect();
        group.throughput(Throughput::Elements(n as u64));

        group.bench_function(BenchmarkId::new("dalek_verify", n), |b| {
            let mut next = cycle(&ws);
            b.iter(|| {
                let w = next();
                for i in 0..n {
                    let key = ed25519_dalek::VerifyingKey::from_bytes(&w.keys[i].0).expect("valid key");
                    key.verify(&w.signed[i], &w.dalek_sigs[i]).expect("valid");
                }
            })
        });
        group.bench_function(BenchmarkId::new("dalek_batch_parse_keys", n), |b| {
            let mut next = cycle(&batches);
            b.iter(|| {
                let (w, signed) = next();
                let keys: Vec<ed25519_dalek::VerifyingKey> = w
                    .keys
                    .iter()
                    .map(|k| ed25519_dalek::VerifyingKey::from_bytes(&k.0).expect("valid key"))
                    .collect();
                ed25519_dalek::verify_batch(signed, &w.dalek_sigs, &keys).expect("valid")
            })
        });
        group.bench_function(BenchmarkId::new("dalek_batch_preparsed", n), |b| {
            let mut next = cycle(&batches);
            b.iter(|| {
                let (w, signed) = next();
                ed25519_dalek::verify_batch(signed, &w.dalek_sigs, &w.dalek_keys).expect("valid")
            })
        });
        if n == 64 {
            group.bench_function(BenchmarkId::new("dalek_batch_preparsed_same", n), |b| {
                let (w, signed) = batches[0];
                b.iter(|| ed25519_dalek::verify_batch(signed, &w.dalek_sigs, &w.dalek_keys).expect("valid"))
            });
        }
        group.bench_function(BenchmarkId::new("ours_raw", n), |b| {
            let mut next = cycle(&raw);
            b.iter(|| verify_batch(next()).expect("valid"))
        });
        group.bench_function(BenchmarkId::new("ours_prepared", n), |b| {
            let mut next = cycle(&prepared);
            b.iter(|| verify_batch(next()).expect("valid"))
        });
        if n == 1024 {
            group.bench_function(BenchmarkId::new("ours_parallel_raw", n), |b| {
                let mut next = cycle(&raw);
                b.iter(|| verify_batch_parallel(next()).expect("valid"))
            });
            group.bench_function(BenchmarkId::new("ours_parallel_prepared", n), |b| {
                let mut next = cycle(&prepared);
                b.iter(|| verify_batch_parallel(next()).expect("valid"))
            });
        }
        group.bench_function(BenchmarkId::new("consensus_batch", n), |b| {
            let mut next = cycle(&ws);
            b.iter(|| {
                let w = next();
                let mut verifier = ed25519_consensus::batch::Verifier::new();
                for i in 0..n {
                    let key = ed25519_consensus::VerificationKeyBytes::from(w.keys[i].0);
                    verifier.queue((key, ed25519_consensus::Signature::from(w.sigs[i].0), &w.signed[i]));
                }
                verifier.verify(rand::thread_rng()).expect("valid")
            })
        });
    }
    group.finish();

    // A busy mempool: 1024 transactions from 16 senders. Ours folds each sender's
    // coefficients into one point; dalek adds every key occurrence to the multiplication.
    let mut group = c.benchmark_group("ed25519_verify_16_senders");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    let n = 1024;
    let ws = workloads(n, 16);
    let raw: Vec<_> = ws.iter().map(Workload::raw_items).collect();
    let prepared: Vec<_> = ws.iter().map(Workload::prepared_items).collect();
    let signed: Vec<_> = ws.iter().map(Workload::signed_refs).collect();
    let batches: Vec<_> = ws.iter().zip(&signed).collect();
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(BenchmarkId::new("dalek_batch_preparsed", n), |b| {
        let mut next = cycle(&batches);
        b.iter(|| {
            let (w, signed) = next();
            ed25519_dalek::verify_batch(signed, &w.dalek_sigs, &w.dalek_keys).expect("valid")
        })
    });
    group.bench_function(BenchmarkId::new("ours_raw", n), |b| {
        let mut next = cycle(&raw);
        b.iter(|| verify_batch(next()).expect("valid"))
    });
    group.bench_function(BenchmarkId::new("ours_prepared", n), |b| {
        let mut next = cycle(&prepared);
        b.iter(|| verify_batch(next()).expect("valid"))
    });
    group.finish();
}

fn sha256_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("sha256");
    group.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for len in [64usize, 512, 4096, 1 << 20] {
        let data = vec![0x5au8; len];
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(len), &data, |b, data| b.iter(|| sha256(data)));
    }
    group.finish();
}

criterion_group!(benches, ed25519_verify, sha256_throughput);
criterion_main!(benches);
