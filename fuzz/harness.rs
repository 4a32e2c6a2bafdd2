//! The shared harness of Bastion's bounded fuzz targets (stable Rust, `proptest`).
//!
//! Each target is a test named `fuzz_*` that feeds untrusted bytes to one decoder or entry
//! point and checks what must hold for *every* input (no panic, a typed refusal, and the
//! target's own oracle). A run is:
//! 1. **replay** of every file in the target's corpus, `fuzz/corpus/<target>/` (seeds are
//!    produced by the real encoders, plus known-tricky and past crashing inputs);
//! 2. **mutation**: `FUZZ_CASES` inputs (the target's small default unless set), each a
//!    corpus seed with a few byte flips, overwrites, truncations, insertions, removals,
//!    length-field overwrites and splices, or fully random bytes.
//!
//! Inputs come from a fixed seed unless `FUZZ_SEED` (any text) is set, so a run replays. A
//! failure is shrunk to a small input, written to the corpus as `crash-<hash>` (a regression
//! seed from then on) and reported. Every target prints its exec count and rate.
//!
//! [`TrackingAllocator`] records the largest single allocation a thread makes, so targets
//! can assert that a forged length is refused before anything of that size is allocated.
//!
//! Included by each crate's fuzz test file with `#[path]`, so it has no crate of its own.

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// The corpus directory of `target`.
pub fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("fuzz").join("corpus").join(target)
}

/// Writes each named seed the corpus lacks (seeds already there are left alone: a seed
/// file is an input, whichever code produced it).
pub fn ensure_seeds(target: &str, seeds: &[(&str, Vec<u8>)]) {
    let dir = corpus_dir(target);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    for (name, bytes) in seeds {
        let path = dir.join(name);
        if !path.exists() {
            fs::write(&path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
    }
}

/// Every seed of `target`, by file name, in name order.
pub fn load_corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut seeds: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_file())
        .map(|entry| {
            let bytes = fs::read(entry.path()).unwrap_or_else(|e| panic!("cannot read a seed: {e}"));
            (entry.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "the corpus {} is empty", dir.display());
    seeds
}

/// Mutation cases to run: `FUZZ_CASES`, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// One edit of an input.
#[derive(Clone, Debug)]
pub enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Remove(Index, u8),
    /// Overwrites 4 or 8 bytes (a length prefix, a count, a round) with an edge value.
    Length(Index, bool, u64),
    /// Copies a range of the input over another place (repeats structure).
    Duplicate(Index, Index, u8),
    /// Replaces the tail with the tail of another seed.
    Splice(Index, Index, Index),
}

fn edge_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(2),
        Just(0x7f),
        Just(0xff),
        Just(0xffff),
        Just(0x10000),
        Just(u64::from(u32::MAX)),
        Just(u64::from(u32::MAX) + 1),
        Just(u64::MAX),
        Just(u64::MAX / 2),
        Just(1 << 40),
        any::<u64>(),
        0u64..4096,
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Mutation::SetByte(at, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        1 => (any::<Index>(), 1u8..32).prop_map(|(at, n)| Mutation::Remove(at, n)),
        2 => (any::<Index>(), any::<bool>(), edge_value()).prop_map(|(at, wide, v)| Mutation::Length(at, wide, v)),
        1 => (any::<Index>(), any::<Index>(), 1u8..64).prop_map(|(from, to, n)| Mutation::Duplicate(from, to, n)),
        1 => (any::<Index>(), any::<Index>(), any::<Index>()).prop_map(|(s, a, b)| Mutation::Splice(s, a, b)),
    ]
}

/// Applies `mutation` to `input`; `seeds` is the corpus (for splices).
pub fn apply(input: &mut Vec<u8>, mutation: &Mutation, seeds: &[Vec<u8>]) {
    let len = input.len();
    let at = |i: &Index| if len == 0 { 0 } else { i.index(len) };
    match mutation {
        Mutation::FlipBit(i, bit) if len > 0 => input[at(i)] ^= 1 << bit,
        Mutation::SetByte(i, b) if len > 0 => input[at(i)] = *b,
        Mutation::Truncate(i) => input.truncate(at(i)),
        Mutation::Insert(i, bytes) => {
            let pos = if len == 0 { 0 } else { i.index(len + 1) };
            input.splice(pos..pos, bytes.iter().copied());
        }
        Mutation::Remove(i, n) if len > 0 => {
            let start = at(i);
            let end = (start + usize::from(*n)).min(len);
            input.drain(start..end);
        }
        Mutation::Length(i, wide, value) => {
            let width = if *wide { 8 } else { 4 };
            if len >= width {
                let start = i.index(len - width + 1);
                let bytes = value.to_le_bytes();
                input[start..start + width].copy_from_slice(&bytes[..width]);
            }
        }
        Mutation::Duplicate(from, to, n) if len > 0 => {
            let start = at(from);
            let end = (start + usize::from(*n)).min(len);
            let chunk: Vec<u8> = input[start..end].to_vec();
            let pos = at(to);
            input.splice(pos..pos, chunk);
        }
        Mutation::Splice(seed, from, to) if !seeds.is_empty() => {
            let other = &seeds[seed.index(seeds.len())];
            let cut = if len == 0 { 0 } else { at(from) };
            input.truncate(cut);
            if !other.is_empty() {
                input.extend_from_slice(&other[to.index(other.len())..]);
            }
        }
        _ => {}
    }
}

