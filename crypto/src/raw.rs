//! Verification of un-prefixed messages under the same ZIP215 rule.
//!
//! Bastion signs only domain-prefixed messages; this module exists so that published test
//! vectors (RFC 8032, "Taming the many EdDSAs"), which sign raw messages, can be checked
//! against exactly the code paths that [`crate::verify()`], [`crate::verify_batch`] and
//! [`crate::find_invalid`] use. It is not for protocol use: a raw message has no domain.

use sha2::{Digest as _, Sha512};

use crate::verify::{find_invalid_in, verify_all, verify_one, SignedMessage, VerifyKey};
use crate::{CryptoError, PublicKey, Signature};

/// A signature over a raw (un-prefixed) message.
#[derive(Clone, Copy, Debug)]
pub struct RawItem<'a> {
    pub msg: &'a [u8],
    pub key: &'a PublicKey,
    pub sig: &'a Signature,
}

impl SignedMessage for RawItem<'_> {
    fn key(&self) -> VerifyKey<'_> {
        VerifyKey::Raw(self.key)
    }

    fn sig(&self) -> &Signature {
        self.sig
    }

    fn hash_message(&self, hasher: &mut Sha512) {
        hasher.update(self.msg);
    }
}

/// The single check on a raw message.
pub fn verify_raw(msg: &[u8], key: &PublicKey, sig: &Signature) -> Result<(), CryptoError> {
    verify_one(&RawItem { msg, key, sig })
}

/// The batch check on raw messages.
pub fn verify_batch_raw(items: &[RawItem<'_>]) -> Result<(), CryptoError> {
    verify_all(items)
}

/// Bisection on raw messages.
pub fn find_invalid_raw(items: &[RawItem<'_>]) -> Vec<usize> {
    find_invalid_in(items)
}
