//! The tree of verified blocks above the last committed one, and the commit rule.
//!
//! The tree keeps every verified block that may still commit, plus a window of recently
//! committed blocks (to serve peers that are catching up). Committing a block returns the
//! chain from the previously committed block (exclusive) to it (inclusive), oldest first, and
//! drops every fork that can no longer commit. A block on the path that is not here yet is
//! reported as missing, so the caller can fetch it; a path that does not lead back to the
//! committed block is a conflicting commit, which only more than `f` Byzantine validators
//! could cause, and is refused.

use std::collections::{BTreeMap, BTreeSet};

use bastion_crypto::Digest;

use crate::{Block, BlockInfo, Height, QuorumCert, TimeoutCert};

#[derive(Debug, PartialEq, Eq)]
pub enum PathError {
    /// This block (on the path to the target) is not in the tree.
    Missing(BlockInfo),
    /// The target does not descend from the committed block.
    Conflict,
}

#[derive(Debug)]
pub struct BlockTree {
    blocks: BTreeMap<Digest, Block>,
    by_height: BTreeMap<Height, Vec<Digest>>,
    committed: BlockInfo,
    highest_qc: QuorumCert,
    highest_tc: Option<TimeoutCert>,
    retain_committed: u64,
}

impl BlockTree {
    pub fn new(committed: BlockInfo, highest_qc: QuorumCert, retain_committed: u64) -> Self {
        BlockTree {
            blocks: BTreeMap::new(),
            by_height: BTreeMap::new(),
            committed,
            highest_qc,
            highest_tc: None,
            retain_committed,
        }
    }

    pub fn committed(&self) -> &BlockInfo {
        &self.committed
    }

    pub fn highest_qc(&self) -> &QuorumCert {
        &self.highest_qc
    }

    pub fn highest_tc(&self) -> Option<&TimeoutCert> {
        self.highest_tc.as_ref()
    }

    pub fn get(&self, digest: &Digest) -> Option<&Block> {
        self.blocks.get(digest)
    }

    /// Known: in the tree, or the committed block itself.
    pub fn knows(&self, digest: &Digest) -> bool {
        self.blocks.contains_key(digest) || self.committed.digest == *digest
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Adds a verified block; returns false if it was known or can no longer commit.
    pub fn insert(&mut self, block: Block) -> bool {
        if block.height <= self.committed.height || self.blocks.contains_key(&block.digest) {
            return false;
        }
        self.by_height.entry(block.height).or_default().push(block.digest);
        self.blocks.insert(block.digest, block);
        true
    }

    /// A block of `round` by `author` is already here (the leader equivocated if the new one differs).
    pub fn has_proposal(&self, round: u64, author: u16, height: Height) -> bool {
        self.by_height.get(&height).is_some_and(|ds| {
            ds.iter().filter_map(|d| self.blocks.get(d)).any(|b| b.round == round && b.author == author)
        })
    }

    pub fn update_highest_qc(&mut self, qc: &QuorumCert) -> bool {
        if qc.round() > self.highest_qc.round() {
            self.highest_qc = qc.clone();
            return true;
        }
        false
    }

    pub fn update_highest_tc(&mut self, tc: &TimeoutCert) -> bool {
        if self.highest_tc.as_ref().is_none_or(|old| tc.round > old.round) {
            self.highest_tc = Some(tc.clone());
            return true;
        }
        false
    }

    /// The uncommitted chain ending at `target`, oldest first.
    pub fn path_to(&self, target: &BlockInfo) -> Result<Vec<&Block>, PathError> {
        let mut path = Vec::new();
        let mut cursor = *target;
        while cursor.height > self.committed.height {
            let block = self.blocks.get(&cursor.digest).ok_or(PathError::Missing(cursor))?;
            path.push(block);
            cursor = *block.parent();
        }
        if cursor.digest != self.committed.digest {
            return Err(PathError::Conflict);
        }
        path.reverse();
        Ok(path)
    }

    /// Commits `target` and its uncommitted ancestors; returns them oldest first.
    pub fn commit(&mut self, target: &BlockInfo) -> Result<Vec<Block>, PathError> {
        if target.height <= self.committed.height {
            return Ok(Vec::new());
        }
        let chain: Vec<Block> = self.path_to(target)?.into_iter().cloned().collect();
        let kept: BTreeSet<Digest> = chain.iter().map(|b| b.digest).collect();
        for height in self.committed.height + 1..=target.height {
            if let Some(digests) = self.by_height.get_mut(&height) {
                for digest in digests.iter().filter(|d| !kept.contains(*d)) {
                    self.blocks.remove(digest);
                }
                digests.retain(|d| kept.contains(d));
            }
        }
        self.committed = *target;
        let horizon = target.height.saturating_sub(self.retain_committed);
        while let Some(entry) = self.by_height.first_entry() {
            if *entry.key() > horizon {
                break;
            }
            for digest in entry.remove() {
                self.blocks.remove(&digest);
            }
        }
        Ok(chain)
    }

    /// Payload digests on the uncommitted chain ending at `tip` (a leader must not re-propose them).
    pub fn uncommitted_payload(&self, tip: &BlockInfo) -> BTreeSet<Digest> {
        let mut out = BTreeSet::new();
        let mut cursor = *tip;
        while cursor.height > self.committed.height {
            let Some(block) = self.blocks.get(&cursor.digest) else { break };
            out.extend(block.payload.iter().copied());
            cursor = *block.parent();
        }
        out
    }

    /// The block `digest` and its ancestors, newest first, at most `count` blocks and about
    /// `max_payload` payload digests in all.
    pub fn ancestors(&self, digest: &Digest, count: usize, max_payload: usize) -> Vec<Block> {
        let mut out = Vec::new();
        let mut payload = 0;
        let mut cursor = *digest;
        while let Some(block) = self.blocks.get(&cursor) {
            if out.len() >= count || (!out.is_empty() && payload + block.payload.len() > max_payload) {
                break;
            }
            payload += block.payload.len();
            out.push(block.clone());
            cursor = block.parent().digest;
        }
        out
    }
}
