//! Paired comparison of batch verification with keys parsed per batch: ours against
//! ed25519-dalek's `verify_batch`, at batch 64.
//!
//! Criterion runs one contender after the other, each for a couple of seconds; on a shared
//! host whose speed drifts by tens of percent within minutes, their ratio then measures the
//! drift as much as the code. Here the two take turns in short rounds (which goes first
//! alternates), every round's ratio is kept, and the median round ratio is printed with the
//! totals.
//!
//! `cargo run --release -p bastion-benches --example ed25519_ratio [ROUNDS]` (default 200).

use std::time::{Duration, Instant};

use bastion_benches::Workload;
use bastion_crypto::verify_batch;

const BATCH: usize = 64;
/// Distinct batches cycled through (a validator never checks the same batch twice).
const ROTATION: usize = 8;
/// Batches each contender checks per turn.
const PER_TURN: usize = 20;

fn ours(batch: &Workload) {
    verify_batch(&batch.raw_items()).expect("valid batch");
}

fn dalek(batch: &Workload) {
    let keys: Vec<ed25519_dalek::VerifyingKey> = batch
        .keys
        .iter()
        .map(|key| ed25519_dalek::VerifyingKey::from_bytes(&key.0).expect("valid key"))
        .collect();
    ed25519_dalek::verify_batch(&batch.signed_refs(), &batch.dalek_sigs, &keys).expect("valid batch");
}

/// Time of one turn: `PER_TURN` batches, taken in rotation from `start`.
fn turn(batches: &[Workload], start: usize, check: fn(&Workload)) -> Duration {
    let began = Instant::now();
    for i in 0..PER_TURN {
        check(&batches[(start + i) % batches.len()]);
    }
    began.elapsed()
}

fn main() {
    let rounds: usize = match std::env::args().nth(1) {
        None => 200,
        Some(text) => match text.parse() {
            Ok(rounds) if rounds > 0 => rounds,
            _ => {
                eprintln!("usage: ed25519_ratio [ROUNDS]  (a positive number of rounds, default 200)");
                std::process::exit(2);
            }
        },
    };
    let batches: Vec<Workload> = (0..ROTATION as u64).map(|seed| Workload::new(BATCH, BATCH, seed)).collect();
    // Warm-up: both code paths and the caches.
    for b in &batches {
        ours(b);
        dalek(b);
    }
    let (mut ours_total, mut dalek_total) = (Duration::ZERO, Duration::ZERO);
    let mut ratios = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let start = round * PER_TURN;
        let (ours_time, dalek_time) = if round % 2 == 0 {
            let o = turn(&batches, start, ours);
            (o, turn(&batches, start, dalek))
        } else {
            let d = turn(&batches, start, dalek);
            (turn(&batches, start, ours), d)
        };
        ours_total += ours_time;
        dalek_total += dalek_time;
        // Throughput ratio: dalek's time over ours.
        ratios.push(dalek_time.as_secs_f64() / ours_time.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let sigs = (rounds * PER_TURN * BATCH) as f64;
    let quantile = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    println!("batch {BATCH}, keys parsed per batch, {rounds} rounds of {PER_TURN} batches each");
    println!("  ed25519-dalek verify_batch: {:>8.0} sigs/s", sigs / dalek_total.as_secs_f64());
    println!("  ours (ZIP215):              {:>8.0} sigs/s", sigs / ours_total.as_secs_f64());
    println!(
        "  ours / dalek: {:.3}x over the totals, round median {:.3}x (10th-90th percentile {:.3}-{:.3})",
        dalek_total.as_secs_f64() / ours_total.as_secs_f64(),
        quantile(0.5),
        quantile(0.1),
        quantile(0.9)
    );
}
