//! The one canonical binary encoding of the ledger, and its size limits.
//!
//! Everything the ledger signs, hashes or stores is encoded with bincode under one fixed
//! configuration: fixed-width little-endian integers, a byte limit, and trailing bytes
//! rejected. Under these options decoding is injective (every accepted byte string is the
//! encoding of exactly one value), so `encode(decode(bytes)) == bytes` and a hash of the
//! received bytes is a hash of the value.
//!
//! Decoding never allocates more than the input's length: the limit passed to bincode is
//! the input size, so a forged length prefix fails instead of reserving memory.
//!
//! [`hex_bytes`] is the serde adapter for byte fields: hex strings in JSON, raw
//! length-prefixed bytes in bincode.

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::CodecError;

/// Largest encoded transaction accepted anywhere (API, mempool, block).
pub const MAX_TX_BYTES: usize = 256 * 1024;
/// Largest contract module (binary WebAssembly) a deploy may carry.
pub const MAX_CODE_BYTES: usize = 128 * 1024;
/// Longest chain id.
pub const MAX_CHAIN_ID_BYTES: usize = 64;
/// Longest contract method name.
pub const MAX_METHOD_BYTES: usize = 64;
/// Largest single value the codec will encode or decode (blocks of receipts, proofs, ...).
pub const MAX_ENCODED_BYTES: usize = 64 * 1024 * 1024;

fn options(limit: u64) -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
        .with_limit(limit)
}

/// Encodes `value` canonically.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    options(MAX_ENCODED_BYTES as u64).serialize(value).map_err(|e| CodecError::Encode(e.to_string()))
}

/// The encoded size of `value`, without encoding it.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, CodecError> {
    let len = options(MAX_ENCODED_BYTES as u64)
        .serialized_size(value)
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    usize::try_from(len).map_err(|_| CodecError::TooLarge { size: usize::MAX, max: MAX_ENCODED_BYTES })
}

/// Decodes a `T` that must span all of `bytes`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_ENCODED_BYTES {
        return Err(CodecError::TooLarge { size: bytes.len(), max: MAX_ENCODED_BYTES });
    }
    options(bytes.len() as u64).deserialize(bytes).map_err(|e| CodecError::Decode(e.to_string()))
}

/// Serde adapter for `Vec<u8>` fields: lowercase hex in human-readable formats (JSON),
/// length-prefixed raw bytes in binary ones (bincode).
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(bytes))
        } else {
            s.serialize_bytes(bytes)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            let text = text.strip_prefix("0x").unwrap_or(&text);
            hex::decode(text).map_err(serde::de::Error::custom)
        } else {
            serde_bytes::ByteBuf::deserialize(d).map(serde_bytes::ByteBuf::into_vec)
        }
    }
}

/// [`hex_bytes`] for `Option<Vec<u8>>` fields.
pub mod hex_bytes_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize)]
    struct Borrowed<'a>(#[serde(with = "super::hex_bytes")] &'a [u8]);

    #[derive(Deserialize)]
    struct Wrapped(#[serde(with = "super::hex_bytes")] Vec<u8>);

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        bytes.as_deref().map(Borrowed).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
    }
}
