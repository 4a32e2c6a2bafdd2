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

/// How maps and sets keyed by digests hash them: foldhash, seeded at random per process.
/// A validator keeps sets of tens of thousands of transaction hashes (duplicates within a
/// block, the index entries waiting for their bulk write, the mempool); the standard
/// library's SipHash cost about 3 % of the machine at 50,000 tx/s. The random seed matters:
/// senders choose their transactions, so they can grind hashes that an unseeded hash would
/// put in one bucket.
pub type DigestHashState = foldhash::quality::RandomState;
/// A hash map keyed by digests; create it with `DigestMap::default()`.
pub type DigestMap<V> = std::collections::HashMap<Digest, V, DigestHashState>;
/// A hash set of digests; create it with `DigestSet::default()`.
pub type DigestSet = std::collections::HashSet<Digest, DigestHashState>;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub const ZERO: Digest = Digest([0; 32]);

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        self.with_hex(str::to_owned)
    }

    /// Calls `f` with the lowercase hex of the digest, built on the stack: event streams
    /// and JSON responses write tens of thousands of hashes a second.
    fn with_hex<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let mut chars = [0u8; 64];
        for (pair, byte) in chars.chunks_exact_mut(2).zip(self.0) {
            pair[0] = HEX_DIGITS[usize::from(byte >> 4)];
            pair[1] = HEX_DIGITS[usize::from(byte & 0x0f)];
        }
        // Always ASCII; the empty fallback is never taken.
        f(std::str::from_utf8(&chars).unwrap_or_default())
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

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

pub(crate) fn hex_array<const N: usize>(s: &str) -> Result<[u8; N], CryptoError> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let mut bytes = [0u8; N];
    if s.len() == 2 * N {
        hex::decode_to_slice(s, &mut bytes).map_err(|e| CryptoError::InvalidHex(e.to_string()))?;
        return Ok(bytes);
    }
    // The wrong length: report bad characters first, as a full decode would.
    let decoded = hex::decode(s).map_err(|e| CryptoError::InvalidHex(e.to_string()))?;
    Err(CryptoError::InvalidLength { expected: N, actual: decoded.len() })
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_hex(|hex| f.write_str(hex))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_hex(|hex| f.write_str(&hex[..12]))
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
            self.with_hex(|hex| s.serialize_str(hex))
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            d.deserialize_str(HexVisitor)
        } else {
            <[u8; 32]>::deserialize(d).map(Digest)
        }
    }
}

/// Reads a hex digest from a borrowed or transient string, without an owned copy.
struct HexVisitor;

impl serde::de::Visitor<'_> for HexVisitor {
    type Value = Digest;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SHA-256 digest as 64 hex digits")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Digest, E> {
        Digest::from_hex(s).map_err(E::custom)
    }
}
