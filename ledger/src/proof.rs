//! Proofs that a key has a value, or no value, under a state root.
//!
//! A proof is checked against a root alone: whoever built it is not trusted. The root
//! itself must come from somewhere trusted, e.g. a block certified by `2f+1` validators.
//! [`AccountProof`] and [`StorageProof`] carry the key and the claimed value; their
//! `verify` checks that the key is the one asked about and that the proof ties the value
//! (or its absence) to the root, and then returns the value. [`StateProof`] does the same
//! for any [`StateKey`]; a view's witness is a list of them.
//!
//! In JSON the Merkle path ([`MerkleProof`]) is the hex of its canonical encoding; in
//! bincode it is the structure itself.

use bastion_crypto::Digest;
use jmt::RootHash;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{self, hex_bytes, hex_bytes_option};
use crate::error::ProofError;
use crate::tree::Proof;
use crate::{Account, Address, StateKey};

/// A sparse-Merkle path from one key's leaf (or empty slot) to the root.
#[derive(Clone, Debug, PartialEq)]
pub struct MerkleProof(pub(crate) Proof);

impl MerkleProof {
    /// Checks that under `root`, `key` holds exactly `value` (`None`: holds nothing).
    pub fn verify(&self, root: Digest, key: &StateKey, value: Option<&[u8]>) -> Result<(), ProofError> {
        self.0.verify(RootHash(root.0), key.key_hash(), value).map_err(|e| ProofError::Invalid(e.to_string()))
    }
}

impl Serialize for MerkleProof {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            let bytes = codec::encode(&self.0).map_err(serde::ser::Error::custom)?;
            s.serialize_str(&hex::encode(bytes))
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for MerkleProof {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            let bytes = hex::decode(text).map_err(serde::de::Error::custom)?;
            codec::decode(&bytes).map(MerkleProof).map_err(serde::de::Error::custom)
        } else {
            Proof::deserialize(d).map(MerkleProof)
        }
    }
}

/// An account (or its absence) at a height, with its proof.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountProof {
    pub address: Address,
    pub height: u64,
    pub account: Option<Account>,
    pub proof: MerkleProof,
}

impl AccountProof {
    /// The account at `address` under `root` (`None`: no such account), if the proof holds.
    pub fn verify(&self, root: Digest, address: &Address) -> Result<Option<Account>, ProofError> {
        if self.address != *address {
            return Err(ProofError::KeyMismatch);
        }
        let value = self.account.as_ref().map(codec::encode).transpose()?;
        self.proof.verify(root, &StateKey::Account(*address), value.as_deref())?;
        Ok(self.account.clone())
    }
}

/// A contract storage value (or its absence) at a height, with its proof.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StorageProof {
    pub contract: Address,
    #[serde(with = "hex_bytes")]
    pub key: Vec<u8>,
    pub height: u64,
    #[serde(with = "hex_bytes_option")]
    pub value: Option<Vec<u8>>,
    pub proof: MerkleProof,
}

impl StorageProof {
    /// The value under (`contract`, `key`) under `root`, if the proof holds.
    pub fn verify(
        &self,
        root: Digest,
        contract: &Address,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, ProofError> {
        if self.contract != *contract || self.key != key {
            return Err(ProofError::KeyMismatch);
        }
        self.proof.verify(root, &StateKey::Storage(*contract, key.to_vec()), self.value.as_deref())?;
        Ok(self.value.clone())
    }
}

/// Any state key's value (or its absence) at a height, with its proof.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateProof {
    pub key: StateKey,
    #[serde(with = "hex_bytes_option")]
    pub value: Option<Vec<u8>>,
    pub proof: MerkleProof,
}

impl StateProof {
    /// Checks that under `root`, `self.key` holds exactly `self.value`.
    pub fn verify(&self, root: Digest) -> Result<(), ProofError> {
        self.proof.verify(root, &self.key, self.value.as_deref())
    }
}
