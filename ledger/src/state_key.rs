//! The typed keys of the state tree and how they map to tree keys.
//!
//! | key | value |
//! |---|---|
//! | `Account(address)` | `codec::encode(Account)` |
//! | `Code(contract)` | the contract's binary WebAssembly module, raw |
//! | `Storage(contract, key)` | the raw bytes the contract stored under `key` |
//!
//! A key's position in the Jellyfish Merkle tree is [`StateKey::key_hash`]: SHA-256 under the
//! domain `"bastion/state-key/v1"` of a one-byte kind tag, the 32-byte address and (for
//! storage) the length-prefixed contract key. Distinct keys never share a preimage, so they
//! collide only if SHA-256 does.

use bastion_crypto::{Digest, DigestBuilder};
use jmt::KeyHash;
use serde::{Deserialize, Serialize};

use crate::Address;

/// Longest key a contract may use in its storage.
pub const MAX_STORAGE_KEY_BYTES: usize = 256;
/// Largest value a contract may store under one key.
pub const MAX_STORAGE_VALUE_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StateKey {
    Account(Address),
    Code(Address),
    Storage(Address, #[serde(with = "crate::codec::hex_bytes")] Vec<u8>),
}

impl StateKey {
    /// The key's path in the tree.
    pub fn digest(&self) -> Digest {
        let builder = DigestBuilder::new("bastion/state-key/v1");
        match self {
            StateKey::Account(address) => builder.bytes(&[0]).bytes(&address.0),
            StateKey::Code(address) => builder.bytes(&[1]).bytes(&address.0),
            StateKey::Storage(address, key) => builder.bytes(&[2]).bytes(&address.0).var_bytes(key),
        }
        .finish()
    }

    pub(crate) fn key_hash(&self) -> KeyHash {
        KeyHash(self.digest().0)
    }
}
