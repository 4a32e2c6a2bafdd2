//! Votes: a validator's signed statement that a block is safe to extend.
//!
//! A vote signs [`VoteData`], which names the block *and its parent*. Carrying the parent in
//! every vote (and so in every [`crate::QuorumCert`]) lets a validator apply the two-chain
//! commit rule from a certificate alone: if `block.round == parent.round + 1`, the parent
//! commits.

use bastion_crypto::{BatchItem, Digest, DigestBuilder, KeyPair, Signature, VerifyKey};
use serde::{Deserialize, Serialize};

use crate::{domains, BlockInfo, Committee, ConsensusError, Round, ValidatorIndex};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VoteData {
    pub block: BlockInfo,
    pub parent: BlockInfo,
}

impl VoteData {
    /// The 32 bytes every vote on this data signs; binds the chain id.
    pub fn signing_digest(&self, chain_id: &str) -> Digest {
        DigestBuilder::new("bastion/vote-data/v1")
            .var_bytes(chain_id.as_bytes())
            .digest(&self.block.digest)
            .u64(self.block.round)
            .u64(self.block.height)
            .digest(&self.parent.digest)
            .u64(self.parent.round)
            .u64(self.parent.height)
            .finish()
    }

    /// The two-chain commit rule: a certified block whose parent is exactly one round older
    /// commits that parent (and all its uncommitted ancestors).
    pub fn commits_parent(&self) -> bool {
        self.parent.round.checked_add(1) == Some(self.block.round)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub data: VoteData,
    pub author: ValidatorIndex,
    pub signature: Signature,
}

impl Vote {
    pub fn new(data: VoteData, author: ValidatorIndex, key: &KeyPair, chain_id: &str) -> Self {
        let signature = key.sign(domains::VOTE, data.signing_digest(chain_id).as_bytes());
        Vote { data, author, signature }
    }

    pub fn round(&self) -> Round {
        self.data.block.round
    }

    /// A batch item for this vote; `digest` must be `self.data.signing_digest(chain_id)`.
    pub fn batch_item<'a>(
        &'a self,
        digest: &'a Digest,
        committee: &'a Committee,
    ) -> Result<BatchItem<'a>, ConsensusError> {
        let key = committee.key(self.author).ok_or(ConsensusError::UnknownValidator(self.author))?;
        Ok(BatchItem {
            domain: domains::VOTE,
            msg: digest.as_bytes(),
            key: VerifyKey::Prepared(key),
            sig: &self.signature,
        })
    }
}
