//! Quorum and timeout certificates, and the cache that verifies each one once.
//!
//! A [`QuorumCert`] is a bitmap of signers plus their signatures (in signer order) over one
//! [`VoteData`]; it is verified as one batch. A [`TimeoutCert`] lists, per signer, the round
//! of that signer's highest QC and its signature over `(round, that QC round)`.
//!
//! The [`CertificateCache`] remembers the certificates it has verified, each by a digest of
//! *all* of it: data, signers (and, for a TC, their QC rounds) and signatures. A hit means
//! these exact bytes were verified before, so nothing is skipped that could change the
//! verdict. It must not vouch for another certificate over the same data: a validator
//! forwards the certificates it accepts (as a proposal's parent QC, a timeout's high QC, sync
//! info), and a copy with unverified signatures would make its honest messages unverifiable
//! for every peer that has not cached that data.

use std::collections::HashSet;

use bastion_crypto::{find_invalid, BatchItem, Digest, DigestBuilder, Signature, VerifyKey};
use serde::{Deserialize, Serialize};

use crate::{domains, BlockInfo, Committee, ConsensusError, Round, Timeout, ValidatorIndex, Vote, VoteData};

/// The set of validators that signed a certificate, one bit per committee index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignerBitmap(Vec<u8>);

impl SignerBitmap {
    pub fn new(committee_size: usize) -> Self {
        SignerBitmap(vec![0; committee_size.div_ceil(8)])
    }

    pub fn insert(&mut self, index: ValidatorIndex) {
        let i = usize::from(index);
        if let Some(byte) = self.0.get_mut(i / 8) {
            *byte |= 1 << (i % 8);
        }
    }

    pub fn contains(&self, index: ValidatorIndex) -> bool {
        let i = usize::from(index);
        self.0.get(i / 8).is_some_and(|byte| byte & (1 << (i % 8)) != 0)
    }

    pub fn count(&self) -> usize {
        self.0.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// Signer indices in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = ValidatorIndex> + '_ {
        (0..self.0.len() * 8).filter(|&i| self.contains(i as ValidatorIndex)).map(|i| i as ValidatorIndex)
    }

