//! The mempool: admitted transactions waiting to be sealed into a batch.
//!
//! Bounded twice: at most `capacity` transactions wait to be batched, and each sender may
//! have at most `per_sender` transactions that are not yet executed (waiting or in a batch).
//! A full pool refuses with a typed error (the API answers 429); nothing is dropped
//! silently. A transaction is known by its hash from admission until its block executes,
//! so a resubmission is recognised and answered with the same hash.
//!
//! **Nonce order.** Execution rejects a transaction whose nonce is not its sender's next
//! one, so the pool batches each sender's transactions in nonce order, whatever order they
//! arrived in (a client with several requests in flight, a retry after a 429). A transaction
//! whose nonce is ahead of the next one this pool can batch is *held* until the gap fills:
//! by admission of the missing nonce, or by execution of it (it may have gone through
//! another validator). A nonce more than `per_sender` ahead is refused, not held. A gap
//! still open after `gap_wait` releases the sender's held transactions anyway, in nonce
//! order: execution then rejects them with "bad nonce", so the client gets a receipt
//! instead of a transaction that waits forever.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bastion_crypto::{Digest, DigestMap};
use bastion_ledger::{Address, VerifiedTransaction};
use bytes::Bytes;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MempoolError {
    #[error("mempool is full ({0} transactions waiting)")]
    Full(usize),
    #[error("sender {0} already has {1} pending transactions")]
    SenderFull(Address, usize),
    /// Further ahead of the sender's next nonce than its limit: it could only be held, and
    /// would take the room its missing nonces need to get in. Admitted once they are.
    #[error("nonce {1} of sender {0} is more than {3} ahead of its next nonce {2}")]
    TooFarAhead(Address, u64, u64, usize),
}

/// Where a known, not yet executed transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxLocation {
    /// Waiting to be batched (possibly held for a nonce gap).
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
    /// Transactions not yet executed: queued, held or in a batch.
    pending: usize,
    /// One past the highest nonce pending.
    next_nonce: u64,
    /// The nonce the next queued transaction of this sender should have.
    ready_nonce: u64,
    /// Transactions ahead of `ready_nonce`, by nonce (then hash).
    held: BTreeMap<(u64, Digest), PoolTx>,
    /// Since when transactions are held without any being released (`None`: none held).
    gap_since: Option<Instant>,
}

impl SenderState {
    /// Whether a transaction with `nonce` fills this sender's gap, `ready` being its next
    /// batchable nonce: it is that nonce, and a held one is within `window` nonces of it
    /// (the sender's limit: nonces further ahead cannot be pending with everything between).
    fn fills_gap(&self, nonce: u64, ready: u64, window: usize) -> bool {
        nonce == ready
            && self
                .held
                .first_key_value()
                .is_some_and(|((held, _), _)| held.saturating_sub(nonce) <= window as u64)
    }
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<PoolTx>,
    known: DigestMap<(TxLocation, Address)>,
    senders: HashMap<Address, SenderState>,
    /// Transactions held across all senders.
    held: usize,
    /// The next nonce of senders whose transactions executed lately (bounded: cleared when
    /// it outgrows the pool). Admission reads the account a moment before it inserts: a
    /// block executing in between must not make the next transaction look like a gap.
    executed_nonces: HashMap<Address, u64>,
}

impl Inner {
    /// Transactions waiting to be batched, held ones included.
    fn waiting(&self) -> usize {
        self.queue.len() + self.held
    }

    /// Queues `sender`'s held transactions that are no longer ahead of its ready nonce.
    fn release_ready(&mut self, sender: &Address) {
        let Some(state) = self.senders.get_mut(sender) else { return };
        let mut released = Vec::new();
        while let Some(entry) = state.held.first_entry() {
            if entry.key().0 > state.ready_nonce {
                break;
            }
            let tx = entry.remove();
            state.ready_nonce = state.ready_nonce.max(tx.nonce.saturating_add(1));
            released.push(tx);
        }
        if state.held.is_empty() {
            state.gap_since = None;
        } else if !released.is_empty() {
            state.gap_since = Some(Instant::now());
        }
        self.held -= released.len();
        self.queue.extend(released);
    }
}

