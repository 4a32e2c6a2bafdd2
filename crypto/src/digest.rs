//! SHA-256 digests.
//!
//! A [`Digest`] is 32 bytes; it displays as lowercase hex and serializes as hex in
//! human-readable formats (JSON) and as raw bytes in binary ones (bincode). Structured data
//! is hashed with a [`DigestBuilder`], which starts with a length-prefixed domain tag so two
//! kinds of object can never share a digest.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::CryptoError;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub const ZERO: Digest = Digest([0; 32]);

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        Ok(Digest(hex_array(s)?))
    }
}

/// SHA-256 of `data` (uses the CPU's SHA extensions when present).
pub fn sha256(data: &[u8]) -> Digest {
    Digest(Sha256::digest(data).into())
}

/// Incremental, domain-separated hashing of structured data.
pub struct DigestBuilder(Sha256);

impl DigestBuilder {
    pub fn new(domain: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update([domain.len() as u8]);
        hasher.update(domain.as_bytes());
        DigestBuilder(hasher)
    }

    pub fn bytes(mut self, data: &[u8]) -> Self {
        self.0.update(data);
        self
    }

    /// Length-prefixed bytes: use for variable-length fields so concatenations are unambiguous.
    pub fn var_bytes(mut self, data: &[u8]) -> Self {
        self.0.update((data.len() as u64).to_le_bytes());
        self.0.update(data);
        self
    }

    pub fn u64(mut self, value: u64) -> Self {
        self.0.update(value.to_le_bytes());
        self
    }

    pub fn digest(mut self, digest: &Digest) -> Self {
        self.0.update(digest.0);
        self
    }

    pub fn finish(self) -> Digest {
        Digest(self.0.finalize().into())
    }
}

pub(crate) fn hex_array<const N: usize>(s: &str) -> Result<[u8; N], CryptoError> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let bytes = hex::decode(s).map_err(|e| CryptoError::InvalidHex(e.to_string()))?;
    let actual = bytes.len();
    bytes.try_into().map_err(|_| CryptoError::InvalidLength { expected: N, actual })
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..12])
    }
}

impl FromStr for Digest {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::from_hex(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Digest::from_hex(&s).map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(d).map(Digest)
        }
    }
}
