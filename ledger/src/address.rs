//! Account and contract addresses.
//!
//! An [`Address`] is 32 bytes. A user account's address is its ed25519 public key; a
//! contract's address is `SHA-256(deployer public key ‖ deploy nonce as u64 LE)`, which is
//! unique because a deployer never reuses a nonce. Addresses display and serialize (JSON) as
//! lowercase hex, and encode as 32 raw bytes in bincode, like [`Digest`].

use std::fmt;
use std::str::FromStr;

use bastion_crypto::{sha256, CryptoError, Digest, PublicKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Address(pub [u8; 32]);

impl Address {
    /// The address no key controls; the caller of a read-only view.
    pub const ZERO: Address = Address([0; 32]);

    /// The account of the holder of `key`.
    pub fn from_public_key(key: &PublicKey) -> Self {
        Address(key.0)
    }

    /// The address of the contract `deployer` creates with its transaction of nonce `nonce`.
    pub fn contract(deployer: &PublicKey, nonce: u64) -> Self {
        let mut preimage = [0u8; 40];
        preimage[..32].copy_from_slice(&deployer.0);
        preimage[32..].copy_from_slice(&nonce.to_le_bytes());
        Address(sha256(&preimage).0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits, with or without a `0x` prefix.
    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        Digest::from_hex(s).map(|d| Address(d.0))
    }
}

impl From<PublicKey> for Address {
    fn from(key: PublicKey) -> Self {
        Address::from_public_key(&key)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..12])
    }
}

impl FromStr for Address {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::from_hex(s)
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Digest(self.0).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Digest::deserialize(d).map(|digest| Address(digest.0))
    }
}