/// The least number of senders whose executed nonce is remembered.
const MIN_EXECUTED_NONCES: usize = 65_536;

pub struct Mempool {
    inner: Mutex<Inner>,
    capacity: usize,
    per_sender: usize,
    /// How long a nonce gap may hold a sender's later transactions.
    gap_wait: Duration,
    /// Bound on transactions tracked in batches that have not executed yet.
    max_tracked: usize,
    /// Most transactions held for nonce gaps, across senders: three quarters of `capacity`,
    /// so a quarter of the pool is always there for transactions that can be batched now.
    max_held: usize,
}

impl Mempool {
    pub fn new(capacity: usize, per_sender: usize, gap_wait: Duration) -> Self {
        Mempool {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            per_sender: per_sender.max(1),
            gap_wait,
            max_tracked: capacity.max(1) * 8,
            max_held: (capacity - capacity / 4).max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `state`'s transaction with `nonce` fills its gap and may pass the bounds,
    /// with `waiting` transactions in the pool: fillers stop a quarter above `capacity` and
    /// at twice the sender's limit.
    fn admits_filler(&self, state: &SenderState, nonce: u64, ready: u64, waiting: usize) -> bool {
        state.fills_gap(nonce, ready, self.per_sender)
            && waiting < self.capacity + (self.capacity / 4).max(1)
            && state.pending < self.per_sender * 2
    }

    /// Adds a transaction whose sender's executed nonce is `account_nonce`; `Ok(false)` if
    /// it was already known (not an error). It is queued for batching, or held while a
    /// lower nonce of its sender is missing here.
    ///
    /// A transaction that fills a sender's gap (it is the next nonce, and a held one is
    /// within the sender's limit ahead of it) is admitted even into a full pool or past the
    /// sender's limit: refusing it would leave the held ones to be rejected. Such fillers
    /// stop at hard bounds a quarter above `capacity` and at twice the sender's limit.
    /// At most three quarters of `capacity` is held at once, and only nonces at most the
    /// sender's limit ahead of its next one: so whatever is held, the nonces missing below
    /// it are always fillers and get in (a client that had a run of nonces refused during a
    /// stall, then sent later ones, would otherwise find the sender's share full of held
    /// transactions its refused ones are too far below to release).
    pub fn insert(&self, tx: PoolTx, account_nonce: u64) -> Result<bool, MempoolError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.known.contains_key(&tx.hash) {
            return Ok(false);
        }
        let address = tx.sender;
        let account_nonce = account_nonce.max(inner.executed_nonces.get(&address).copied().unwrap_or(0));
        let ready = inner.senders.get(&address).map_or(account_nonce, |s| s.ready_nonce.max(account_nonce));
        let waiting = inner.waiting();
        let fills_gap =
            inner.senders.get(&address).is_some_and(|s| self.admits_filler(s, tx.nonce, ready, waiting));
        if waiting >= self.capacity && !fills_gap {
            return Err(MempoolError::Full(waiting));
        }
        self.within_reach(&address, tx.nonce, ready)?;
        if tx.nonce > ready && inner.held >= self.max_held {
            // Held transactions pin capacity until their gap fills or times out: they get
            // a share of the pool, so far-ahead nonces cannot crowd out batchable ones.
            return Err(MempoolError::Full(waiting));
        }
        let sender = inner
            .senders
            .entry(address)
            .or_insert_with(|| SenderState { ready_nonce: account_nonce, ..SenderState::default() });
        if sender.pending >= self.per_sender && !fills_gap {
            return Err(MempoolError::SenderFull(address, sender.pending));
        }
        sender.pending += 1;
        sender.next_nonce = sender.next_nonce.max(tx.nonce.saturating_add(1));
        sender.ready_nonce = sender.ready_nonce.max(account_nonce);
        inner.known.insert(tx.hash, (TxLocation::Queued, address));
        if tx.nonce > sender.ready_nonce {
            sender.gap_since.get_or_insert_with(Instant::now);
            sender.held.insert((tx.nonce, tx.hash), tx);
            inner.held += 1;
        } else {
            if tx.nonce == sender.ready_nonce {
                sender.ready_nonce += 1;
            }
            inner.queue.push_back(tx);
            inner.release_ready(&address);
        }
        Ok(true)
    }

    /// `Err` if an insert would find the pool full now: lets admission refuse before it
    /// spends a signature check on a transaction it cannot keep.
    pub fn check_room(&self) -> Result<(), MempoolError> {
        self.room(&self.lock())
    }

    /// `Err` if an insert of `sender`'s transaction with `nonce` would be refused now (a
    /// full pool, or the sender at its limit, and the transaction does not fill the
    /// sender's gap): lets admission refuse before it spends a signature check. Under
    /// overload, verifying transactions only to refuse them takes the cores the rest needs.
    pub fn check_room_for(&self, sender: &Address, nonce: u64) -> Result<(), MempoolError> {
        self.screen(&self.lock(), sender, nonce).map(|_| ())
    }

    /// `check_room_for` of each of a request's transactions, in order, as if the ones
    /// before were admitted (`None`: one that does not decode, screened as by `check_room`).
    ///
    /// A gap filler is followed by the sender's next nonce in the same request, which fills
    /// the gap too once the first is in: screened one by one against the pool as it stands,
    /// only the first would pass, and a client resending the gap at its sender's limit
    /// would get one nonce in per round trip while the held transactions run out of time.
    pub fn check_room_for_all(&self, txs: &[Option<(Address, u64)>]) -> Vec<Result<(), MempoolError>> {
        let inner = self.lock();
        // Per sender: the nonce that continues the run of gap fillers screened so far.
        let mut filling: HashMap<Address, u64> = HashMap::new();
        txs.iter()
            .map(|tx| {
                let Some((sender, nonce)) = tx else { return self.room(&inner) };
                if filling.get(sender) == Some(nonce) {
                    filling.insert(*sender, nonce.saturating_add(1));
                    return Ok(());
                }
                let fills = self.screen(&inner, sender, *nonce)?;
                if fills {
                    filling.insert(*sender, nonce.saturating_add(1));
                }
                Ok(())
            })
            .collect()
    }

    /// Refuses a nonce more than the sender's limit ahead of `ready`, its next batchable one.
    fn within_reach(&self, sender: &Address, nonce: u64, ready: u64) -> Result<(), MempoolError> {
        if nonce.saturating_sub(ready) > self.per_sender as u64 {
            return Err(MempoolError::TooFarAhead(*sender, nonce, ready, self.per_sender));
        }
        Ok(())
    }

    fn room(&self, inner: &Inner) -> Result<(), MempoolError> {
        let waiting = inner.waiting();
        if waiting >= self.capacity {
            return Err(MempoolError::Full(waiting));
        }
        Ok(())
    }

    /// `Ok(true)` if the transaction would be admitted as its sender's gap filler,
    /// `Ok(false)` if within the bounds, else why it would be refused.
    fn screen(&self, inner: &Inner, sender: &Address, nonce: u64) -> Result<bool, MempoolError> {
        let state = inner.senders.get(sender);
        if let Some(s) = state {
            let ready = s.ready_nonce.max(inner.executed_nonces.get(sender).copied().unwrap_or(0));
            if self.admits_filler(s, nonce, ready, inner.waiting()) {
                return Ok(true);
            }
            self.within_reach(sender, nonce, ready)?;
        }
        self.room(inner)?;
        match state {
            Some(s) if s.pending >= self.per_sender => Err(MempoolError::SenderFull(*sender, s.pending)),
            _ => Ok(false),
        }
    }

    pub fn location(&self, hash: &Digest) -> Option<TxLocation> {
        self.lock().known.get(hash).map(|(location, _)| *location)
    }

    /// The sender's next nonce as of the last executed block that advanced it, if this
    /// pool remembers it (it forgets every sender when the record outgrows the pool). A
    /// transaction at or above it has not executed successfully: executing advances the
    /// sender's nonce past the transaction's own.
    pub fn executed_nonce(&self, sender: &Address) -> Option<u64> {
        self.lock().executed_nonces.get(sender).copied()
    }

    /// One past the highest nonce the sender has pending here, if any.
    pub fn pending_next_nonce(&self, sender: &Address) -> Option<u64> {
        self.lock().senders.get(sender).filter(|s| s.pending > 0).map(|s| s.next_nonce)
    }

    /// Transactions waiting to be batched, those held for a nonce gap included.
    pub fn queued(&self) -> usize {
        self.lock().waiting()
    }

    /// Transactions held for a nonce gap.
    pub fn held(&self) -> usize {
        self.lock().held
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

    /// Queues, in nonce order, the held transactions of every sender that has held some
    /// without releasing any for the gap wait, at `now`. Returns how many.
    pub fn release_overdue(&self, now: Instant) -> usize {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.held == 0 {
            return 0;
        }
        let mut released = 0;
        for state in inner.senders.values_mut() {
            if state.gap_since.is_none_or(|since| now.saturating_duration_since(since) < self.gap_wait) {
                continue;
            }
            state.gap_since = None;
            // The ready nonce stays at the gap: the released transactions are doomed unless
            // the gap fills elsewhere first, and the sender's later ones (a client filling the
            // gap, then re-signing what follows) must still be batched in nonce order.
            for tx in std::mem::take(&mut state.held).into_values() {
                inner.queue.push_back(tx);
                released += 1;
            }
        }
        inner.held -= released;
        released
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

    /// Forgets executed (or otherwise final) transactions. `nonces` holds, for senders
    /// whose account nonce the same block advanced, the account's next nonce: their held
    /// transactions that are no longer ahead of it are queued.
    pub fn finalized(&self, hashes: &[Digest], nonces: &[(Address, u64)]) {
        let mut inner = self.lock();
        for hash in hashes {
            forget(&mut inner, hash);
        }
        if inner.executed_nonces.len() + nonces.len() > self.capacity.max(MIN_EXECUTED_NONCES) {
            inner.executed_nonces.clear();
        }
        for (sender, next) in nonces {
            let known = inner.executed_nonces.entry(*sender).or_insert(0);
            *known = (*known).max(*next);
            let Some(state) = inner.senders.get_mut(sender) else { continue };
            state.ready_nonce = state.ready_nonce.max(*next);
            if !state.held.is_empty() {
                inner.release_ready(sender);
            }
        }
    }
}

fn forget(inner: &mut Inner, hash: &Digest) {
    let Some((location, sender)) = inner.known.remove(hash) else { return };
    let Some(state) = inner.senders.get_mut(&sender) else { return };
    if location == TxLocation::Queued {
        let held = state.held.iter().find(|(_, tx)| tx.hash == *hash).map(|(key, _)| *key);
        match held {
            Some(key) => {
                state.held.remove(&key);
                inner.held -= 1;
                if state.held.is_empty() {
                    state.gap_since = None;
                }
            }
            None => inner.queue.retain(|tx| tx.hash != *hash),
        }
    }
    state.pending = state.pending.saturating_sub(1);
    if state.pending == 0 {
        inner.senders.remove(&sender);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

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
        let pool = Mempool::new(2, 10, WAIT);
        assert_eq!(pool.insert(tx(1, 1, 0), 0), Ok(true));
        assert_eq!(pool.insert(tx(1, 1, 0), 0), Ok(false), "same hash is a duplicate, not an error");
        assert_eq!(pool.insert(tx(2, 1, 1), 0), Ok(true));
        assert_eq!(pool.insert(tx(3, 1, 2), 0), Err(MempoolError::Full(2)));
        assert_eq!(pool.check_room(), Err(MempoolError::Full(2)));
        pool.take(1, 1 << 20);
        assert_eq!(pool.check_room(), Ok(()), "taking into a batch makes room");
        assert_eq!(pool.pending_next_nonce(&Address([1; 32])), Some(2));
    }

    #[test]
    fn limits_each_sender() {
        let pool = Mempool::new(10, 2, WAIT);
        pool.insert(tx(1, 7, 0), 0).unwrap();
        pool.insert(tx(2, 7, 1), 0).unwrap();
        assert!(matches!(pool.insert(tx(3, 7, 2), 0), Err(MempoolError::SenderFull(_, 2))));
        assert_eq!(pool.insert(tx(4, 8, 0), 0), Ok(true), "other senders are unaffected");
    }

    #[test]
    fn batching_and_finalizing_release_capacity() {
        let pool = Mempool::new(3, 3, WAIT);
        for i in 0..3 {
            pool.insert(tx(i, 1, u64::from(i)), 0).unwrap();
        }
        let taken = pool.take(2, 1 << 20);
        assert_eq!(taken.len(), 2);
        assert_eq!(pool.queued(), 1);
        let hashes: Vec<Digest> = taken.iter().map(|t| t.hash).collect();
        pool.mark_batched(Digest([9; 32]), &hashes);
        assert_eq!(pool.location(&hashes[0]), Some(TxLocation::InBatch(Digest([9; 32]))));
        assert!(pool.insert(tx(5, 1, 3), 0).is_err(), "sender still has 3 unexecuted");
        pool.finalized(&hashes, &[]);
        assert_eq!(pool.location(&hashes[0]), None);
        assert_eq!(pool.insert(tx(5, 1, 3), 0), Ok(true));
    }

    #[test]
    fn take_respects_the_byte_budget() {
        let pool = Mempool::new(10, 10, WAIT);
        for i in 0..5 {
            pool.insert(tx(i, i, 0), 0).unwrap();
        }
        assert_eq!(pool.take(10, 25).len(), 2, "10-byte transactions, 25-byte budget");
        assert_eq!(pool.take(10, 1).len(), 1, "always at least one");
    }

    fn nonces(pool: &Mempool) -> Vec<u64> {
        pool.take(usize::MAX, usize::MAX).iter().map(|t| t.nonce).collect()
    }

    #[test]
    fn a_sender_is_batched_in_nonce_order_whatever_the_arrival_order() {
        let pool = Mempool::new(100, 100, WAIT);
        for (i, nonce) in [(1, 3), (2, 1), (3, 0), (4, 4), (5, 2)] {
            assert_eq!(pool.insert(tx(i, 1, nonce), 0), Ok(true));
        }
        assert_eq!(nonces(&pool), vec![0, 1, 2, 3, 4]);
        assert_eq!(pool.held(), 0);
    }

    #[test]
    fn a_gap_holds_later_nonces_but_not_other_senders() {
        let pool = Mempool::new(100, 100, WAIT);
        pool.insert(tx(1, 1, 5), 5).unwrap();
        pool.insert(tx(2, 1, 7), 5).unwrap();
        pool.insert(tx(3, 2, 0), 0).unwrap();
        assert_eq!(pool.queued(), 3, "held transactions count as waiting");
        assert_eq!(pool.held(), 1);
        assert_eq!(pool.location(&Digest([2; 32])), Some(TxLocation::Queued));
        assert_eq!(nonces(&pool), vec![5, 0], "nonce 7 waits for 6");
        pool.insert(tx(4, 1, 6), 5).unwrap();
        assert_eq!(nonces(&pool), vec![6, 7]);
    }

    #[test]
    fn execution_elsewhere_fills_a_gap() {
        // Nonce 0 went through another validator; its execution releases nonce 1 here.
        let pool = Mempool::new(100, 100, WAIT);
        pool.insert(tx(1, 1, 1), 0).unwrap();
        assert!(nonces(&pool).is_empty());
        pool.finalized(&[], &[(Address([2; 32]), 1)]);
        assert!(nonces(&pool).is_empty(), "another sender's nonce changes nothing");
        pool.finalized(&[], &[(Address([1; 32]), 1)]);
        assert_eq!(nonces(&pool), vec![1]);
    }

    #[test]
    fn a_gap_left_open_past_the_wait_releases_in_nonce_order() {
        let pool = Mempool::new(100, 100, WAIT);
        pool.insert(tx(1, 1, 9), 0).unwrap();
        pool.insert(tx(2, 1, 4), 0).unwrap();
        let now = Instant::now();
        assert_eq!(pool.release_overdue(now), 0);
        assert_eq!(pool.release_overdue(now + WAIT), 2);
        assert_eq!(pool.held(), 0);
        assert_eq!(nonces(&pool), vec![4, 9], "execution rejects them, so the client gets receipts");
        pool.insert(tx(3, 1, 10), 0).unwrap();
        assert!(nonces(&pool).is_empty(), "a later nonce waits for the gap again");
        assert_eq!(pool.held(), 1);
    }

    #[test]
    fn after_a_gap_is_released_the_sender_is_still_batched_in_nonce_order() {
        let pool = Mempool::new(100, 100, WAIT);
        pool.insert(tx(1, 1, 1), 0).unwrap();
        pool.insert(tx(2, 1, 2), 0).unwrap();
        assert_eq!(pool.release_overdue(Instant::now() + WAIT), 2);
        assert_eq!(nonces(&pool), vec![1, 2], "released: execution will reject them");
        // The client fills the gap and re-signs what followed; the re-signed nonce 1 arrives
        // first, while the doomed batch is still pending.
        pool.insert(tx(3, 1, 1), 0).unwrap();
        pool.insert(tx(4, 1, 0), 0).unwrap();
        assert_eq!(nonces(&pool), vec![0, 1], "nonce 0 is batched before the re-signed nonce 1");
    }

    #[test]
    fn finalizing_a_held_transaction_forgets_it() {
        let pool = Mempool::new(100, 100, WAIT);
        pool.insert(tx(1, 1, 3), 0).unwrap();
        pool.finalized(&[Digest([1; 32])], &[]);
        assert_eq!((pool.queued(), pool.held()), (0, 0));
        assert_eq!(pool.location(&Digest([1; 32])), None);
        assert_eq!(pool.pending_next_nonce(&Address([1; 32])), None);
    }

    #[test]
    fn held_transactions_fill_the_pool() {
        let pool = Mempool::new(2, 10, WAIT);
        pool.insert(tx(1, 1, 1), 0).unwrap();
        pool.insert(tx(2, 1, 2), 0).unwrap();
        assert_eq!(pool.insert(tx(3, 2, 0), 0), Err(MempoolError::Full(2)));
    }

    #[test]
    fn two_transactions_with_one_nonce_are_both_kept() {
        let pool = Mempool::new(10, 10, WAIT);
        pool.insert(tx(1, 1, 1), 0).unwrap();
        pool.insert(tx(2, 1, 1), 0).unwrap();
        pool.insert(tx(3, 1, 0), 0).unwrap();
        assert_eq!(nonces(&pool), vec![0, 1, 1], "the second nonce 1 is for execution to reject");
    }

    #[test]
    fn the_transaction_that_fills_a_gap_is_admitted_into_a_full_pool() {
        let pool = Mempool::new(3, 3, WAIT);
        pool.insert(tx(1, 1, 1), 0).unwrap();
        pool.insert(tx(2, 1, 2), 0).unwrap();
        pool.insert(tx(3, 2, 0), 0).unwrap();
        assert_eq!(pool.insert(tx(4, 3, 0), 0), Err(MempoolError::Full(3)));
        assert_eq!(pool.insert(tx(5, 1, 3), 0), Err(MempoolError::Full(3)), "not the missing nonce");
        assert_eq!(pool.insert(tx(6, 1, 0), 0), Ok(true), "nonce 0 releases 1 and 2");
        assert_eq!(nonces(&pool), vec![0, 0, 1, 2]);
    }

    #[test]
    fn the_transaction_that_fills_a_gap_is_admitted_past_the_sender_limit() {
        let pool = Mempool::new(10, 2, WAIT);
        pool.insert(tx(1, 1, 1), 0).unwrap();
        pool.insert(tx(2, 1, 2), 0).unwrap();
        assert!(matches!(pool.insert(tx(3, 1, 3), 0), Err(MempoolError::TooFarAhead(_, 3, 0, 2))));
        assert_eq!(pool.insert(tx(4, 1, 0), 0), Ok(true));
        assert!(
            matches!(pool.insert(tx(5, 1, 3), 0), Err(MempoolError::SenderFull(_, 3))),
            "with no gap left the limit applies again"
        );
    }

    #[test]
    fn an_account_read_before_a_block_executed_is_not_taken_for_a_gap() {
        // Nonce 0 executes (its sender has nothing else pending here) between admission
        // reading the account (nonce 0) and inserting nonce 1.
        let pool = Mempool::new(10, 10, WAIT);
        pool.insert(tx(1, 1, 0), 0).unwrap();
        pool.take(10, 1 << 20);
        pool.mark_batched(Digest([9; 32]), &[Digest([1; 32])]);
        pool.finalized(&[Digest([1; 32])], &[(Address([1; 32]), 1)]);
        pool.insert(tx(2, 1, 1), 0).unwrap();
        assert_eq!(pool.held(), 0);
        assert_eq!(nonces(&pool), vec![1]);
    }

    #[test]
    fn room_for_a_sender_is_known_before_verification() {
        let pool = Mempool::new(3, 2, WAIT);
        let (one, two) = (Address([1; 32]), Address([2; 32]));
        assert_eq!(pool.check_room_for(&one, 0), Ok(()));
        pool.insert(tx(1, 1, 1), 0).unwrap();
        pool.insert(tx(2, 1, 2), 0).unwrap();
        assert_eq!(pool.check_room_for(&one, 3), Err(MempoolError::TooFarAhead(one, 3, 0, 2)));
        assert_eq!(pool.check_room_for(&one, 0), Ok(()), "nonce 0 fills the gap");
        assert_eq!(pool.check_room_for(&two, 0), Ok(()));
        pool.insert(tx(3, 2, 0), 0).unwrap();
        assert_eq!(pool.check_room_for(&two, 1), Err(MempoolError::Full(3)));
        assert_eq!(pool.check_room_for(&one, 0), Ok(()), "a gap filler even into a full pool");
    }

    #[test]
    fn a_request_resending_a_gap_at_the_sender_limit_passes_the_screen_whole() {
        // Nonces 0 and 1 wait and 5, 6 are held: the sender's limit of 4. The missing 2..5
        // come back in one request.
        let pool = Mempool::new(100, 4, WAIT);
        let (one, two) = (Address([1; 32]), Address([2; 32]));
        for (i, nonce) in [0, 1, 5, 6].into_iter().enumerate() {
            pool.insert(tx(i as u8 + 1, 1, nonce), 0).unwrap();
        }
        let request = [Some((one, 2)), Some((one, 3)), Some((two, 0)), Some((one, 4)), Some((one, 7)), None];
        let screened = pool.check_room_for_all(&request);
        assert_eq!(screened[..4], [Ok(()), Ok(()), Ok(()), Ok(())], "the gap in one request: {screened:?}");
        assert!(screened[4].is_err(), "past the gap the limit holds: {screened:?}");
        assert_eq!(screened[5], Ok(()), "an undecodable one only needs room");
        assert_eq!(pool.check_room_for(&one, 3), Err(MempoolError::SenderFull(one, 4)), "3 alone, before 2");
        // Inserted in order, they are admitted just as screened, and the gap is closed.
        for (i, nonce) in (2..5).enumerate() {
            assert_eq!(pool.insert(tx(i as u8 + 10, 1, nonce), 0), Ok(true), "nonce {nonce}");
        }
        assert_eq!(pool.held(), 0);
        assert_eq!(nonces(&pool), vec![0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn a_nonce_further_ahead_than_the_sender_limit_is_refused_so_the_gap_below_it_can_fill() {
        // Nonces 0..3 execute; 3.. were refused meanwhile (the sender was at its limit), and
        // the client sends later nonces before its retries of 3.. come round.
        let pool = Mempool::new(100, 3, WAIT);
        let sender = Address([1; 32]);
        for n in 0..3u8 {
            pool.insert(tx(n + 1, 1, u64::from(n)), 0).unwrap();
        }
        pool.take(10, 1 << 20);
        pool.finalized(&[Digest([1; 32]), Digest([2; 32]), Digest([3; 32])], &[(sender, 3)]);
        for nonce in [7, 8, 9] {
            assert_eq!(
                pool.insert(tx(nonce as u8 + 10, 1, nonce), 3),
                Err(MempoolError::TooFarAhead(sender, nonce, 3, 3)),
                "held, {nonce} would fill the sender's share with what 3..6 cannot release"
            );
        }
        assert_eq!(pool.insert(tx(16, 1, 6), 3), Ok(true), "within the limit: held");
        assert_eq!(pool.check_room_for(&sender, 7), Err(MempoolError::TooFarAhead(sender, 7, 3, 3)));
        for nonce in 3..6u64 {
            assert_eq!(pool.insert(tx(nonce as u8 + 10, 1, nonce), 3), Ok(true), "nonce {nonce}");
        }
        assert_eq!(pool.held(), 0);
        assert_eq!(nonces(&pool), vec![3, 4, 5, 6]);
    }

    #[test]
    fn releasing_part_of_a_gap_restarts_the_wait() {
        let pool = Mempool::new(10, 10, WAIT);
        pool.insert(tx(1, 1, 1), 0).unwrap();
        pool.insert(tx(3, 1, 3), 0).unwrap();
        let first_held = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        pool.insert(tx(2, 1, 0), 0).unwrap();
        assert_eq!(nonces(&pool), vec![0, 1], "nonce 3 still waits for 2");
        assert_eq!(pool.release_overdue(first_held + WAIT + Duration::from_millis(10)), 0);
        assert_eq!(pool.release_overdue(Instant::now() + WAIT), 1);
        assert_eq!(nonces(&pool), vec![3]);
    }

    #[test]
    fn fillers_pass_a_full_pool_only_within_hard_bounds() {
        // Sender 1 has no gap: its next nonce gets no exemption.
        let pool = Mempool::new(4, 10, WAIT);
        pool.insert(tx(1, 1, 0), 0).unwrap();
        pool.insert(tx(2, 5, 5), 0).unwrap();
        for i in 0..2 {
            pool.insert(tx(3 + i, 2, u64::from(i)), 0).unwrap();
        }
        assert_eq!(pool.insert(tx(9, 1, 1), 0), Err(MempoolError::Full(4)));
        assert_eq!(pool.check_room_for(&Address([1; 32]), 1), Err(MempoolError::Full(4)));
        // Nonce 5 of sender 5 is within reach: 0..4 fill its gap, up to 5 waiting (4 + 1).
        assert_eq!(pool.check_room_for(&Address([5; 32]), 0), Ok(()));
        assert_eq!(pool.insert(tx(10, 5, 0), 0), Ok(true));
        assert_eq!(pool.insert(tx(11, 5, 1), 0), Err(MempoolError::Full(5)), "the hard bound");
        assert_eq!(pool.check_room_for(&Address([5; 32]), 1), Err(MempoolError::Full(5)));
    }

    #[test]
    fn held_transactions_take_at_most_three_quarters_of_the_pool() {
        let pool = Mempool::new(8, 10, WAIT);
        for i in 0..6 {
            pool.insert(tx(i, 1, 4 + u64::from(i)), 0).unwrap();
        }
        assert_eq!(pool.held(), 6);
        assert_eq!(pool.insert(tx(20, 2, 5), 0), Err(MempoolError::Full(6)), "another gap is refused");
        assert_eq!(pool.insert(tx(21, 2, 0), 0), Ok(true), "a batchable transaction still fits");
        assert_eq!(pool.insert(tx(22, 3, 0), 0), Ok(true));
        assert_eq!(pool.insert(tx(23, 4, 0), 0), Err(MempoolError::Full(8)));
    }
}
