//! Bastion's cryptographic primitives.
//!
//! * [`Digest`]: SHA-256 digests, computed once and carried.
//! * [`KeyPair`], [`PublicKey`], [`Signature`]: ed25519 keys; every signature is made over a
//!   [`Domain`]-separated message so a vote can never be replayed as a transaction.
//! * [`verify`], [`verify_batch`], [`find_invalid`] and their rayon versions
//!   [`verify_batch_parallel`], [`find_invalid_parallel`]: ONE acceptance rule (ZIP215:
//!   canonical `S`, any encoding of `A` and `R` that decompresses, cofactored equation)
//!   shared by single and batch verification, so whether a signature is valid never depends
//!   on how it was checked.
//! * [`PreparedKey`], [`KeyCache`]: keys decompressed once for validators and repeat senders.
//! * [`merkle_root`]: a binary Merkle root over a list of digests.
//!
//! This crate does no I/O and nothing async.

mod digest;
mod error;
mod key_cache;
mod keys;
mod merkle;
mod parallel;
#[doc(hidden)]
pub mod raw;
mod verify;

pub use digest::{sha256, Digest, DigestBuilder, DigestHashState, DigestMap, DigestSet};
pub use error::CryptoError;
pub use key_cache::KeyCache;
pub use keys::{Domain, KeyPair, PublicKey, Signature};
pub use merkle::merkle_root;
pub use parallel::{find_invalid_parallel, verify_batch_parallel, MIN_PIECE};
pub use verify::{find_invalid, verify, verify_batch, BatchItem, PreparedKey, VerifyKey};
