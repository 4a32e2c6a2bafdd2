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
//! Recording is ordered: height `h` follows `h - 1` (the first recorded height is free);
//! recording a height again is accepted only with the identical outcome. A transaction
//! hash that occurs twice on the chain (the second occurrence is rejected for its nonce)
//! keeps the index entry and receipt of its first occurrence: a `rejected` receipt never
//! replaces an existing one.

use std::collections::HashSet;

use bastion_crypto::Digest;
use bastion_ledger::{receipts_root, BlockOutcome, Receipt, ReceiptStatus};
use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use super::{cf, encode, lock, Storage, StorageError};

pub(super) const EXECUTED_KEY: &[u8] = b"executed_height";

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
        self.add_execution(&mut batch, height, (state_root, receipts_root), receipts, tx_hashes)?;
        self.write(batch, true, "execution record")
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
        self.get_decoded(cf::TX_INDEX, tx_hash.as_bytes(), "transaction index")
    }

    /// For each hash, whether it has been executed (in consensus-only mode: ordered).
    pub fn executed_among(&self, tx_hashes: &[Digest]) -> Result<Vec<bool>, StorageError> {
        let keys: Vec<&[u8]> = tx_hashes.iter().map(|h| &h.as_bytes()[..]).collect();
        self.contains_many(cf::TX_INDEX, &keys)
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
        let (mut indexed, mut rejected) = (Vec::new(), Vec::new());
        for (hash, &below) in tx_hashes.iter().zip(below_next) {
            if below {
                indexed.push(&hash.as_bytes()[..])
            } else {
                rejected.push(&hash.as_bytes()[..])
            }
        }
        let mut indexed = self.contains_many(cf::TX_INDEX, &indexed)?.into_iter();
        let mut rejected = self.contains_many(cf::REJECTED_TXS, &rejected)?.into_iter();
        Ok(below_next
            .iter()
            .map(|&below| if below { indexed.next() } else { rejected.next() }.unwrap_or(false))
            .collect())
    }

    /// [`Storage::recorded_among`] for one transaction.
    pub fn recorded(&self, tx_hash: &Digest, below_next: bool) -> Result<bool, StorageError> {
        let cf = if below_next { cf::TX_INDEX } else { cf::REJECTED_TXS };
        self.contains(cf, tx_hash.as_bytes())
    }

    /// The height at which a transaction was executed (also in consensus-only mode).
    pub fn tx_height(&self, tx_hash: &Digest) -> Result<Option<u64>, StorageError> {
        Ok(self.tx_location(tx_hash)?.map(|location| location.height))
    }

    /// Writes the staged outcome of `version`, if there is one, into `batch`.
    pub(super) fn add_staged_execution(
        &self,
        batch: &mut WriteBatch,
        version: u64,
    ) -> Result<(), StorageError> {
        let Some(staged) = lock(&self.inner.staged).take() else { return Ok(()) };
        if staged.height != version {
            tracing::warn!(
                staged = staged.height,
                version,
                "discarding an execution staged for another height"
            );
            return Ok(());
        }
        let tx_hashes: Vec<Digest> = staged.receipts.iter().map(|r| r.tx_hash).collect();
        let roots = (staged.state_root, staged.receipts_root);
        self.add_execution(batch, version, roots, &staged.receipts, &tx_hashes)
    }

    /// Adds the writes that record one height, with its (state root, receipts root), to
    /// `batch`. The caller holds the execution lock.
    fn add_execution(
        &self,
        batch: &mut WriteBatch,
        height: u64,
        (state_root, receipts_root): (Digest, Digest),
        receipts: &[Receipt],
        tx_hashes: &[Digest],
    ) -> Result<(), StorageError> {
        let refuse = |detail: String| StorageError::Refused { what: "execution record", detail };
        check_receipts(height, receipts, tx_hashes).map_err(refuse)?;
        let record = ExecutionRecord { height, state_root, receipts_root, tx_hashes: tx_hashes.to_vec() };
        if let Some(executed) = self.executed_height()? {
            if height <= executed {
                return match self.execution(height)? {
                    Some(stored) if stored == record => Ok(()),
                    _ => Err(refuse(format!("height {height} is already recorded with another outcome"))),
                };
            }
            if height != executed + 1 {
                return Err(refuse(format!("height {height} does not follow executed height {executed}")));
            }
        }
        let mut written = HashSet::new();
        let mut entries = Vec::with_capacity(tx_hashes.len());
        for (index, tx_hash) in tx_hashes.iter().enumerate() {
            let receipt = receipts.get(index);
            let rejected = receipt.is_some_and(|r| matches!(r.status, ReceiptStatus::Rejected { .. }));
            if rejected && (written.contains(tx_hash) || self.contains(cf::TX_INDEX, tx_hash.as_bytes())?) {
                continue;
            }
            written.insert(*tx_hash);
            let index = u32::try_from(index).map_err(|_| refuse("more than 2^32 transactions".into()))?;
            entries.push((tx_hash, TxLocation { height, index }, receipt, rejected));
        }
        // Receipts go by position, already in key order. Hashes are random keys: inserted in
        // key order, each lands next to the one before in RocksDB's memtable skip list
        // instead of searching it from the top (a stable sort keeps the last write of a
        // repeated hash last).
        for (_, location, receipt, _) in &entries {
            if let Some(receipt) = receipt {
                batch.put_cf(self.cf(cf::RECEIPTS)?, location.key(), encode("receipt", receipt)?);
            }
        }
        entries.sort_by_key(|(tx_hash, _, _, _)| *tx_hash);
        for (tx_hash, location, _, rejected) in &entries {
            batch.put_cf(self.cf(cf::TX_INDEX)?, tx_hash.as_bytes(), encode("transaction index", location)?);
            if *rejected {
                batch.put_cf(self.cf(cf::REJECTED_TXS)?, tx_hash.as_bytes(), []);
            }
        }
        batch.put_cf(self.cf(cf::HEIGHTS)?, height.to_be_bytes(), encode("execution record", &record)?);
        batch.put_cf(self.cf(cf::META)?, EXECUTED_KEY, height.to_be_bytes());
        Ok(())
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
