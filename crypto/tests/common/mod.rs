//! Shared test helpers.
//!
//! Signatures are built by hand on the curve so tests can produce every case ZIP215 has to
//! decide: keys and nonces with small-order or mixed-order components, every encoding a
//! point has (non-canonical `y`, "negative zero"), non-canonical `S`. `ed25519-consensus`
//! (a ZIP215 implementation on a different curve library) is the reference verifier.

#![allow(dead_code)] // each test binary uses a different subset

use bastion_crypto::{BatchItem, Domain, PublicKey, Signature, VerifyKey};
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest as _, Sha512};

pub const DOMAIN: Domain = Domain("bastion/test/v1");
pub const OTHER_DOMAIN: Domain = Domain("bastion/test/other/v1");

/// ℓ, the order of the prime-order subgroup, little-endian.
pub const ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

pub fn unhex<const N: usize>(s: &str) -> [u8; N] {
    let bytes = hex::decode(s).expect("test data is hex");
    bytes.try_into().expect("test data has the expected length")
}

/// A scalar derived from a seed (uniform-looking, never zero in practice).
pub fn scalar_from_seed(seed: &[u8]) -> Scalar {
    Scalar::from_hash(Sha512::new().chain_update(b"bastion-test-scalar").chain_update(seed))
}

/// Every 32-byte string that decompresses to `point`, canonical encoding first.
///
/// Only points with `y < 19` have a second `y` encoding (`y + p < 2^255`), and only points
/// with `x = 0` accept the sign bit both ways ("negative zero").
pub fn encodings(point: &EdwardsPoint) -> Vec<[u8; 32]> {
    let canonical = point.compress().to_bytes();
    let mut out = vec![canonical];
    let sign = canonical[31] & 0x80;
    let y_is_small =
        canonical[0] < 19 && canonical[1..31].iter().all(|b| *b == 0) && canonical[31] & 0x7f == 0;
    if y_is_small {
        // y + p, with p = 2^255 - 19 = ed ff .. ff 7f (little-endian).
        let mut alternative = [0xff; 32];
        alternative[0] = canonical[0] + 0xed;
        alternative[31] = 0x7f | sign;
        out.push(alternative);
    }
    if *point == -point {
        let flipped: Vec<[u8; 32]> = out
            .iter()
            .map(|e| {
                let mut f = *e;
                f[31] ^= 0x80;
                f
            })
            .collect();
        out.extend(flipped);
    }
    out
}

/// `s + ℓ` as 32 little-endian bytes: the same scalar mod ℓ, but not canonical.
pub fn add_order(s: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(s[i]) + u16::from(ORDER[i]) + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "s + ℓ fits in 256 bits for any canonical s");
    out
}

/// How to build one signature: key `A = [secret]B + T_key`, nonce point
/// `R = [nonce]B + T_nonce`, each sent in the chosen encoding.
#[derive(Clone, Debug)]
pub struct Forgery {
    pub secret: Scalar,
    pub key_torsion: usize,
    pub key_encoding: usize,
    pub nonce: Scalar,
    pub nonce_torsion: usize,
    pub nonce_encoding: usize,
    /// Hash the canonical encodings of `R` and `A` instead of the bytes sent (the mistake a
    /// verifier that re-encodes would make; valid only when that changes nothing).
    pub hash_canonical: bool,
}

impl Forgery {
    pub fn honest(secret: Scalar, nonce: Scalar) -> Self {
        Forgery {
            secret,
            key_torsion: 0,
            key_encoding: 0,
            nonce,
            nonce_torsion: 0,
            nonce_encoding: 0,
            hash_canonical: false,
        }
    }

    pub fn key_point(&self) -> EdwardsPoint {
        ED25519_BASEPOINT_POINT * self.secret + EIGHT_TORSION[self.key_torsion % 8]
    }

    pub fn key(&self) -> PublicKey {
        let all = encodings(&self.key_point());
        PublicKey(all[self.key_encoding % all.len()])
    }

    pub fn nonce_point(&self) -> EdwardsPoint {
        ED25519_BASEPOINT_POINT * self.nonce + EIGHT_TORSION[self.nonce_torsion % 8]
    }

    /// `R` as sent.
    pub fn nonce_bytes(&self) -> [u8; 32] {
        let all = encodings(&self.nonce_point());
        all[self.nonce_encoding % all.len()]
    }

    /// Whether `R` and `A` are sent in their canonical encodings.
    pub fn is_canonical(&self) -> bool {
        self.nonce_bytes() == self.nonce_point().compress().0 && self.key().0 == self.key_point().compress().0
    }

