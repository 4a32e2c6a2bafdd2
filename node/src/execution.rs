//! Executing committed blocks, in order, exactly once each.
//!
//! Runs on its own thread. For each committed block it gathers the transactions of the
//! block's batches (fetching batches it lacks; it cannot skip one without diverging), drops
//! transactions already executed (the same transaction may reach several validators and so
//! several batches), applies the rest to the ledger and records state root and receipts in
//! one synced write. Signatures are checked once per validator: at admission for its own
//! batches, by the [verifier](crate::verifier) behind consensus for peers' batches, and the
//! verified batch waits in a cache (execution waits for one still being verified). Only a
//! batch that is not there (reloaded from disk after a restart) is checked here, in one
//! batch verification. Transactions that fail the check (a faulty author's) are left out
//! on every validator alike. A batch that an earlier
//! height already ordered (a faulty leader named it again) is skipped: everything in it was
//! executed then.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bastion_consensus::Block;
use bastion_crypto::{Digest, DigestSet};
use bastion_ledger::{Address, Executor, Receipt, ReceiptStatus, VerifiedTransaction};
use tokio::sync::mpsc;

use crate::batch::Batch;
use crate::certifier::Certifier;
use crate::fetcher::BatchFetcher;
use crate::state::{CheckedBatch, NodeState};
use crate::storage::RocksStateStore;
use crate::verifier::{self, Unverified};
use crate::views::block_response;

pub struct Execution {
    pub state: Arc<NodeState>,
    pub executor: Option<Executor<RocksStateStore>>,
    pub fetcher: Arc<BatchFetcher>,
    pub certifier: Arc<Certifier>,
}

impl Execution {
    /// Executes committed blocks until the channel closes; halts the validator on failure.
    pub fn run(mut self, mut committed: mpsc::Receiver<Vec<Block>>) {
        while let Some(blocks) = committed.blocking_recv() {
            self.prefetch(&blocks);
            for block in blocks {
                if let Err(error) = self.execute(&block) {
                    self.state.halt(format!("cannot execute height {}: {error}", block.height));
                    return;
                }
            }
        }
    }

    fn execute(&mut self, block: &Block) -> Result<(), String> {
        let executed = self.state.executed();
        if block.height <= executed {
            return Ok(());
        }
        if block.height != executed + 1 {
            return Err(format!("blocks out of order: executed {executed}, got {}", block.height));
        }
        let started = Instant::now();
        // Each transaction once: the first time it appears in this block, and never if an
        // earlier height executed it.
        let mut seen = DigestSet::default();
        let mut candidates: Vec<VerifiedTransaction> = Vec::new();
        let mut candidate_hashes: Vec<Digest> = Vec::new();
        for digest in &block.payload {
            let Some(batch) = self.load_batch(digest, block)? else { continue };
            match batch {
                CheckedBatch::Verified(txs) => {
                    for tx in txs.iter().filter(|tx| seen.insert(tx.hash())) {
                        candidate_hashes.push(tx.hash());
                        candidates.push(tx.clone());
                    }
                }
                CheckedBatch::Opaque(tx_hashes) => {
                    candidate_hashes.extend(tx_hashes.iter().filter(|hash| seen.insert(**hash)));
                }
            }
        }
        let executed_before = self.executed_before(&candidates, &candidate_hashes)?;
        // `candidates` is empty in consensus-only mode, else parallel to `candidate_hashes`.
        let hashes: Vec<Digest> = candidate_hashes
            .into_iter()
            .zip(&executed_before)
            .filter(|(_, done)| !**done)
            .map(|(h, _)| h)
            .collect();
        let verified: Vec<VerifiedTransaction> = candidates
            .into_iter()
            .zip(&executed_before)
            .filter(|(_, done)| !**done)
            .map(|(tx, _)| tx)
            .collect();
        let (state_root, receipts): (Option<Digest>, Vec<Receipt>) = match self.executor.as_mut() {
            Some(executor) => {
                // State, receipts and the executed-height marker reach disk in one write.
                let executed = executor.execute_block(block.height, &verified).map_err(|e| e.to_string())?;
                self.state.storage.stage_execution(executed.outcome());
                let outcome = executor.commit(executed).map_err(|e| e.to_string())?;
                (Some(outcome.state_root), outcome.receipts)
            }
            None => {
                self.state
                    .storage
                    .record_execution(block.height, Digest::ZERO, &[], &hashes)
                    .map_err(|e| e.to_string())?;
                (None, Vec::new())
            }
        };
        // Executed (not rejected) transactions advanced their senders' nonces.
        let nonces: Vec<(Address, u64)> = verified
            .iter()
            .zip(&receipts)
            .filter(|(_, receipt)| !matches!(receipt.status, ReceiptStatus::Rejected { .. }))
            .map(|(tx, _)| (tx.sender(), tx.tx().nonce.saturating_add(1)))
            .collect();
        self.state.mempool.finalized(&hashes, &nonces);
        let metrics = &self.state.metrics;
        metrics.committed_txs.inc_by(hashes.len() as u64);
        metrics.executed_height.set(block.height as i64);
        metrics.execute_block_seconds.observe(started.elapsed().as_secs_f64());
        if let Ok(mut root) = self.state.state_root.write() {
            *root = state_root;
        }
        self.state.executed_height.send_replace(block.height);
        if let Some(root) = state_root {
            self.certifier.executed(block.height, root);
        }
        let _ = self.state.blocks.send(block_response(block, state_root, &hashes, &receipts));
        Ok(())
    }

