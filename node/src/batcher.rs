//! Sealing admitted transactions into batches and sharing them.
//!
//! A batch is sealed when enough transactions wait (`batch_max_txs` / `batch_max_bytes`)
//! or when the oldest has waited `batch_delay_ms`. The batch is stored first, then
//! broadcast to every validator, then offered to consensus: a proposal can only name a
//! batch its leader holds.

use std::sync::Arc;
use std::time::Duration;

use bastion_crypto::Digest;
use tokio::sync::{mpsc, Notify};

use crate::batch::Batch;
use crate::byzantine::forged_transaction;
use crate::driver::DriverInput;
use crate::mempool::PoolTx;
use crate::state::{CheckedBatch, NodeState};
use crate::wire::NetMessage;

pub struct Batcher {
    pub state: Arc<NodeState>,
    pub driver: mpsc::Sender<DriverInput>,
    /// Poked by admission when a full batch is waiting.
    pub full: Arc<Notify>,
    /// `--byzantine bad-batches` only: add a forged transaction to every batch.
    pub forge: bool,
}

impl Batcher {
    pub async fn run(self) {
        let settings = self.state.config.mempool.clone();
        let mut tick = tokio::time::interval(Duration::from_millis(settings.batch_delay_ms.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.full.notified() => {}
            }
            let released = self.state.mempool.release_overdue(std::time::Instant::now());
            if released > 0 {
                self.state.metrics.nonce_gap_releases.inc_by(released as u64);
                tracing::info!(
                    released,
                    "batching transactions whose lower nonce never arrived; execution will reject them"
                );
            }
            let mut sealed = false;
            loop {
                let txs = self.state.mempool.take(settings.batch_max_txs, settings.batch_max_bytes);
                if txs.is_empty() && (sealed || !self.forge) {
                    break;
                }
                sealed = true;
                seq += 1;
                match self.seal(seq, txs) {
                    Some(digest) => {
                        if self.driver.send(DriverInput::PayloadAvailable(digest)).await.is_err() {
                            return;
                        }
                    }
                    None => break,
                }
            }
        }
    }

    fn seal(&self, seq: u64, txs: Vec<PoolTx>) -> Option<Digest> {
        let hashes: Vec<Digest> = txs.iter().map(|t| t.hash).collect();
        let verified: Vec<_> = txs.iter().filter_map(|t| t.verified.clone()).collect();
        let mut batch = Batch { author: self.state.me, seq, txs: txs.into_iter().map(|t| t.bytes).collect() };
        if self.forge {
            match forged_transaction(&self.state.key, &self.state.chain_id, seq) {
                Some(forged) => {
                    tracing::warn!(seq, "byzantine: sealed a batch with a forged transaction");
                    batch.txs.push(forged);
                }
                None => tracing::error!("cannot forge a transaction"),
            }
        }
        let digest =
            if self.forge { batch.hashes().0 } else { Batch::digest_of(self.state.me, seq, &hashes) };
        let bytes = match bincode::serialize(&batch) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a batch");
                return None;
            }
        };
        let checked = if self.state.consensus_only() {
            CheckedBatch::Opaque(Arc::new(hashes.clone()))
        } else {
            CheckedBatch::Verified(Arc::new(verified))
        };
        if let Err(e) =
            tokio::task::block_in_place(|| self.state.store_checked_batch(digest, &bytes, checked))
        {
            tracing::error!(error = %e, "cannot store a batch; its transactions stay pending");
            return None;
        }
        self.state.mempool.mark_batched(digest, &hashes);
        if let Err(e) = self.state.transport.broadcast(&NetMessage::Batch(batch)) {
            tracing::warn!(error = %e, "batch broadcast failed; peers will fetch it");
        }
        self.state.metrics.batches_sealed.inc();
        Some(digest)
    }
}
