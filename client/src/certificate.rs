//! State-root certificates: `2f+1` validators' signatures over `(chain id, height, root)`.
//!
//! After executing height `h`, every validator signs its state root under the domain
//! `"bastion/state-root/v1"`; a node that gathers a quorum of signatures over the same root
//! holds a [`StateCertificate`]. A client that knows the committee's public keys (from
//! genesis) checks a query answer by verifying the Merkle proof against the certified root
//! and the certificate against those keys: it trusts no single node.

use bastion_crypto::{
    verify_batch, BatchItem, Digest, DigestBuilder, Domain, KeyPair, PublicKey, Signature, VerifyKey,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const STATE_ROOT_DOMAIN: Domain = Domain("bastion/state-root/v1");

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertificateError {
    #[error("certificate is for chain {got}, expected {expected}")]
    WrongChain { got: String, expected: String },
    #[error("certificate has {got} distinct known signers, a quorum of {n} validators is {needed}")]
    NoQuorum { got: usize, needed: usize, n: usize },
    #[error("signer {0} is not in the committee")]
    UnknownSigner(u16),
    #[error("signers and signatures differ in number or repeat a signer")]
    Malformed,
    #[error("a signature does not verify")]
    BadSignature,
}

/// The bytes each validator signs for height `height`.
pub fn state_root_digest(chain_id: &str, height: u64, root: &Digest) -> Digest {
    DigestBuilder::new("bastion/state-root-data/v1")
        .var_bytes(chain_id.as_bytes())
        .u64(height)
        .digest(root)
        .finish()
}

/// One validator's signature over a state root.
pub fn sign_state_root(key: &KeyPair, chain_id: &str, height: u64, root: &Digest) -> Signature {
    key.sign(STATE_ROOT_DOMAIN, state_root_digest(chain_id, height, root).as_bytes())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCertificate {
    pub chain_id: String,
    pub height: u64,
    pub state_root: Digest,
    /// Validator indices, strictly increasing.
    pub signers: Vec<u16>,
    pub signatures: Vec<Signature>,
}

impl StateCertificate {
    /// Quorum size for a committee of `n`: `n - f` with `f = (n - 1) / 3`.
    pub fn quorum(n: usize) -> usize {
        n - n.saturating_sub(1) / 3
    }

    /// Checks the certificate against the committee's keys (in genesis order).
    pub fn verify(&self, chain_id: &str, committee: &[PublicKey]) -> Result<(), CertificateError> {
        if self.chain_id != chain_id {
            return Err(CertificateError::WrongChain {
                got: self.chain_id.clone(),
                expected: chain_id.to_string(),
            });
        }
        if self.signers.len() != self.signatures.len() || self.signers.windows(2).any(|w| w[0] >= w[1]) {
            return Err(CertificateError::Malformed);
        }
        let needed = Self::quorum(committee.len());
        if self.signers.len() < needed {
            return Err(CertificateError::NoQuorum { got: self.signers.len(), needed, n: committee.len() });
        }
        let digest = state_root_digest(chain_id, self.height, &self.state_root);
        let mut items = Vec::with_capacity(self.signers.len());
        for (signer, sig) in self.signers.iter().zip(&self.signatures) {
            let key = committee.get(usize::from(*signer)).ok_or(CertificateError::UnknownSigner(*signer))?;
            items.push(BatchItem {
                domain: STATE_ROOT_DOMAIN,
                msg: digest.as_bytes(),
                key: VerifyKey::Raw(key),
                sig,
            });
        }
        verify_batch(&items).map_err(|_| CertificateError::BadSignature)
    }
}