    /// For each candidate, whether an earlier height gave it a receipt. Signed transactions
    /// are judged by their senders' nonces in the state the block executes on (see
    /// `Storage::recorded_among`): the same on every validator, and all but replays and
    /// duplicates are answered without reading the transaction index. Opaque ones (no
    /// nonces; `candidates` is empty) are looked up in the index.
    fn executed_before(
        &self,
        candidates: &[VerifiedTransaction],
        hashes: &[Digest],
    ) -> Result<Vec<bool>, String> {
        let storage = &self.state.storage;
        let Some(executor) = self.executor.as_ref().filter(|_| !candidates.is_empty()) else {
            return storage.executed_among(hashes).map_err(|e| e.to_string());
        };
        let (query, height) = (executor.query(), executor.height());
        let mut next_nonces: HashMap<Address, u64> = HashMap::new();
        let mut below_next = Vec::with_capacity(candidates.len());
        for tx in candidates {
            let next = match next_nonces.entry(tx.sender()) {
                Entry::Occupied(known) => *known.get(),
                Entry::Vacant(slot) => {
                    let account = query.account(slot.key(), height).map_err(|e| e.to_string())?;
                    *slot.insert(account.nonce)
                }
            };
            below_next.push(tx.tx().nonce < next);
        }
        storage.recorded_among(hashes, &below_next).map_err(|e| e.to_string())
    }

    /// Asks peers, in one go, for every batch these blocks need that is not here: a
    /// validator catching up on many blocks would otherwise fetch them one round trip at a time.
    fn prefetch(&self, blocks: &[Block]) {
        for block in blocks {
            let missing: Vec<Digest> = block
                .payload
                .iter()
                .filter(|d| !matches!(self.state.storage.has_batch(d), Ok(true)))
                .copied()
                .collect();
            if !missing.is_empty() {
                self.fetcher.want(&missing, block.author);
            }
        }
    }

    /// A batch's transactions: from the cache of verified batches (waiting while the
    /// verifier has it), from disk (verified here), or from peers, waiting as long as it
    /// takes. `None` for a batch that an earlier height already ordered: every transaction
    /// in it was executed then, so it is neither loaded nor verified again.
    fn load_batch(&self, digest: &Digest, block: &Block) -> Result<Option<CheckedBatch>, String> {
        if let Some(checked) = self.state.take_cached_batch(digest) {
            return Ok(Some(checked));
        }
        let first_ordered = self.state.storage.batch_commit_height(digest).map_err(|e| e.to_string())?;
        if first_ordered.is_some_and(|height| height < block.height) {
            self.state.metrics.batches_ordered_again.inc();
            return Ok(None);
        }
        let author = block.author;
        let started = Instant::now();
        let mut warned = Instant::now();
        loop {
            // Read before the cache: the verifier caches a batch before it stops marking it,
            // so a batch not marked here is either cached now or not being verified at all.
            let verifying = self.state.is_verifying(digest);
            if let Some(checked) = self.state.take_cached_batch(digest) {
                return Ok(Some(checked));
            }
            if verifying {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            if let Some(bytes) = self.state.storage.batch(digest).map_err(|e| e.to_string())? {
                let batch: Batch =
                    bincode::deserialize(&bytes).map_err(|e| format!("stored batch {digest}: {e}"))?;
                let (computed, tx_hashes) = batch.hashes();
                if computed != *digest {
                    return Err(format!("stored batch {digest} hashes to {computed}"));
                }
                if self.state.consensus_only() {
                    return Ok(Some(CheckedBatch::Opaque(Arc::new(tx_hashes))));
                }
                self.state.metrics.batches_verified_again.inc();
                let stored = [Unverified { digest: *digest, batch, tx_hashes }];
                return Ok(verifier::check(&self.state, &stored).pop());
            }
            self.fetcher.want(&[*digest], author);
            if warned.elapsed() > Duration::from_secs(10) {
                tracing::warn!(%digest, waited_s = started.elapsed().as_secs(), "still waiting for a committed batch");
                warned = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
