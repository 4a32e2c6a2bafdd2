//! Typed errors of the crypto crate.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CryptoError {
    #[error("invalid signature")]
    InvalidSignature,
    #[error("public key is not a valid curve point")]
    InvalidPublicKey,
    #[error("signature scalar is not canonical")]
    NonCanonicalScalar,
    #[error("invalid hex: {0}")]
    InvalidHex(String),
    #[error("expected {expected} bytes, got {actual}")]
    InvalidLength { expected: usize, actual: usize },
}
