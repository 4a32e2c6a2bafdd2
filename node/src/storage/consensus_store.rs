//! What consensus persists: safety data, blocks and the committed chain.
//!
//! * [`Storage::put_safety`] is the only synced write on the voting path: it fsyncs the
//!   write-ahead log before returning and carries nothing else, so the vote or timeout that
//!   the data records can be sent as soon as it returns (DESIGN §2).
//! * [`Storage::put_block`] is not synced: a block lost in a crash is fetched again from
//!   peers, because a validator only needs blocks to catch up, never to stay safe.
//! * [`Storage::commit_blocks`] is one synced write: the blocks, their height index and the
//!   committed tip move together, so after a crash the tip never names a missing block.
//! * [`Storage::recovery`] hands [`bastion_consensus::Core::recover`] what it needs.
//!
//! Blocks are keyed by digest; a second index (`height ‖ digest`) orders every stored
//! block, committed or not, which is what recovery and pruning walk.

use bastion_consensus::{Block, BlockInfo, Height, Recovery, SafetyData};
use bastion_crypto::Digest;
use rocksdb::WriteBatch;

use super::{cf, digest_from, encode, lock, Storage, StorageError};

const SAFETY_KEY: &[u8] = b"safety_data";
const COMMITTED_TIP_KEY: &[u8] = b"committed_tip";
/// Blocks deleted per write while pruning, to bound memory.
const PRUNE_CHUNK: usize = 1024;

