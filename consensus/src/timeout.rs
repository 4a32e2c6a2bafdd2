//! Timeouts: a validator's signed statement that it gives up on a round.
//!
//! A timeout signs `(round, high_qc.round)` and carries the validator's highest quorum
//! certificate, so that whoever forms the timeout certificate learns a QC at least as high
//! as any honest signer's: the next leader must extend it.

use bastion_crypto::{Digest, DigestBuilder, KeyPair, Signature};
use serde::{Deserialize, Serialize};

use crate::{domains, QuorumCert, Round, ValidatorIndex};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeout {
    pub round: Round,
    pub high_qc: QuorumCert,
    pub author: ValidatorIndex,
    pub signature: Signature,
}

impl Timeout {
    pub fn new(
        round: Round,
        high_qc: QuorumCert,
        author: ValidatorIndex,
        key: &KeyPair,
        chain_id: &str,
    ) -> Self {
        let digest = Self::signing_digest(chain_id, round, high_qc.round());
        let signature = key.sign(domains::TIMEOUT, digest.as_bytes());
        Timeout { round, high_qc, author, signature }
    }

    /// The 32 bytes a timeout for `round` with a highest QC of `high_qc_round` signs.
    pub fn signing_digest(chain_id: &str, round: Round, high_qc_round: Round) -> Digest {
        DigestBuilder::new("bastion/timeout-data/v1")
            .var_bytes(chain_id.as_bytes())
            .u64(round)
            .u64(high_qc_round)
            .finish()
    }
}