    /// Signs `signed` (the exact bytes covered, already domain-prefixed if wanted). The
    /// result passes the cofactored equation unless `hash_canonical` changed `k`.
    pub fn sign(&self, signed: &[u8]) -> Signature {
        let key = self.key();
        let r_bytes = self.nonce_bytes();
        let (hashed_r, hashed_a) = if self.hash_canonical {
            (self.nonce_point().compress().to_bytes(), self.key_point().compress().to_bytes())
        } else {
            (r_bytes, key.0)
        };
        let k = Scalar::from_hash(
            Sha512::new().chain_update(hashed_r).chain_update(hashed_a).chain_update(signed),
        );
        let s = self.nonce + k * self.secret;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r_bytes);
        sig[32..].copy_from_slice(s.as_bytes());
        Signature(sig)
    }
}

/// A way to spoil a signed item after signing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corruption {
    None,
    /// One bit of the message flipped (or a byte appended to an empty message).
    Message,
    /// `S + 1`: still canonical, wrong.
    ScalarPlusOne,
    /// `S + ℓ`: the same value mod ℓ, non-canonical, must be rejected.
    ScalarPlusOrder,
    /// `R` replaced by `R + B`.
    NonceShifted,
    /// `R` replaced by 32 arbitrary bytes (may not decompress).
    NonceGarbage,
    /// The key replaced by 32 arbitrary bytes (may not decompress).
    KeyGarbage,
    /// Signed in another domain.
    WrongDomain,
}

pub const CORRUPTIONS: [Corruption; 8] = [
    Corruption::None,
    Corruption::Message,
    Corruption::ScalarPlusOne,
    Corruption::ScalarPlusOrder,
    Corruption::NonceShifted,
    Corruption::NonceGarbage,
    Corruption::KeyGarbage,
    Corruption::WrongDomain,
];

/// One signed message as Bastion sees it (in [`DOMAIN`]).
#[derive(Clone, Debug)]
pub struct Signed {
    pub msg: Vec<u8>,
    pub key: PublicKey,
    pub sig: Signature,
}

impl Signed {
    pub fn forge(forgery: &Forgery, msg: &[u8], corruption: Corruption, garbage: [u8; 32]) -> Signed {
        let domain = if corruption == Corruption::WrongDomain { OTHER_DOMAIN } else { DOMAIN };
        let mut signed =
            Signed { msg: msg.to_vec(), key: forgery.key(), sig: forgery.sign(&domain.signed_bytes(msg)) };
        match corruption {
            Corruption::None | Corruption::WrongDomain => {}
            Corruption::Message => match signed.msg.first_mut() {
                Some(byte) => *byte ^= 0x01,
                None => signed.msg.push(0),
            },
            Corruption::ScalarPlusOne => {
                let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(signed.s_bytes()))
                    .expect("the signer makes a canonical S");
                signed.sig.0[32..].copy_from_slice((s + Scalar::ONE).as_bytes());
            }
            Corruption::ScalarPlusOrder => {
                let shifted = add_order(&signed.s_bytes());
                signed.sig.0[32..].copy_from_slice(&shifted);
            }
            Corruption::NonceShifted => {
                let r = CompressedEdwardsY(signed.r_bytes()).decompress().expect("signer sends a valid R");
                signed.sig.0[..32].copy_from_slice((r + ED25519_BASEPOINT_POINT).compress().as_bytes());
            }
            Corruption::NonceGarbage => signed.sig.0[..32].copy_from_slice(&garbage),
            Corruption::KeyGarbage => signed.key = PublicKey(garbage),
        }
        signed
    }

    pub fn r_bytes(&self) -> [u8; 32] {
        self.sig.0[..32].try_into().expect("a signature is 64 bytes")
    }

    pub fn s_bytes(&self) -> [u8; 32] {
        self.sig.0[32..].try_into().expect("a signature is 64 bytes")
    }

    pub fn item(&self) -> BatchItem<'_> {
        BatchItem { domain: DOMAIN, msg: &self.msg, key: VerifyKey::Raw(&self.key), sig: &self.sig }
    }

    /// The exact bytes the reference verifier must see.
    pub fn signed_bytes(&self) -> Vec<u8> {
        DOMAIN.signed_bytes(&self.msg)
    }

    pub fn consensus_accepts(&self) -> bool {
        consensus_accepts(&self.key.0, &self.sig.0, &self.signed_bytes())
    }
}

/// The reference ZIP215 single check (ed25519-consensus) on raw bytes.
pub fn consensus_accepts(key: &[u8; 32], sig: &[u8; 64], msg: &[u8]) -> bool {
    match ed25519_consensus::VerificationKey::try_from(*key) {
        Ok(vk) => vk.verify(&ed25519_consensus::Signature::from(*sig), msg).is_ok(),
        Err(_) => false,
    }
}

/// The reference ZIP215 batch check (ed25519-consensus) on raw bytes.
pub fn consensus_batch_accepts(items: &[([u8; 32], [u8; 64], Vec<u8>)]) -> bool {
    let mut verifier = ed25519_consensus::batch::Verifier::new();
    for (key, sig, msg) in items {
        let key = ed25519_consensus::VerificationKeyBytes::from(*key);
        verifier.queue((key, ed25519_consensus::Signature::from(*sig), msg));
    }
    verifier.verify(rand::thread_rng()).is_ok()
}
