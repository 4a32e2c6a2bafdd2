//! Execution results: receipts by transaction hash, where each transaction landed, and one
//! [`ExecutionRecord`] per executed height, with the executed-height marker.
//!
//! There are two ways to write a block's results, both atomic and synced:
//! * **Separate**: [`Storage::record_execution`] after `Executor::apply_block`. A crash
//!   between the two leaves the state tree one version ahead of the executed-height marker;
//!   [`Storage::open`] repairs that by moving the tree's latest version back to the marker
//!   (see `RocksStateStore`), so `Executor::open` resumes at the executed height and the
//!   block is executed again. That rewrites the very same nodes and values, because
//!   execution is deterministic and every tree write is keyed by its version: same root.
//! * **Staged**: [`Storage::stage_execution`] right before the executor writes the block's
//!   state; the state version, receipts and marker then go to disk in *one* write and there
//!   is never anything to repair:
//!   ```text
//!   let executed = executor.execute_block(height, &txs)?;
//!   storage.stage_execution(executed.outcome());
//!   let outcome = executor.commit(executed)?;
//!   ```
//!
//! In consensus-only mode there are no receipts: `tx_hashes` alone are indexed, so
//! [`Storage::tx_height`] still answers.
//!
//! The transaction index (hash → height and position) is written in bulk. Its keys are
//! random, and inserting a block's worth of them into RocksDB's memtable skip list searched
//! it from the top for each key: a fifth of a validator's CPU at 40,000 opaque transactions
//! a second. A recorded height's entries are held in memory instead (every lookup consults
//! them first) until [`INDEX_FLUSH_ENTRIES`] have gathered or [`INDEX_FLUSH_HEIGHTS`]
//! heights have passed; then one sorted write puts them in `tx_index` together with the
//! `indexed_height` marker, each key landing next to the one before. Nothing is lost in a crash: the execution records are synced, and
//! [`Storage::open`] rebuilds the entries of the heights above the marker from them.
//!
//! Recording is ordered: height `h` follows `h - 1` (the first recorded height is free);
//! recording a height again is accepted only with the identical outcome. A transaction
//! hash that occurs twice on the chain (the second occurrence is rejected for its nonce)
//! keeps the index entry and receipt of its first occurrence: a `rejected` receipt never
//! replaces an existing one.

use std::collections::HashSet;

use bastion_crypto::{Digest, DigestMap, DigestSet};
use bastion_ledger::{receipts_root, BlockOutcome, Receipt, ReceiptStatus};
use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use super::{cf, encode, lock, u64_from, Storage, StorageError};

pub(super) const EXECUTED_KEY: &[u8] = b"executed_height";
/// Every height up to this one has its transaction index entries in `tx_index` (schema 4).
pub(super) const INDEXED_KEY: &[u8] = b"indexed_height";
/// Index entries held in memory before one sorted write moves them to `tx_index`: about
/// 3 MiB, and large enough that consecutive keys of the write are near neighbours in the
/// memtable (a sorted write of 2,000 random keys cost 2.3 times as much per key).
pub const INDEX_FLUSH_ENTRIES: usize = 32_768;
/// Recorded heights after which the entries are written however few they are, so that an
/// idle chain (empty blocks) does not leave ever more heights for the next open to reread.
pub const INDEX_FLUSH_HEIGHTS: u64 = 10_000;

/// Transaction index entries of recorded heights that are not in `tx_index` yet.
#[derive(Default)]
pub(super) struct Unindexed {
    entries: DigestMap<TxLocation>,
    /// Heights recorded since `indexed_height` moved (or since the first, before it did).
    heights: u64,
}

impl Unindexed {
    /// Whether it is time to move the entries to `tx_index`.
    fn full(&self) -> bool {
        self.entries.len() >= INDEX_FLUSH_ENTRIES || self.heights >= INDEX_FLUSH_HEIGHTS
    }
}

/// What executing one height produced, besides the receipts themselves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub height: u64,
    pub state_root: Digest,
    pub receipts_root: Digest,
    /// The block's transactions, in execution order.
    pub tx_hashes: Vec<Digest>,
}