impl Storage {
    /// Durably replaces the safety data (fsync before returning). Call it before sending
    /// the vote or timeout that the data records.
    pub fn put_safety(&self, data: &SafetyData) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(cf::SAFETY)?, SAFETY_KEY, encode("safety data", data)?);
        self.write(batch, true, "safety data write")
    }

    /// The last safety data written, or `None` on a new validator.
    pub fn safety(&self) -> Result<Option<SafetyData>, StorageError> {
        self.get_decoded(cf::SAFETY, SAFETY_KEY, "safety data")
    }

    /// Stores a verified block (not synced: a crash may lose it; consensus refetches).
    pub fn put_block(&self, block: &Block) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        self.add_block(&mut batch, block)?;
        self.write(batch, false, "block write")
    }

    /// The stored block with this digest.
    pub fn block(&self, digest: &Digest) -> Result<Option<Block>, StorageError> {
        let Some(block) = self.get_decoded::<Block>(cf::BLOCKS, digest.as_bytes(), "block")? else {
            return Ok(None);
        };
        if block.digest != *digest {
            return Err(StorageError::Corrupt {
                what: "block",
                detail: format!("block stored under {digest} says its digest is {}", block.digest),
            });
        }
        Ok(Some(block))
    }

    /// Makes `blocks` (oldest first, heights consecutive, the first extending the committed
    /// tip) committed, in one atomic synced write that stores them, indexes them by height,
    /// advances the committed tip and marks the batches they order as committed.
    pub fn commit_blocks(&self, blocks: &[Block]) -> Result<(), StorageError> {
        let Some(last) = blocks.last() else { return Ok(()) };
        let _guard = lock(&self.inner.chain_lock);
        let mut previous = self.committed_tip()?;
        for block in blocks {
            let expected = previous.map_or(1, |tip| tip.height + 1);
            let extends = previous.is_none_or(|tip| block.parent().digest == tip.digest);
            if block.height != expected || !extends {
                return Err(StorageError::Refused {
                    what: "committed block",
                    detail: format!(
                        "block {} at height {} does not extend the committed chain at height {}",
                        block.digest,
                        block.height,
                        expected - 1
                    ),
                });
            }
            previous = Some(block.info());
        }
        let mut batch = WriteBatch::default();
        // A batch named again by a later block keeps the height that first ordered it:
        // execution skips it at the later height (everything in it was executed already).
        let mut ordered = std::collections::HashSet::new();
        for block in blocks {
            self.add_block(&mut batch, block)?;
            batch.put_cf(self.cf(cf::COMMITTED)?, block.height.to_be_bytes(), block.digest.as_bytes());
            for digest in &block.payload {
                batch.delete_cf(self.cf(cf::PENDING_BATCHES)?, digest.as_bytes());
                if ordered.insert(*digest) && !self.contains(cf::BATCH_COMMITS, digest.as_bytes())? {
                    batch.put_cf(self.cf(cf::BATCH_COMMITS)?, digest.as_bytes(), block.height.to_be_bytes());
                }
            }
        }
        batch.put_cf(self.cf(cf::META)?, COMMITTED_TIP_KEY, encode("committed tip", &last.info())?);
        self.write(batch, true, "commit")
    }

    /// The highest committed block, or `None` while only genesis is committed.
    pub fn committed_tip(&self) -> Result<Option<BlockInfo>, StorageError> {
        self.get_decoded(cf::META, COMMITTED_TIP_KEY, "committed tip")
    }

    /// The committed block at `height` (`None` above the tip, at genesis, or once pruned).
    pub fn committed_block(&self, height: Height) -> Result<Option<Block>, StorageError> {
        let Some(bytes) = self.get(cf::COMMITTED, &height.to_be_bytes())? else { return Ok(None) };
        let digest = digest_from("committed index", &bytes)?;
        match self.block(&digest)? {
            Some(block) if block.height == height => Ok(Some(block)),
            Some(block) => Err(StorageError::Corrupt {
                what: "committed index",
                detail: format!("height {height} names block {digest} of height {}", block.height),
            }),
            None => Err(StorageError::Corrupt {
                what: "committed index",
                detail: format!("committed block {digest} at height {height} is missing"),
            }),
        }
    }

    /// Stored blocks above the committed height, by height: the uncommitted part of the
    /// block tree (forks included).
    pub fn uncommitted_blocks(&self) -> Result<Vec<Block>, StorageError> {
        let above = self.committed_tip()?.map_or(0, |tip| tip.height + 1);
        let mut digests = Vec::new();
        self.scan(cf::BLOCK_HEIGHTS, &above.to_be_bytes(), |key, _| {
            digests.push(split_height_key(key)?.1);
            Ok(true)
        })?;
        digests
            .into_iter()
            .map(|digest| {
                self.block(&digest)?.ok_or_else(|| StorageError::Corrupt {
                    what: "block index",
                    detail: format!("indexed block {digest} is missing"),
                })
            })
            .collect()
    }

    /// Everything [`bastion_consensus::Core::recover`] needs after a restart.
    pub fn recovery(&self) -> Result<Recovery, StorageError> {
        Ok(Recovery {
            safety: self.safety()?.unwrap_or_default(),
            blocks: self.uncommitted_blocks()?,
            committed: self.committed_tip()?,
        })
    }

    /// Deletes every stored block (committed or a dead fork) below height
    /// `committed height - keep_last`; the committed tip and the `keep_last` blocks below
    /// it stay. Returns how many blocks were deleted. Not synced: a crash only means the
    /// next pass deletes them.
    pub fn prune_blocks(&self, keep_last: u64) -> Result<usize, StorageError> {
        let _guard = lock(&self.inner.chain_lock);
        let cutoff = self.committed_tip()?.map_or(0, |tip| tip.height.saturating_sub(keep_last));
        let mut deleted = 0;
        loop {
            let mut doomed = Vec::new();
            self.scan(cf::BLOCK_HEIGHTS, &[], |key, _| {
                let (height, digest) = split_height_key(key)?;
                if height >= cutoff || doomed.len() == PRUNE_CHUNK {
                    return Ok(false);
                }
                doomed.push((height, digest));
                Ok(true)
            })?;
            if doomed.is_empty() {
                return Ok(deleted);
            }
            let mut batch = WriteBatch::default();
            for (height, digest) in &doomed {
                self.forget_batch_commits(&mut batch, *height, digest)?;
                batch.delete_cf(self.cf(cf::BLOCKS)?, digest.as_bytes());
                batch.delete_cf(self.cf(cf::BLOCK_HEIGHTS)?, height_key(*height, digest));
                batch.delete_cf(self.cf(cf::COMMITTED)?, height.to_be_bytes());
            }
            self.write(batch, false, "block pruning")?;
            deleted += doomed.len();
        }
    }

    /// Drops the commit marks of the batches of a pruned block, if it was the committed
    /// block of its height (a dead fork's batches may be committed elsewhere).
    fn forget_batch_commits(
        &self,
        batch: &mut WriteBatch,
        height: Height,
        digest: &Digest,
    ) -> Result<(), StorageError> {
        let committed = self.get(cf::COMMITTED, &height.to_be_bytes())?;
        if committed.as_deref() != Some(digest.as_bytes().as_slice()) {
            return Ok(());
        }
        if let Some(block) = self.block(digest)? {
            for payload in &block.payload {
                batch.delete_cf(self.cf(cf::BATCH_COMMITS)?, payload.as_bytes());
            }
        }
        Ok(())
    }

    fn add_block(&self, batch: &mut WriteBatch, block: &Block) -> Result<(), StorageError> {
        batch.put_cf(self.cf(cf::BLOCKS)?, block.digest.as_bytes(), encode("block", block)?);
        batch.put_cf(self.cf(cf::BLOCK_HEIGHTS)?, height_key(block.height, &block.digest), b"");
        Ok(())
    }
}

fn height_key(height: Height, digest: &Digest) -> [u8; 40] {
    let mut key = [0; 40];
    key[..8].copy_from_slice(&height.to_be_bytes());
    key[8..].copy_from_slice(digest.as_bytes());
    key
}

fn split_height_key(key: &[u8]) -> Result<(Height, Digest), StorageError> {
    let corrupt =
        || StorageError::Corrupt { what: "block index", detail: format!("key of {} bytes", key.len()) };
    let (height, digest) = key.split_at_checked(8).ok_or_else(corrupt)?;
    let height = <[u8; 8]>::try_from(height).map(u64::from_be_bytes).map_err(|_| corrupt())?;
    Ok((height, digest_from("block index", digest)?))
}
