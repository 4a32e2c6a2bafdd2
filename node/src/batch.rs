//! Payload batches: transactions grouped by the validator that admitted them.
//!
//! A batch's digest covers its author, its sequence number and the hash of every
//! transaction in it, in order; it is computed once (when sealed or received) and carried.
//! Transactions are kept as the exact bytes their senders signed, so a transaction's hash
//! is the same on every validator.

use bastion_crypto::{sha256, Digest, DigestBuilder};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub author: u16,
    pub seq: u64,
    pub txs: Vec<Bytes>,
}

impl Batch {
    /// The digest of a batch whose transactions hash to `tx_hashes`.
    pub fn digest_of(author: u16, seq: u64, tx_hashes: &[Digest]) -> Digest {
        let mut builder = DigestBuilder::new("bastion/batch/v1")
            .u64(u64::from(author))
            .u64(seq)
            .u64(tx_hashes.len() as u64);
        for hash in tx_hashes {
            builder = builder.digest(hash);
        }
        builder.finish()
    }

    /// Hashes every transaction (once) and the batch.
    pub fn hashes(&self) -> (Digest, Vec<Digest>) {
        let tx_hashes: Vec<Digest> = self.txs.iter().map(|tx| sha256(tx)).collect();
        (Self::digest_of(self.author, self.seq, &tx_hashes), tx_hashes)
    }

    pub fn byte_size(&self) -> usize {
        self.txs.iter().map(|t| t.len() + 8).sum::<usize>() + 16
    }
}
