//! The validator set: who may vote, who leads which round, and what a quorum is.
//!
//! Validators are numbered `0..n` in genesis order; every validator has voting power 1.
//! With `f = (n - 1) / 3`, a quorum is `n - f` (that is `2f + 1` when `n = 3f + 1`), so any
//! two quorums share at least one honest validator. Leaders rotate round-robin.

use bastion_crypto::{CryptoError, PreparedKey, PublicKey};

pub type Round = u64;
pub type Height = u64;
pub type ValidatorIndex = u16;

#[derive(Clone, Debug)]
pub struct Committee {
    chain_id: String,
    keys: Vec<PreparedKey>,
}

impl Committee {
    /// Decompresses every key once; fails if one is not a curve point or the set is empty.
    pub fn new(chain_id: impl Into<String>, keys: &[PublicKey]) -> Result<Self, CryptoError> {
        if keys.is_empty() || keys.len() > usize::from(ValidatorIndex::MAX) {
            return Err(CryptoError::InvalidLength { expected: 1, actual: keys.len() });
        }
        let keys = keys.iter().map(PreparedKey::new).collect::<Result<_, _>>()?;
        Ok(Committee { chain_id: chain_id.into(), keys })
    }

    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    pub fn size(&self) -> usize {
        self.keys.len()
    }

    /// The number of Byzantine validators tolerated.
    pub fn max_faulty(&self) -> usize {
        (self.keys.len() - 1) / 3
    }

    pub fn quorum(&self) -> usize {
        self.keys.len() - self.max_faulty()
    }

    /// `f + 1`: at least one of this many distinct validators is honest.
    pub fn validity_threshold(&self) -> usize {
        self.max_faulty() + 1
    }

    pub fn key(&self, index: ValidatorIndex) -> Option<&PreparedKey> {
        self.keys.get(usize::from(index))
    }

    pub fn public_keys(&self) -> impl Iterator<Item = &PublicKey> {
        self.keys.iter().map(|k| k.public())
    }

    pub fn index_of(&self, key: &PublicKey) -> Option<ValidatorIndex> {
        self.keys.iter().position(|k| k.public() == key).map(|i| i as ValidatorIndex)
    }

    pub fn contains(&self, index: ValidatorIndex) -> bool {
        usize::from(index) < self.keys.len()
    }

    pub fn leader(&self, round: Round) -> ValidatorIndex {
        (round % self.keys.len() as u64) as ValidatorIndex
    }

    pub fn indices(&self) -> impl Iterator<Item = ValidatorIndex> {
        0..self.keys.len() as ValidatorIndex
    }
}