/// Mutated corpus seeds (most inputs) and fully random bytes.
pub fn inputs(seeds: Vec<Vec<u8>>, max_random_len: usize) -> impl Strategy<Value = Vec<u8>> {
    let count = seeds.len();
    let mutated = (0..count, proptest::collection::vec(mutation(), 1..6)).prop_map(move |(i, edits)| {
        let mut input = seeds[i].clone();
        for edit in &edits {
            apply(&mut input, edit, &seeds);
        }
        input
    });
    prop_oneof![
        9 => mutated,
        1 => proptest::collection::vec(any::<u8>(), 0..max_random_len),
    ]
}

fn runner(cases: u32) -> TestRunner {
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 4096, ..Config::default() };
    let seed_text = std::env::var("FUZZ_SEED").unwrap_or_else(|_| "bastion-fuzz".into());
    let digest = seed_digest(seed_text.as_bytes());
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &digest))
}

/// 32 bytes from any text (FNV-1a, spread): enough to pick a reproducible RNG seed.
fn seed_digest(text: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        for &b in text.iter().chain(&[i as u8]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        chunk.copy_from_slice(&h.to_le_bytes());
    }
    out
}

/// Runs `target`: replays its corpus, then `FUZZ_CASES` (default `default_cases`) inputs
/// from `strategy`, each checked by `check` (which fails with a reason or panics). On a
/// failure the shrunk input is saved to the corpus (via `to_bytes`) and the test fails.
pub fn run_with<T: std::fmt::Debug + Clone>(
    target: &str,
    default_cases: u32,
    strategy: impl Strategy<Value = T>,
    from_bytes: impl Fn(&[u8]) -> T,
    to_bytes: impl Fn(&T) -> Vec<u8>,
    check: impl Fn(&T) -> Result<(), String>,
) {
    let started = Instant::now();
    let corpus = load_corpus(target);
    for (name, bytes) in &corpus {
        if let Err(reason) = check(&from_bytes(bytes)) {
            panic!("{target}: corpus seed {name} fails: {reason}");
        }
    }
    let cases = cases(default_cases);
    let execs = AtomicU64::new(corpus.len() as u64);
    let result = runner(cases).run(&strategy, |input| {
        execs.fetch_add(1, Ordering::Relaxed);
        check(&input).map_err(TestCaseError::fail)
    });
    let execs = execs.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fuzz {target}: {execs} execs ({} seeds + {cases} cases + shrinking) in {secs:.2} s = {:.0} execs/s",
        corpus.len(),
        execs as f64 / secs.max(1e-9)
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, input)) => {
            let bytes = to_bytes(&input);
            let name =
                format!("crash-{:016x}", u64::from_le_bytes(seed_digest(&bytes)[..8].try_into().unwrap()));
            let path = corpus_dir(target).join(&name);
            let saved = fs::write(&path, &bytes).map(|()| path.display().to_string());
            panic!("{target}: {reason}\nminimal input ({} bytes, saved: {saved:?}): {input:?}", bytes.len());
        }
        Err(TestError::Abort(reason)) => panic!("{target}: aborted: {reason}"),
    }
}

/// [`run_with`] for targets whose input is plain bytes.
pub fn run(
    target: &str,
    default_cases: u32,
    max_random_len: usize,
    check: impl Fn(&[u8]) -> Result<(), String>,
) {
    let seeds: Vec<Vec<u8>> = load_corpus(target).into_iter().map(|(_, bytes)| bytes).collect();
    run_with(
        target,
        default_cases,
        inputs(seeds, max_random_len),
        <[u8]>::to_vec,
        Clone::clone,
        |input: &Vec<u8>| check(input),
    );
}

thread_local! {
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

/// A global allocator that remembers, per thread, the largest single allocation since
/// [`largest_allocation`] last reset it. Declare it with `#[global_allocator]`.
pub struct TrackingAllocator;

fn note(size: usize) {
    // `try_with`: the thread-local may already be gone while a thread is exiting.
    let _ = PEAK.try_with(|peak| {
        if size > peak.get() {
            peak.set(size);
        }
    });
}

unsafe impl GlobalAlloc for TrackingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f` and returns its result with the largest single allocation this thread made
/// meanwhile (0 if nothing was allocated, or without [`TrackingAllocator`] installed).
pub fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = PEAK.with(|peak| peak.replace(0));
    let result = f();
    let during = PEAK.with(|peak| peak.replace(before.max(peak.get())));
    (result, during)
}
