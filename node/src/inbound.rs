//! Dispatching what peers send: consensus messages to the driver, batches to storage (and
//! from there to verification), requests to storage, state votes to the certifier.
//!
//! Block requests are answered from storage, not from the consensus core, so a validator
//! that is far behind can fetch any committed block, not just the recent ones the core holds.

use std::sync::Arc;

use bastion_consensus::{ConsensusMessage, MAX_SYNC_BLOCKS, MAX_SYNC_PAYLOAD};
use bastion_crypto::Digest;
use tokio::sync::mpsc;

use crate::batch::Batch;
use crate::certifier::Certifier;
use crate::driver::DriverInput;
use crate::fetcher::BatchFetcher;
use crate::state::{CheckedBatch, NodeState};
use crate::verifier::Unverified;
use crate::wire::{NetMessage, MAX_BATCH_REQUEST};

pub struct Inbound {
    pub state: Arc<NodeState>,
    pub driver: mpsc::Sender<DriverInput>,
    pub batches: mpsc::Sender<(u16, Batch)>,
    pub certifier: Arc<Certifier>,
}

impl Inbound {
    pub async fn run(self, mut inbound: mpsc::Receiver<(u16, NetMessage)>) {
        while let Some((from, message)) = inbound.recv().await {
            match message {
                NetMessage::Consensus(ConsensusMessage::BlockRequest { digest, count }) => {
                    let state = self.state.clone();
                    tokio::task::spawn_blocking(move || serve_blocks(&state, from, digest, count));
                }
                NetMessage::Consensus(message) => {
                    if self.driver.send(DriverInput::Message(from, message)).await.is_err() {
                        return;
                    }
                }
                NetMessage::Batch(batch) => {
                    if self.batches.send((from, batch)).await.is_err() {
                        return;
                    }
                }
                NetMessage::BatchRequest(digests) => {
                    let state = self.state.clone();
                    tokio::task::spawn_blocking(move || serve_batches(&state, from, &digests));
                }
                NetMessage::StateVote { height, state_root, signer, signature } => {
                    self.certifier.on_vote(from, height, state_root, signer, signature);
                }
            }
        }
    }
}

fn serve_blocks(state: &NodeState, to: u16, digest: Digest, count: u16) {
    let count = usize::from(count).clamp(1, MAX_SYNC_BLOCKS);
    let mut blocks = Vec::new();
    let mut payload = 0;
    let mut cursor = digest;
    while blocks.len() < count {
        let Ok(Some(block)) = state.storage.block(&cursor) else { break };
        if !blocks.is_empty() && payload + block.payload.len() > MAX_SYNC_PAYLOAD {
            break;
        }
        payload += block.payload.len();
        cursor = block.parent().digest;
        let at_genesis = block.height <= 1;
        blocks.push(block);
        if at_genesis {
            break;
        }
    }
    if !blocks.is_empty() {
        let _ = state.transport.send(to, &NetMessage::Consensus(ConsensusMessage::BlockResponse { blocks }));
    }
}

fn serve_batches(state: &NodeState, to: u16, digests: &[Digest]) {
    for digest in digests.iter().take(MAX_BATCH_REQUEST) {
        let Ok(Some(bytes)) = state.storage.batch(digest) else { continue };
        match bincode::deserialize::<Batch>(&bytes) {
            Ok(batch) => {
                let _ = state.transport.send(to, &NetMessage::Batch(batch));
            }
            Err(e) => tracing::error!(%digest, error = %e, "a stored batch does not decode"),
        }
    }
}

/// Stores batches from peers and tells consensus each one is available; their signatures
/// are checked behind consensus ([`crate::verifier`]), so a vote never waits for them.
///
/// Nothing here waits on the verifier: a batch the verifier has no room for is unmarked
/// and left on disk, and execution verifies it there (`bastion_batches_verified_again_total`).
/// Waiting would hold up this loop, then the dispatch of consensus messages behind it, and
/// a committed block naming a batch still marked would hold up execution for good.
pub async fn store_batches(
    state: Arc<NodeState>,
    fetcher: Arc<BatchFetcher>,
    driver: mpsc::Sender<DriverInput>,
    verifier: mpsc::Sender<Unverified>,
    mut batches: mpsc::Receiver<(u16, Batch)>,
) {
    while let Some((from, batch)) = batches.recv().await {
        let worker_state = state.clone();
        let stored = tokio::task::spawn_blocking(move || store(&worker_state, from, batch)).await;
        match stored {
            Ok(Some((digest, unverified))) => {
                if let Some(unverified) = unverified {
                    if verifier.try_send(unverified).is_err() {
                        state.end_verification(&digest);
                        state.metrics.batches_verify_deferred.inc();
                    }
                }
                fetcher.arrived(&digest);
                if driver.send(DriverInput::PayloadAvailable(digest)).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "batch storing task failed"),
        }
    }
}

/// Stores a peer's batch; returns its digest, and the batch itself if its signatures are
/// still to be checked. `None` if refused.
fn store(state: &NodeState, from: u16, batch: Batch) -> Option<(Digest, Option<Unverified>)> {
    let (digest, tx_hashes) = batch.hashes();
    if let Ok(true) = state.storage.has_batch(&digest) {
        return Some((digest, None));
    }
    let max_bytes = state.config.mempool.batch_max_bytes.saturating_mul(2);
    if batch.byte_size() > max_bytes || batch.txs.len() > state.config.mempool.batch_max_txs.saturating_mul(2)
    {
        state.metrics.batches_rejected.inc();
        tracing::warn!(from, %digest, "refused an oversized batch");
        return None;
    }
    let bytes = match bincode::serialize(&batch) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a batch");
            return None;
        }
    };
    if state.consensus_only() {
        if let Err(e) = state.store_checked_batch(digest, &bytes, CheckedBatch::Opaque(Arc::new(tx_hashes))) {
            tracing::error!(%digest, error = %e, "cannot store a batch");
            return None;
        }
        state.metrics.batches_received.inc();
        return Some((digest, None));
    }
    // Marked before it is stored: execution finding it on disk must wait for the verifier.
    state.begin_verification(digest);
    if let Err(e) = state.storage.put_batch(&digest, &bytes) {
        state.end_verification(&digest);
        tracing::error!(%digest, error = %e, "cannot store a batch");
        return None;
    }
    state.metrics.batches_received.inc();
    Some((digest, Some(Unverified { digest, batch, tx_hashes })))
}
