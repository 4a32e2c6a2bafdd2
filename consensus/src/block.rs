//! Blocks: a leader's proposal for one round.
//!
//! A block carries the quorum certificate of its parent, a timeout certificate when the
//! previous round ended in a timeout, and the digests of the payload batches it orders (the
//! batches themselves travel separately). Its digest covers everything but the certificates'
//! signatures and the block's own signature; it is computed once, carried in the block, and
//! checked by [`Block::verify`] against the contents.

use bastion_crypto::{verify, Digest, DigestBuilder, KeyPair, Signature};
use serde::{Deserialize, Serialize};

use crate::{
    domains, CertificateCache, Committee, ConsensusError, Height, QuorumCert, Round, TimeoutCert,
    ValidatorIndex,
};

/// Upper bound on payload digests per block, checked before anything else is verified.
pub const MAX_PAYLOAD_DIGESTS: usize = 4096;

/// What a certificate says about a block: enough to follow the chain without the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlockInfo {
    pub digest: Digest,
    pub round: Round,
    pub height: Height,
}

impl BlockInfo {
    /// The genesis block: round 0, height 0, committed by definition.
    pub fn genesis(chain_id: &str) -> Self {
        let digest = DigestBuilder::new("bastion/genesis/v1").var_bytes(chain_id.as_bytes()).finish();
        BlockInfo { digest, round: 0, height: 0 }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub round: Round,
    pub height: Height,
    pub author: ValidatorIndex,
    pub parent_qc: QuorumCert,
    pub timeout_cert: Option<TimeoutCert>,
    pub payload: Vec<Digest>,
    pub digest: Digest,
    pub signature: Signature,
}

impl Block {
    /// A signed proposal for `round` extending the block certified by `parent_qc`.
    pub fn new(
        committee: &Committee,
        key: &KeyPair,
        author: ValidatorIndex,
        round: Round,
        parent_qc: QuorumCert,
        timeout_cert: Option<TimeoutCert>,
        payload: Vec<Digest>,
    ) -> Self {
        let height = parent_qc.data.block.height + 1;
        let digest = Self::compute_digest(
            committee.chain_id(),
            round,
            height,
            author,
            &parent_qc.data.block,
            &payload,
        );
        let signature = key.sign(domains::PROPOSAL, digest.as_bytes());
        Block { round, height, author, parent_qc, timeout_cert, payload, digest, signature }
    }

    pub fn compute_digest(
        chain_id: &str,
        round: Round,
        height: Height,
        author: ValidatorIndex,
        parent: &BlockInfo,
        payload: &[Digest],
    ) -> Digest {
        let mut builder = DigestBuilder::new("bastion/block/v1")
            .var_bytes(chain_id.as_bytes())
            .u64(round)
            .u64(height)
            .u64(u64::from(author))
            .digest(&parent.digest)
            .u64(parent.round)
            .u64(payload.len() as u64);
        for d in payload {
            builder = builder.digest(d);
        }
        builder.finish()
    }

    pub fn info(&self) -> BlockInfo {
        BlockInfo { digest: self.digest, round: self.round, height: self.height }
    }

    /// The parent block, as certified by `parent_qc` (the QC's `block`, not its `parent`).
    #[allow(clippy::misnamed_getters)]
    pub fn parent(&self) -> &BlockInfo {
        &self.parent_qc.data.block
    }

    /// Checks everything that can be checked without other blocks: structure, digest, the
    /// author's signature and both certificates. Cheap checks come first.
    pub fn verify(&self, committee: &Committee, cache: &mut CertificateCache) -> Result<(), ConsensusError> {
        ensure!(
            self.payload.len() <= MAX_PAYLOAD_DIGESTS,
            ConsensusError::MalformedBlock("too many payload digests")
        );
        let key = committee.key(self.author).ok_or(ConsensusError::UnknownValidator(self.author))?;
        let parent = *self.parent();
        ensure!(
            parent.height.checked_add(1) == Some(self.height),
            ConsensusError::BadHeight { got: self.height, parent: parent.height }
        );
        ensure!(
            self.round > parent.round,
            ConsensusError::MalformedBlock("round does not exceed the parent's")
        );
        if let Some(tc) = &self.timeout_cert {
            ensure!(
                tc.round.checked_add(1) == Some(self.round),
                ConsensusError::MalformedBlock("timeout certificate is not for the previous round")
            );
        }
        let expected = Self::compute_digest(
            committee.chain_id(),
            self.round,
            self.height,
            self.author,
            &parent,
            &self.payload,
        );
        ensure!(expected == self.digest, ConsensusError::BadDigest);
        verify(domains::PROPOSAL, self.digest.as_bytes(), key.public(), &self.signature)
            .map_err(|_| ConsensusError::InvalidSignature(self.author))?;
        self.parent_qc.verify(committee, cache)?;
        if let Some(tc) = &self.timeout_cert {
            tc.verify(committee, cache)?;
        }
        Ok(())
    }
}
