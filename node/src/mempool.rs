//! The mempool: admitted transactions waiting to be sealed into a batch.
//!
//! Bounded twice: at most `capacity` transactions wait to be batched, and each sender may
//! have at most `per_sender` transactions that are not yet executed (waiting or in a batch).
//! A full pool refuses with a typed error (the API answers 429); nothing is dropped
//! silently. A transaction is known by its hash from admission until its block executes,
//! so a resubmission is recognised and answered with the same hash.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bastion_crypto::Digest;
use bastion_ledger::{Address, VerifiedTransaction};
use bytes::Bytes;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MempoolError {
    #[error("mempool is full ({0} transactions waiting)")]
    Full(usize),
    #[error("sender {0} already has {1} pending transactions")]
    SenderFull(Address, usize),
}

/// Where a known, not yet executed transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxLocation {
    Queued,
    InBatch(Digest),
}

/// An admitted transaction.
#[derive(Clone, Debug)]
pub struct PoolTx {
    pub hash: Digest,
    pub bytes: Bytes,
    pub sender: Address,
    pub nonce: u64,
    /// The checked transaction (absent in consensus-only mode, where payloads are opaque).
    pub verified: Option<VerifiedTransaction>,
}

#[derive(Default)]
struct SenderState {
    pending: usize,
    next_nonce: u64,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<PoolTx>,
    known: HashMap<Digest, (TxLocation, Address)>,
    senders: HashMap<Address, SenderState>,
}

pub struct Mempool {
    inner: Mutex<Inner>,
    capacity: usize,
    per_sender: usize,
    /// Bound on transactions tracked in batches that have not executed yet.
    max_tracked: usize,
}

