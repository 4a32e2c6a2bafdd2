//! Batch verification spread over rayon's thread pool.
//!
//! A large batch is cut into at most one piece per pool thread, each of at least
//! [`MIN_PIECE`] items (smaller pieces would lose more to the per-batch fixed cost than
//! they gain from parallelism), and each piece is checked with [`verify_batch`]. Acceptance
//! is therefore identical to [`verify_batch`] and [`crate::verify()`]: pieces only change
//! which random coefficients are drawn, not what is accepted.

use std::ops::Range;

use rayon::prelude::*;

#[cfg(doc)]
use crate::verify::verify;
use crate::verify::{find_invalid, verify_batch, BatchItem};
use crate::CryptoError;

/// The smallest piece handed to a thread.
pub const MIN_PIECE: usize = 64;

/// [`verify_batch`] with the batch split across rayon's pool; `Ok` iff every item passes
/// [`verify`](crate::verify()).
pub fn verify_batch_parallel(items: &[BatchItem<'_>]) -> Result<(), CryptoError> {
    let pieces = piece_count(items.len());
    if pieces <= 1 {
        return verify_batch(items);
    }
    (0..pieces).into_par_iter().try_for_each(|i| verify_batch(&items[piece(items.len(), pieces, i)]))
}

/// [`find_invalid`] with the batch split across rayon's pool: the ascending indices of
/// exactly the items that fail [`verify`](crate::verify()).
pub fn find_invalid_parallel(items: &[BatchItem<'_>]) -> Vec<usize> {
    let pieces = piece_count(items.len());
    if pieces <= 1 {
        return find_invalid(items);
    }
    let per_piece: Vec<Vec<usize>> = (0..pieces)
        .into_par_iter()
        .map(|i| {
            let range = piece(items.len(), pieces, i);
            let start = range.start;
            find_invalid(&items[range]).into_iter().map(|index| start + index).collect()
        })
        .collect();
    per_piece.concat()
}

fn piece_count(len: usize) -> usize {
    (len / MIN_PIECE).min(rayon::current_num_threads()).max(1)
}

/// The `i`-th of `pieces` contiguous ranges covering `0..len`, whose lengths differ by at
/// most one (so none is shorter than `len / pieces`).
fn piece(len: usize, pieces: usize, i: usize) -> Range<usize> {
    let base = len / pieces;
    let longer = len % pieces;
    let start = i * base + i.min(longer);
    let end = start + base + usize::from(i < longer);
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_batch_and_respect_the_minimum() {
        for len in 0..2_000 {
            for threads in 1..=16 {
                let pieces = (len / MIN_PIECE).min(threads).max(1);
                let mut next = 0;
                for i in 0..pieces {
                    let range = piece(len, pieces, i);
                    assert_eq!(range.start, next);
                    if pieces > 1 {
                        assert!(range.len() >= MIN_PIECE, "len {len} threads {threads}: {range:?}");
                    }
                    next = range.end;
                }
                assert_eq!(next, len);
            }
        }
    }
}