/// Where a transaction's receipt comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLocation {
    pub height: u64,
    pub index: u32,
}

impl TxLocation {
    /// The receipt's key: height ‖ index, big-endian, so keys sort by position.
    fn key(&self) -> [u8; 12] {
        let mut key = [0u8; 12];
        key[..8].copy_from_slice(&self.height.to_be_bytes());
        key[8..].copy_from_slice(&self.index.to_be_bytes());
        key
    }
}

impl Storage {
    /// Writes the results of executing `height` in one synced write: the receipts (empty in
    /// consensus-only mode, else one per transaction, in order), the transaction index for
    /// `tx_hashes`, the [`ExecutionRecord`] and the executed-height marker.
    pub fn record_execution(
        &self,
        height: u64,
        state_root: Digest,
        receipts: &[Receipt],
        tx_hashes: &[Digest],
    ) -> Result<(), StorageError> {
        let _guard = lock(&self.inner.execution_lock);
        let receipts_root = receipts_root(receipts)
            .map_err(|e| StorageError::Encode { what: "receipts", detail: e.to_string() })?;
        let mut batch = WriteBatch::default();
        let entries =
            self.add_execution(&mut batch, height, (state_root, receipts_root), receipts, tx_hashes)?;
        self.write(batch, true, "execution record")?;
        match entries {
            Some(entries) => self.index_recorded(entries),
            None => Ok(()),
        }
    }

    /// Holds `outcome` until the state of its height is committed through
    /// [`super::RocksStateStore`], which then writes both together. Replaces anything staged
    /// before; an outcome staged for another version than the one committed is discarded.
    pub fn stage_execution(&self, outcome: &BlockOutcome) {
        *lock(&self.inner.staged) = Some(outcome.clone());
    }

    /// The highest height whose results are recorded.
    pub fn executed_height(&self) -> Result<Option<u64>, StorageError> {
        self.get_u64(cf::META, EXECUTED_KEY, "executed height")
    }

    pub fn execution(&self, height: u64) -> Result<Option<ExecutionRecord>, StorageError> {
        self.get_decoded(cf::HEIGHTS, &height.to_be_bytes(), "execution record")
    }

    pub fn receipt(&self, tx_hash: &Digest) -> Result<Option<Receipt>, StorageError> {
        let Some(location) = self.tx_location(tx_hash)? else { return Ok(None) };
        self.get_decoded(cf::RECEIPTS, &location.key(), "receipt")
    }

    pub fn tx_location(&self, tx_hash: &Digest) -> Result<Option<TxLocation>, StorageError> {
        // Memory first: a flush writes `tx_index` before it empties the map.
        if let Some(location) = lock(&self.inner.unindexed).entries.get(tx_hash) {
            return Ok(Some(*location));
        }
        self.get_decoded(cf::TX_INDEX, tx_hash.as_bytes(), "transaction index")
    }

    /// For each hash, whether it has been executed (in consensus-only mode: ordered).
    pub fn executed_among(&self, tx_hashes: &[Digest]) -> Result<Vec<bool>, StorageError> {
        self.indexed_among(tx_hashes.iter())
    }