impl Mempool {
    pub fn new(capacity: usize, per_sender: usize) -> Self {
        Mempool {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            per_sender: per_sender.max(1),
            max_tracked: capacity.max(1) * 8,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a transaction; `Ok(false)` if it was already known (not an error).
    pub fn insert(&self, tx: PoolTx) -> Result<bool, MempoolError> {
        let mut inner = self.lock();
        if inner.known.contains_key(&tx.hash) {
            return Ok(false);
        }
        if inner.queue.len() >= self.capacity {
            return Err(MempoolError::Full(inner.queue.len()));
        }
        let sender = inner.senders.entry(tx.sender).or_default();
        if sender.pending >= self.per_sender {
            return Err(MempoolError::SenderFull(tx.sender, sender.pending));
        }
        sender.pending += 1;
        sender.next_nonce = sender.next_nonce.max(tx.nonce.saturating_add(1));
        inner.known.insert(tx.hash, (TxLocation::Queued, tx.sender));
        inner.queue.push_back(tx);
        Ok(true)
    }

    /// `Err` if an insert would find the pool full now: lets admission refuse before it
    /// spends a signature check on a transaction it cannot keep.
    pub fn check_room(&self) -> Result<(), MempoolError> {
        let queued = self.lock().queue.len();
        if queued >= self.capacity {
            return Err(MempoolError::Full(queued));
        }
        Ok(())
    }

    pub fn location(&self, hash: &Digest) -> Option<TxLocation> {
        self.lock().known.get(hash).map(|(location, _)| *location)
    }

    /// One past the highest nonce the sender has pending here, if any.
    pub fn pending_next_nonce(&self, sender: &Address) -> Option<u64> {
        self.lock().senders.get(sender).filter(|s| s.pending > 0).map(|s| s.next_nonce)
    }

    /// Transactions waiting to be batched.
    pub fn queued(&self) -> usize {
        self.lock().queue.len()
    }

    /// Takes up to `max_txs` transactions / `max_bytes` bytes from the front of the queue.
    pub fn take(&self, max_txs: usize, max_bytes: usize) -> Vec<PoolTx> {
        let mut inner = self.lock();
        let mut taken = Vec::new();
        let mut bytes = 0;
        while let Some(front) = inner.queue.front() {
            if taken.len() >= max_txs || (!taken.is_empty() && bytes + front.bytes.len() > max_bytes) {
                break;
            }
            bytes += front.bytes.len();
            if let Some(tx) = inner.queue.pop_front() {
                taken.push(tx);
            }
        }
        taken
    }

    /// Records that these transactions were sealed into `batch`.
    pub fn mark_batched(&self, batch: Digest, hashes: &[Digest]) {
        let mut inner = self.lock();
        for hash in hashes {
            if let Some(entry) = inner.known.get_mut(hash) {
                entry.0 = TxLocation::InBatch(batch);
            }
        }
        if inner.known.len() > self.max_tracked + self.capacity {
            // Batches that never execute (their author crashed before anyone stored them)
            // would otherwise pin their transactions forever: forget the oldest in-batch ones.
            let excess = inner.known.len() - self.max_tracked;
            let stale: Vec<Digest> = inner
                .known
                .iter()
                .filter(|(_, (loc, _))| matches!(loc, TxLocation::InBatch(_)))
                .map(|(h, _)| *h)
                .take(excess)
                .collect();
            for hash in stale {
                forget(&mut inner, &hash);
            }
        }
    }

    /// Forgets executed (or otherwise final) transactions.
    pub fn finalized(&self, hashes: &[Digest]) {
        let mut inner = self.lock();
        for hash in hashes {
            forget(&mut inner, hash);
        }
    }
}

fn forget(inner: &mut Inner, hash: &Digest) {
    let Some((location, sender)) = inner.known.remove(hash) else { return };
    if location == TxLocation::Queued {
        inner.queue.retain(|tx| tx.hash != *hash);
    }
    if let Some(state) = inner.senders.get_mut(&sender) {
        state.pending = state.pending.saturating_sub(1);
        if state.pending == 0 {
            inner.senders.remove(&sender);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(i: u8, sender: u8, nonce: u64) -> PoolTx {
        PoolTx {
            hash: Digest([i; 32]),
            bytes: Bytes::from(vec![i; 10]),
            sender: Address([sender; 32]),
            nonce,
            verified: None,
        }
    }

    #[test]
    fn refuses_when_full_and_recognises_duplicates() {
        let pool = Mempool::new(2, 10);
        assert_eq!(pool.insert(tx(1, 1, 0)), Ok(true));
        assert_eq!(pool.insert(tx(1, 1, 0)), Ok(false), "same hash is a duplicate, not an error");
        assert_eq!(pool.insert(tx(2, 1, 1)), Ok(true));
        assert_eq!(pool.insert(tx(3, 1, 2)), Err(MempoolError::Full(2)));
        assert_eq!(pool.check_room(), Err(MempoolError::Full(2)));
        pool.take(1, 1 << 20);
        assert_eq!(pool.check_room(), Ok(()), "taking into a batch makes room");
        assert_eq!(pool.pending_next_nonce(&Address([1; 32])), Some(2));
    }

    #[test]
    fn limits_each_sender() {
        let pool = Mempool::new(10, 2);
        pool.insert(tx(1, 7, 0)).unwrap();
        pool.insert(tx(2, 7, 1)).unwrap();
        assert!(matches!(pool.insert(tx(3, 7, 2)), Err(MempoolError::SenderFull(_, 2))));
        assert_eq!(pool.insert(tx(4, 8, 0)), Ok(true), "other senders are unaffected");
    }

    #[test]
    fn batching_and_finalizing_release_capacity() {
        let pool = Mempool::new(3, 3);
        for i in 0..3 {
            pool.insert(tx(i, 1, u64::from(i))).unwrap();
        }
        let taken = pool.take(2, 1 << 20);
        assert_eq!(taken.len(), 2);
        assert_eq!(pool.queued(), 1);
        let hashes: Vec<Digest> = taken.iter().map(|t| t.hash).collect();
        pool.mark_batched(Digest([9; 32]), &hashes);
        assert_eq!(pool.location(&hashes[0]), Some(TxLocation::InBatch(Digest([9; 32]))));
        assert!(pool.insert(tx(5, 1, 3)).is_err(), "sender still has 3 unexecuted");
        pool.finalized(&hashes);
        assert_eq!(pool.location(&hashes[0]), None);
        assert_eq!(pool.insert(tx(5, 1, 3)), Ok(true));
    }

    #[test]
    fn take_respects_the_byte_budget() {
        let pool = Mempool::new(10, 10);
        for i in 0..5 {
            pool.insert(tx(i, i, 0)).unwrap();
        }
        assert_eq!(pool.take(10, 25).len(), 2, "10-byte transactions, 25-byte budget");
        assert_eq!(pool.take(10, 1).len(), 1, "always at least one");
    }
}
