//! Signature verification of peers' batches, behind consensus.
//!
//! A peer's batch is stored, and consensus told it is available, as soon as it arrives and
//! its size and digest check out: a vote promises that the voter holds the data, not that
//! every signature in it is good. The signatures are checked here, in the background, and
//! the verified form is cached for execution, which waits for it. So a verification backlog
//! under load delays execution, but never a vote: before, votes waited behind it and rounds
//! timed out once the backlog grew past the round timeout. The queue is bounded; a batch
//! arriving while it is full is not queued but left on disk, where execution verifies it
//! (`bastion_batches_verify_deferred_total`), so nothing ever waits for room here.
//!
//! While batches queue up, they are verified together, up to [`GROUP_TXS`] transactions in
//! one batch verification: the multiscalar multiplication costs less per signature the
//! larger it is, so a validator that falls behind catches up faster.
//!
//! An honest validator batches only transactions it admitted, so a transaction that fails
//! here comes from a faulty batch author. It is left out of the batch's verified form,
//! logged and counted (`bastion_batch_txs_invalid_total`), and never executed. Every honest
//! validator applies the same acceptance rule to the same committed bytes, so all leave out
//! the same transactions and reach the same state root.

use std::sync::Arc;

use bastion_crypto::Digest;
use bastion_ledger::{admit_batch_hashed, AdmissionError, VerifiedTransaction};
use tokio::sync::mpsc;

use crate::batch::Batch;
use crate::state::{CheckedBatch, NodeState};

/// At most this many transactions are verified together.
pub const GROUP_TXS: usize = 1_024;

/// A stored batch waiting for its signatures to be checked.
pub struct Unverified {
    pub digest: Digest,
    pub batch: Batch,
    pub tx_hashes: Vec<Digest>,
}

/// Verifies queued batches, grouping those waiting, and caches each one's verified form.
pub async fn verify_batches(state: Arc<NodeState>, mut queue: mpsc::Receiver<Unverified>) {
    while let Some(first) = queue.recv().await {
        let mut txs = first.batch.txs.len();
        let mut group = vec![first];
        while txs < GROUP_TXS {
            match queue.try_recv() {
                Ok(next) => {
                    txs += next.batch.txs.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let worker = state.clone();
        let digests: Vec<Digest> = group.iter().map(|u| u.digest).collect();
        let done = tokio::task::spawn_blocking(move || {
            for (unverified, checked) in group.iter().zip(check(&worker, &group)) {
                worker.cache_batch(unverified.digest, checked);
            }
        })
        .await;
        if let Err(e) = done {
            tracing::error!(error = %e, "batch verification task failed; execution verifies these batches itself");
        }
        for digest in &digests {
            state.end_verification(digest);
        }
    }
}

/// The verified form of each batch of `group`, its invalid transactions left out; the
/// signatures of the whole group are checked as one batch.
pub fn check(state: &NodeState, group: &[Unverified]) -> Vec<CheckedBatch> {
    let raw: Vec<&[u8]> = group.iter().flat_map(|u| u.batch.txs.iter().map(|tx| tx.as_ref())).collect();
    let hashes: Vec<Digest> = group.iter().flat_map(|u| u.tx_hashes.iter().copied()).collect();
    let mut results = admit_batch_hashed(&raw, &hashes, &state.chain_id, Some(&state.key_cache)).into_iter();
    state.metrics.verify_batch_size.observe(raw.len() as f64);
    group
        .iter()
        .map(|unverified| {
            let own = results.by_ref().take(unverified.batch.txs.len());
            CheckedBatch::Verified(Arc::new(keep_valid(state, unverified, own)))
        })
        .collect()
}

fn keep_valid(
    state: &NodeState,
    unverified: &Unverified,
    results: impl Iterator<Item = Result<VerifiedTransaction, AdmissionError>>,
) -> Vec<VerifiedTransaction> {
    let mut valid = Vec::with_capacity(unverified.batch.txs.len());
    let mut invalid = 0u64;
    let mut first_error = None;
    for result in results {
        match result {
            Ok(tx) => valid.push(tx),
            Err(e) => {
                invalid += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(error) = first_error {
        state.metrics.batch_txs_invalid.inc_by(invalid);
        tracing::warn!(
            author = unverified.batch.author,
            digest = %unverified.digest,
            invalid,
            %error,
            "a batch carries transactions that fail admission; its author is faulty and they will not execute"
        );
    }
    valid
}