    /// Whether each hash has a transaction index entry, in memory or in `tx_index` (one
    /// MultiGet for the hashes not in memory).
    fn indexed_among<'a>(
        &self,
        tx_hashes: impl Iterator<Item = &'a Digest>,
    ) -> Result<Vec<bool>, StorageError> {
        let mut found = Vec::new();
        let mut stored = Vec::new();
        {
            let unindexed = lock(&self.inner.unindexed);
            for hash in tx_hashes {
                let in_memory = unindexed.entries.contains_key(hash);
                if !in_memory {
                    stored.push(&hash.as_bytes()[..]);
                }
                found.push(in_memory);
            }
        }
        let mut on_disk = self.contains_many(cf::TX_INDEX, &stored)?.into_iter();
        for found in found.iter_mut().filter(|found| !**found) {
            *found = on_disk.next().unwrap_or(false);
        }
        Ok(found)
    }

    fn indexed(&self, tx_hash: &Digest) -> Result<bool, StorageError> {
        Ok(self.tx_location(tx_hash)?.is_some())
    }

    /// For each signed transaction, whether it has a receipt already, given whether its
    /// nonce is below its sender's next nonce (`below_next[i]`, as of the executed height).
    /// A transaction that executed advanced its sender's nonce past its own, and nonces
    /// only grow, so one at or above the next nonce can at most have been rejected: it is
    /// looked up among the rejections. Only the others (replays and duplicates, rare) read
    /// the transaction index, whose reads and compactions grow with the chain.
    pub fn recorded_among(
        &self,
        tx_hashes: &[Digest],
        below_next: &[bool],
    ) -> Result<Vec<bool>, StorageError> {
        if tx_hashes.len() != below_next.len() {
            return Err(StorageError::Refused {
                what: "receipt lookup",
                detail: format!("{} hashes with {} nonce verdicts", tx_hashes.len(), below_next.len()),
            });
        }
        let pairs = || tx_hashes.iter().zip(below_next);
        let mut indexed =
            self.indexed_among(pairs().filter(|(_, below)| **below).map(|(hash, _)| hash))?.into_iter();
        let rejected: Vec<&[u8]> =
            pairs().filter(|(_, below)| !**below).map(|(hash, _)| &hash.as_bytes()[..]).collect();
        let mut rejected = self.contains_many(cf::REJECTED_TXS, &rejected)?.into_iter();
        Ok(below_next
            .iter()
            .map(|&below| if below { indexed.next() } else { rejected.next() }.unwrap_or(false))
            .collect())
    }

    /// [`Storage::recorded_among`] for one transaction.
    pub fn recorded(&self, tx_hash: &Digest, below_next: bool) -> Result<bool, StorageError> {
        if below_next {
            self.indexed(tx_hash)
        } else {
            self.contains(cf::REJECTED_TXS, tx_hash.as_bytes())
        }
    }

    /// The height at which a transaction was executed (also in consensus-only mode).
    pub fn tx_height(&self, tx_hash: &Digest) -> Result<Option<u64>, StorageError> {
        Ok(self.tx_location(tx_hash)?.map(|location| location.height))
    }

    /// Writes the staged outcome of `version`, if there is one, into `batch`. Returns its
    /// transaction index entries, for [`Storage::index_recorded`] once `batch` is written
    /// (`None`: nothing recorded).
    pub(super) fn add_staged_execution(
        &self,
        batch: &mut WriteBatch,
        version: u64,
    ) -> Result<Option<Vec<(Digest, TxLocation)>>, StorageError> {
        let Some(staged) = lock(&self.inner.staged).take() else { return Ok(None) };
        if staged.height != version {
            tracing::warn!(
                staged = staged.height,
                version,
                "discarding an execution staged for another height"
            );
            return Ok(None);
        }
        let tx_hashes: Vec<Digest> = staged.receipts.iter().map(|r| r.tx_hash).collect();
        let roots = (staged.state_root, staged.receipts_root);
        self.add_execution(batch, version, roots, &staged.receipts, &tx_hashes)
    }

    /// Adds the writes that record one height, with its (state root, receipts root), to
    /// `batch`, and returns the height's transaction index entries, which the caller hands
    /// to [`Storage::index_recorded`] once `batch` is written (`None`: the height is
    /// recorded already, with this very outcome). The caller holds the execution lock.
    fn add_execution(
        &self,
        batch: &mut WriteBatch,
        height: u64,
        (state_root, receipts_root): (Digest, Digest),
        receipts: &[Receipt],
        tx_hashes: &[Digest],
    ) -> Result<Option<Vec<(Digest, TxLocation)>>, StorageError> {
        let refuse = |detail: String| StorageError::Refused { what: "execution record", detail };
        check_receipts(height, receipts, tx_hashes).map_err(refuse)?;
        let record = ExecutionRecord { height, state_root, receipts_root, tx_hashes: tx_hashes.to_vec() };
        if let Some(executed) = self.executed_height()? {
            if height <= executed {
                return match self.execution(height)? {
                    Some(stored) if stored == record => Ok(None),
                    _ => Err(refuse(format!("height {height} is already recorded with another outcome"))),
                };
            }
            if height != executed + 1 {
                return Err(refuse(format!("height {height} does not follow executed height {executed}")));
            }
        }
        // Each hash is indexed once per height, at its first position. A rejected transaction
        // whose hash is indexed already keeps that entry and gets no receipt; an executed one
        // always gets both. Without receipts (consensus-only) execution passes only hashes
        // no earlier height ordered.
        let mut written = DigestSet::default();
        let mut entries = Vec::with_capacity(tx_hashes.len());
        for (index, tx_hash) in tx_hashes.iter().enumerate() {
            let receipt = receipts.get(index);
            let rejected = receipt.is_some_and(|r| matches!(r.status, ReceiptStatus::Rejected { .. }));
            if !written.insert(*tx_hash) && (rejected || receipt.is_none()) {
                continue;
            }
            if rejected && self.indexed(tx_hash)? {
                continue;
            }
            let index = u32::try_from(index).map_err(|_| refuse("more than 2^32 transactions".into()))?;
            let location = TxLocation { height, index };
            if let Some(receipt) = receipt {
                batch.put_cf(self.cf(cf::RECEIPTS)?, location.key(), encode("receipt", receipt)?);
                if rejected {
                    batch.put_cf(self.cf(cf::REJECTED_TXS)?, tx_hash.as_bytes(), []);
                }
            }
            entries.push((*tx_hash, location));
        }
        batch.put_cf(self.cf(cf::HEIGHTS)?, height.to_be_bytes(), encode("execution record", &record)?);
        batch.put_cf(self.cf(cf::META)?, EXECUTED_KEY, height.to_be_bytes());
        Ok(Some(entries))
    }

    /// Adds the index entries of a height just recorded to those held in memory, and moves
    /// them all to `tx_index` once there are [`INDEX_FLUSH_ENTRIES`] of them or
    /// [`INDEX_FLUSH_HEIGHTS`] heights. The caller holds the execution lock.
    pub(super) fn index_recorded(&self, entries: Vec<(Digest, TxLocation)>) -> Result<(), StorageError> {
        let full = {
            let mut unindexed = lock(&self.inner.unindexed);
            unindexed.entries.extend(entries);
            unindexed.heights += 1;
            unindexed.full()
        };
        if full {
            self.flush_index()?;
        }
        Ok(())
    }

    /// Writes the index entries held in memory to `tx_index`, sorted, with `indexed_height`
    /// = the executed height (every entry in memory belongs to a recorded height), then
    /// forgets them. Not synced: the marker goes in the same write, and a later synced write
    /// syncs both. The caller holds the execution lock.
    pub(super) fn flush_index(&self) -> Result<(), StorageError> {
        let Some(through) = self.executed_height()? else { return Ok(()) };
        let mut sorted: Vec<(Digest, TxLocation)> =
            lock(&self.inner.unindexed).entries.iter().map(|(hash, location)| (*hash, *location)).collect();
        sorted.sort_unstable_by_key(|(hash, _)| *hash);
        let mut batch = WriteBatch::with_capacity_bytes(sorted.len() * 64 + 64);
        let index = self.cf(cf::TX_INDEX)?;
        for (hash, location) in &sorted {
            batch.put_cf(index, hash.as_bytes(), encode("transaction index", location)?);
        }
        batch.put_cf(self.cf(cf::META)?, INDEXED_KEY, through.to_be_bytes());
        self.write(batch, false, "transaction index")?;
        // Emptied, not replaced: the next flush's worth of entries reuses the table instead
        // of growing one again (rehashing was 1.4 % of the machine at 50,000 tx/s).
        let mut unindexed = lock(&self.inner.unindexed);
        unindexed.entries.clear();
        unindexed.heights = 0;
        Ok(())
    }

    /// Rebuilds, at open, the index entries of the recorded heights above `indexed_height`
    /// (all of them when it is absent: nothing was flushed yet) from their execution
    /// records, choosing the positions [`Storage::add_execution`] chose.
    pub(super) fn load_unindexed(&self) -> Result<(), StorageError> {
        let _guard = lock(&self.inner.execution_lock);
        let Some(executed) = self.executed_height()? else { return Ok(()) };
        let first = match self.get_u64(cf::META, INDEXED_KEY, "indexed height")? {
            Some(indexed) => indexed.saturating_add(1),
            None => self.first_recorded_height()?.unwrap_or(executed),
        };
        let no_receipts = receipts_root(&[])
            .map_err(|e| StorageError::Encode { what: "receipts", detail: e.to_string() })?;
        for height in first..=executed {
            let record = self.execution(height)?.ok_or_else(|| StorageError::Corrupt {
                what: "execution record",
                detail: format!("height {height} is missing below executed height {executed}"),
            })?;
            // With receipts, exactly the positions whose receipt was stored were indexed;
            // without (consensus-only), the first position of each hash.
            let opaque = record.receipts_root == no_receipts;
            let with_receipt = if opaque { HashSet::new() } else { self.receipt_positions(height)? };
            let mut written = DigestSet::default();
            let mut entries = Vec::new();
            for (index, tx_hash) in record.tx_hashes.iter().enumerate() {
                let index = u32::try_from(index).map_err(|_| StorageError::Corrupt {
                    what: "execution record",
                    detail: format!("height {height} lists more than 2^32 transactions"),
                })?;
                let indexed = if opaque { written.insert(*tx_hash) } else { with_receipt.contains(&index) };
                if indexed {
                    entries.push((*tx_hash, TxLocation { height, index }));
                }
            }
            lock(&self.inner.unindexed).entries.extend(entries);
        }
        // Flushed only now: the marker it writes is the executed height.
        let full = {
            let mut unindexed = lock(&self.inner.unindexed);
            unindexed.heights = (executed + 1).saturating_sub(first);
            unindexed.full()
        };
        if full {
            self.flush_index()?;
        }
        Ok(())
    }

    fn first_recorded_height(&self) -> Result<Option<u64>, StorageError> {
        let mut first = None;
        self.scan(cf::HEIGHTS, &[], |key, _| {
            first = Some(u64_from("executed height", key)?);
            Ok(false)
        })?;
        Ok(first)
    }

    /// The positions of `height` that have a stored receipt.
    fn receipt_positions(&self, height: u64) -> Result<HashSet<u32>, StorageError> {
        let prefix = height.to_be_bytes();
        let mut positions = HashSet::new();
        self.scan(cf::RECEIPTS, &TxLocation { height, index: 0 }.key(), |key, _| {
            if !key.starts_with(&prefix) {
                return Ok(false);
            }
            let index = key.get(8..).and_then(|bytes| <[u8; 4]>::try_from(bytes).ok()).ok_or_else(|| {
                StorageError::Corrupt {
                    what: "receipt key",
                    detail: format!("{} bytes instead of 12", key.len()),
                }
            })?;
            positions.insert(u32::from_be_bytes(index));
            Ok(true)
        })?;
        Ok(positions)
    }
}

/// Receipts are either absent (consensus-only mode) or one per transaction, in order.
fn check_receipts(height: u64, receipts: &[Receipt], tx_hashes: &[Digest]) -> Result<(), String> {
    if receipts.is_empty() {
        return Ok(());
    }
    if receipts.len() != tx_hashes.len() {
        return Err(format!("{} receipts for {} transactions", receipts.len(), tx_hashes.len()));
    }
    for (index, (receipt, tx_hash)) in receipts.iter().zip(tx_hashes).enumerate() {
        if receipt.tx_hash != *tx_hash
            || receipt.height != height
            || usize::try_from(receipt.index).ok() != Some(index)
        {
            return Err(format!(
                "receipt of {} at height {} index {} does not belong to transaction {tx_hash} at height {height} \
                 index {index}",
                receipt.tx_hash, receipt.height, receipt.index
            ));
        }
    }
    Ok(())
}