    /// Well-formed for a committee of `n`: the right length and no bit at or past `n`.
    fn fits(&self, n: usize) -> bool {
        self.0.len() == n.div_ceil(8) && self.iter().all(|i| usize::from(i) < n)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumCert {
    pub data: VoteData,
    pub signers: SignerBitmap,
    pub signatures: Vec<Signature>,
}

impl QuorumCert {
    /// The certificate of the genesis block: no signatures, valid by definition.
    pub fn genesis(committee: &Committee) -> Self {
        let genesis = BlockInfo::genesis(committee.chain_id());
        QuorumCert {
            data: VoteData { block: genesis, parent: genesis },
            signers: SignerBitmap::new(committee.size()),
            signatures: Vec::new(),
        }
    }

    /// Assembles a certificate from votes on `data` (distinct authors, any order).
    pub fn from_votes(data: VoteData, votes: &[&Vote], committee_size: usize) -> Self {
        let mut sorted: Vec<&&Vote> = votes.iter().collect();
        sorted.sort_by_key(|v| v.author);
        let mut signers = SignerBitmap::new(committee_size);
        for vote in &sorted {
            signers.insert(vote.author);
        }
        QuorumCert { data, signers, signatures: sorted.iter().map(|v| v.signature).collect() }
    }

    pub fn round(&self) -> Round {
        self.data.block.round
    }

    pub fn certified_block(&self) -> &BlockInfo {
        &self.data.block
    }

    pub fn verify(&self, committee: &Committee, cache: &mut CertificateCache) -> Result<(), ConsensusError> {
        if self.data.block.round == 0 {
            ensure!(
                self == &QuorumCert::genesis(committee),
                ConsensusError::MalformedCertificate("forged genesis")
            );
            return Ok(());
        }
        ensure!(
            self.data.block.round > self.data.parent.round
                && self.data.parent.height.checked_add(1) == Some(self.data.block.height),
            ConsensusError::MalformedCertificate("block does not extend its parent")
        );
        let digest = self.data.signing_digest(committee.chain_id());
        let cache_key = self.cache_key(&digest);
        if cache.contains(&cache_key) {
            return Ok(());
        }
        ensure!(
            self.signers.fits(committee.size()),
            ConsensusError::MalformedCertificate("bad signer bitmap")
        );
        let count = self.signers.count();
        ensure!(
            count == self.signatures.len(),
            ConsensusError::MalformedCertificate("signature count mismatch")
        );
        ensure!(
            count >= committee.quorum(),
            ConsensusError::NoQuorum { got: count, needed: committee.quorum() }
        );
        let mut items = Vec::with_capacity(count);
        for (signer, sig) in self.signers.iter().zip(&self.signatures) {
            let key = committee.key(signer).ok_or(ConsensusError::UnknownValidator(signer))?;
            items.push(BatchItem {
                domain: domains::VOTE,
                msg: digest.as_bytes(),
                key: VerifyKey::Prepared(key),
                sig,
            });
        }
        check_all(&items, |i| self.signers.iter().nth(i).unwrap_or(0))?;
        cache.insert(cache_key);
        Ok(())
    }

    /// What the cache remembers of this certificate: everything, given its signing digest.
    fn cache_key(&self, signing_digest: &Digest) -> Digest {
        let mut builder = DigestBuilder::new("bastion/qc-cache/v1")
            .digest(signing_digest)
            .var_bytes(&self.signers.0)
            .u64(self.signatures.len() as u64);
        for signature in &self.signatures {
            builder = builder.bytes(signature.as_bytes());
        }
        builder.finish()
    }
}

/// One signer's part of a timeout certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutSignature {
    pub author: ValidatorIndex,
    pub high_qc_round: Round,
    pub signature: Signature,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutCert {
    pub round: Round,
    /// Sorted by author, no author twice.
    pub signatures: Vec<TimeoutSignature>,
}

impl TimeoutCert {
    /// Assembles a certificate from timeouts for `round` (distinct authors, any order).
    pub fn from_timeouts(round: Round, timeouts: &[&Timeout]) -> Self {
        let mut signatures: Vec<TimeoutSignature> = timeouts
            .iter()
            .map(|t| TimeoutSignature {
                author: t.author,
                high_qc_round: t.high_qc.round(),
                signature: t.signature,
            })
            .collect();
        signatures.sort_by_key(|s| s.author);
        TimeoutCert { round, signatures }
    }

    /// The highest QC round any signer reported: a proposal justified by this certificate
    /// must extend a QC at least this high.
    pub fn highest_qc_round(&self) -> Round {
        self.signatures.iter().map(|s| s.high_qc_round).max().unwrap_or(0)
    }

    fn content_digest(&self, chain_id: &str) -> Digest {
        let mut builder =
            DigestBuilder::new("bastion/timeout-cert/v1").var_bytes(chain_id.as_bytes()).u64(self.round);
        for s in &self.signatures {
            builder = builder.u64(u64::from(s.author)).u64(s.high_qc_round).bytes(s.signature.as_bytes());
        }
        builder.finish()
    }

    pub fn verify(&self, committee: &Committee, cache: &mut CertificateCache) -> Result<(), ConsensusError> {
        let content = self.content_digest(committee.chain_id());
        if cache.contains(&content) {
            return Ok(());
        }
        ensure!(
            self.signatures.windows(2).all(|w| w[0].author < w[1].author),
            ConsensusError::MalformedCertificate("timeout signers not sorted and distinct")
        );
        ensure!(
            self.signatures.len() >= committee.quorum(),
            ConsensusError::NoQuorum { got: self.signatures.len(), needed: committee.quorum() }
        );
        ensure!(
            self.signatures.iter().all(|s| s.high_qc_round < self.round),
            ConsensusError::MalformedCertificate("timeout reports a QC from its own round or later")
        );
        let digests: Vec<Digest> = self
            .signatures
            .iter()
            .map(|s| Timeout::signing_digest(committee.chain_id(), self.round, s.high_qc_round))
            .collect();
        let mut items = Vec::with_capacity(self.signatures.len());
        for (s, digest) in self.signatures.iter().zip(&digests) {
            let key = committee.key(s.author).ok_or(ConsensusError::UnknownValidator(s.author))?;
            items.push(BatchItem {
                domain: domains::TIMEOUT,
                msg: digest.as_bytes(),
                key: VerifyKey::Prepared(key),
                sig: &s.signature,
            });
        }
        check_all(&items, |i| self.signatures.get(i).map_or(0, |s| s.author))?;
        cache.insert(content);
        Ok(())
    }
}

/// Batch-verifies `items`; on failure names the first bad signer.
fn check_all(
    items: &[BatchItem<'_>],
    signer_of: impl Fn(usize) -> ValidatorIndex,
) -> Result<(), ConsensusError> {
    if bastion_crypto::verify_batch(items).is_ok() {
        return Ok(());
    }
    let bad = find_invalid(items);
    Err(ConsensusError::InvalidSignature(signer_of(bad.first().copied().unwrap_or(0))))
}

/// Digests of certificates already verified; bounded (cleared when full).
#[derive(Debug, Default)]
pub struct CertificateCache {
    verified: HashSet<Digest>,
}

impl CertificateCache {
    const CAPACITY: usize = 4096;

    pub fn contains(&self, digest: &Digest) -> bool {
        self.verified.contains(digest)
    }

    pub fn insert(&mut self, digest: Digest) {
        if self.verified.len() >= Self::CAPACITY {
            self.verified.clear();
        }
        self.verified.insert(digest);
    }

    /// Records a quorum certificate this validator assembled from verified votes.
    pub fn insert_qc(&mut self, qc: &QuorumCert, chain_id: &str) {
        self.insert(qc.cache_key(&qc.data.signing_digest(chain_id)));
    }

    /// Records a timeout certificate this validator assembled from verified timeouts.
    pub fn insert_tc(&mut self, tc: &TimeoutCert, chain_id: &str) {
        self.insert(tc.content_digest(chain_id));
    }

    pub fn len(&self) -> usize {
        self.verified.len()
    }

    pub fn is_empty(&self) -> bool {
        self.verified.is_empty()
    }
}
