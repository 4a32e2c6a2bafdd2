//! Payload batches: the transactions that blocks order by digest.
//!
//! A batch is stored as the bytes it travelled in, under its digest. Until a committed
//! block orders it, it is also *pending*: [`Storage::pending_batches`] lists the pending
//! ones in arrival order, so that after a restart the node can announce them to consensus
//! again and they get proposed instead of silently dropped. [`Storage::commit_blocks`]
//! clears the mark and records the committing height in the same write as the commit, so a
//! batch is never both committed and pending, and a batch that arrives again after its
//! commit (a late fetch, a peer's re-send) does not become pending again.
//!
//! Batch writes are not synced: a batch lost in a crash is fetched again from the peers
//! that certified the block ordering it (a quorum stored it before voting).

use std::sync::atomic::Ordering;

use bastion_consensus::Height;
use bastion_crypto::Digest;
use rocksdb::WriteBatch;

use super::{cf, digest_from, lock, u64_from, Storage, StorageError};

impl Storage {
    /// Stores a batch. It becomes pending unless it is pending already or was committed.
    pub fn put_batch(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StorageError> {
        // Under the chain lock, so a commit cannot slip in between the check and the write.
        let _guard = lock(&self.inner.chain_lock);
        // Sized up front: growing the write batch's buffer copied the batch's bytes again.
        let mut batch = WriteBatch::with_capacity_bytes(bytes.len() + 256);
        batch.put_cf(self.cf(cf::BATCHES)?, digest.as_bytes(), bytes);
        let known = self.contains(cf::PENDING_BATCHES, digest.as_bytes())?
            || self.contains(cf::BATCH_COMMITS, digest.as_bytes())?;
        if !known {
            let seq = self.inner.batch_seq.fetch_add(1, Ordering::Relaxed);
            batch.put_cf(self.cf(cf::PENDING_BATCHES)?, digest.as_bytes(), seq.to_be_bytes());
        }
        self.write(batch, false, "batch write")
    }

    /// The bytes of the batch with this digest.
    pub fn batch(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StorageError> {
        self.get(cf::BATCHES, digest.as_bytes())
    }

    pub fn has_batch(&self, digest: &Digest) -> Result<bool, StorageError> {
        self.contains(cf::BATCHES, digest.as_bytes())
    }

    /// Digests of the batches stored and not yet committed, oldest first.
    pub fn pending_batches(&self) -> Result<Vec<Digest>, StorageError> {
        let mut pending = Vec::new();
        self.scan(cf::PENDING_BATCHES, &[], |key, value| {
            pending.push((u64_from("pending batch", value)?, digest_from("pending batch", key)?));
            Ok(true)
        })?;
        pending.sort_unstable();
        Ok(pending.into_iter().map(|(_, digest)| digest).collect())
    }

    /// The height of the committed block that ordered this batch (kept until that block is
    /// pruned).
    pub fn batch_commit_height(&self, digest: &Digest) -> Result<Option<Height>, StorageError> {
        self.get_u64(cf::BATCH_COMMITS, digest.as_bytes(), "batch commit height")
    }

    /// Deletes batches (their bytes and pending marks), e.g. once executed and no longer
    /// served to peers.
    pub fn delete_batches(&self, digests: &[Digest]) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        for digest in digests {
            batch.delete_cf(self.cf(cf::BATCHES)?, digest.as_bytes());
            batch.delete_cf(self.cf(cf::PENDING_BATCHES)?, digest.as_bytes());
        }
        self.write(batch, false, "batch deletion")
    }

    /// Continues the arrival numbering after the pending batches already stored.
    pub(super) fn init_batch_seq(&self) -> Result<(), StorageError> {
        let mut next = 0;
        self.scan(cf::PENDING_BATCHES, &[], |_, value| {
            next = next.max(u64_from("pending batch", value)?.saturating_add(1));
            Ok(true)
        })?;
        self.inner.batch_seq.store(next, Ordering::Relaxed);
        Ok(())
    }
}
