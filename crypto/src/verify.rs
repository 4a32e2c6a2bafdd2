//! The one ed25519 acceptance rule (ZIP215), for single and batch verification.
//!
//! A signature `(R, S)` by key `A` on message `M` is accepted iff
//! * `S` is a canonical scalar (`S < ℓ`),
//! * `A` and `R` decompress to curve points (non-canonical encodings of `y` accepted), and
//! * `[8]([S]B − R − [k]A) = 0` with `k = SHA-512(R_bytes ‖ A_bytes ‖ M) mod ℓ`, where `M` is
//!   the domain-prefixed message.
//!
//! The batch check draws a random 128-bit `z_i` per signature and tests
//! `[8](−(Σ z_i S_i)B + Σ z_i R_i + Σ (z_i k_i) A_i) = 0` with one multiscalar
//! multiplication. Because both checks are cofactored, a batch is accepted iff every member
//! is accepted singly (except with probability 2⁻¹²⁸): validity never depends on batching.
//! [`find_invalid`] bisects a failing batch to name the bad signatures.

use std::collections::HashMap;
use std::sync::Mutex;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use rand::Rng;
use sha2::{Digest as _, Sha512};

use crate::{CryptoError, Domain, PublicKey, Signature};

/// A public key decompressed once, for keys that sign often (validators, repeat senders).
#[derive(Clone, Copy, Debug)]
pub struct PreparedKey {
    key: PublicKey,
    point: EdwardsPoint,
}

impl PreparedKey {
    pub fn new(key: &PublicKey) -> Result<Self, CryptoError> {
        Ok(PreparedKey { key: *key, point: decompress_key(key)? })
    }

    pub fn public(&self) -> &PublicKey {
        &self.key
    }
}

/// The key of a [`BatchItem`]: raw bytes (decompressed during the check) or prepared.
#[derive(Clone, Copy, Debug)]
pub enum VerifyKey<'a> {
    Raw(&'a PublicKey),
    Prepared(&'a PreparedKey),
}

impl VerifyKey<'_> {
    fn bytes(&self) -> &[u8; 32] {
        match self {
            VerifyKey::Raw(k) => &k.0,
            VerifyKey::Prepared(p) => &p.key.0,
        }
    }

    fn point(&self) -> Result<EdwardsPoint, CryptoError> {
        match self {
            VerifyKey::Raw(k) => decompress_key(k),
            VerifyKey::Prepared(p) => Ok(p.point),
        }
    }
}

/// One signature to check.
#[derive(Clone, Copy, Debug)]
pub struct BatchItem<'a> {
    pub domain: Domain,
    pub msg: &'a [u8],
    pub key: VerifyKey<'a>,
    pub sig: &'a Signature,
}

/// The decoded parts of one signature check: `(A, R, S, k)`.
struct Decoded {
    a: EdwardsPoint,
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

fn decompress_key(key: &PublicKey) -> Result<EdwardsPoint, CryptoError> {
    CompressedEdwardsY(key.0).decompress().ok_or(CryptoError::InvalidPublicKey)
}

fn decode(item: &BatchItem<'_>) -> Result<Decoded, CryptoError> {
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&item.sig.0[..32]);
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&item.sig.0[32..]);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))
        .ok_or(CryptoError::NonCanonicalScalar)?;
    let r = CompressedEdwardsY(r_bytes).decompress().ok_or(CryptoError::InvalidSignature)?;
    let a = item.key.point()?;
    let (len, tag) = item.domain.prefix();
    let hash = Sha512::new()
        .chain_update(r_bytes)
        .chain_update(item.key.bytes())
        .chain_update(len)
        .chain_update(tag)
        .chain_update(item.msg);
    let k = Scalar::from_hash(hash);
    Ok(Decoded { a, r, s, k })
}

fn check_one(item: &BatchItem<'_>) -> Result<(), CryptoError> {
    let d = decode(item)?;
    // [S]B − [k]A − R, then clear the cofactor.
    let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&d.k, &(-d.a), &d.s);
    if (sb_minus_ka - d.r).mul_by_cofactor().is_identity() {
        Ok(())
    } else {
        Err(CryptoError::InvalidSignature)
    }
}

/// Verifies one signature under the ZIP215 rule.
pub fn verify(domain: Domain, msg: &[u8], key: &PublicKey, sig: &Signature) -> Result<(), CryptoError> {
    check_one(&BatchItem { domain, msg, key: VerifyKey::Raw(key), sig })
}

/// Verifies all signatures at once; `Ok` iff each one would pass [`verify`].
pub fn verify_batch(items: &[BatchItem<'_>]) -> Result<(), CryptoError> {
    match items {
        [] => Ok(()),
        [one] => check_one(one),
        _ => check_many(items),
    }
}

fn check_many(items: &[BatchItem<'_>]) -> Result<(), CryptoError> {
    let mut rng = rand::thread_rng();
    let mut scalars = Vec::with_capacity(2 * items.len() + 1);
    let mut points = Vec::with_capacity(2 * items.len() + 1);
    let mut b_coefficient = Scalar::ZERO;
    for item in items {
        let d = decode(item)?;
        let z = Scalar::from(rng.gen::<u128>());
        b_coefficient -= z * d.s;
        scalars.push(z);
        points.push(d.r);
        scalars.push(z * d.k);
        points.push(d.a);
    }
    scalars.push(b_coefficient);
    points.push(ED25519_BASEPOINT_POINT);
    let sum = EdwardsPoint::vartime_multiscalar_mul(scalars, points);
    if sum.mul_by_cofactor().is_identity() {
        Ok(())
    } else {
        Err(CryptoError::InvalidSignature)
    }
}

/// Indices of the signatures that fail [`verify`], found by bisecting failing batches: a
/// batch with one bad signature costs about `2·log2(n)` extra sub-batch checks.
pub fn find_invalid(items: &[BatchItem<'_>]) -> Vec<usize> {
    let mut bad = Vec::new();
    bisect(items, 0, &mut bad);
    bad
}

fn bisect(items: &[BatchItem<'_>], offset: usize, bad: &mut Vec<usize>) {
    if verify_batch(items).is_ok() {
        return;
    }
    if items.len() == 1 {
        bad.push(offset);
        return;
    }
    let mid = items.len() / 2;
    bisect(&items[..mid], offset, bad);
    bisect(&items[mid..], offset + mid, bad);
}

/// A bounded, thread-safe cache of decompressed keys (repeat senders, validators).
pub struct KeyCache {
    capacity: usize,
    keys: Mutex<HashMap<PublicKey, PreparedKey>>,
}

impl KeyCache {
    pub fn new(capacity: usize) -> Self {
        KeyCache { capacity: capacity.max(1), keys: Mutex::new(HashMap::new()) }
    }

    /// The prepared form of `key`, decompressing (and caching) it on a miss.
    pub fn prepare(&self, key: &PublicKey) -> Result<PreparedKey, CryptoError> {
        let mut keys = self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(prepared) = keys.get(key) {
            return Ok(*prepared);
        }
        let prepared = PreparedKey::new(key)?;
        if keys.len() >= self.capacity {
            // Arbitrary eviction keeps the bound without an LRU's per-hit bookkeeping.
            if let Some(victim) = keys.keys().next().copied() {
                keys.remove(&victim);
            }
        }
        keys.insert(*key, prepared);
        Ok(prepared)
    }

    pub fn len(&self) -> usize {
        self.keys.lock().map(|k| k.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
