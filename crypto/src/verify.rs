//! The one ed25519 acceptance rule (ZIP215), for single and batch verification.
//!
//! A signature `(R, S)` by key `A` on message `M` is accepted iff
//! * `S` is a canonical scalar (`S < ℓ`),
//! * `A` and `R` decompress to curve points (non-canonical encodings of `y` and a "negative
//!   zero" sign bit accepted; small-order and mixed-order points accepted), and
//! * `[8]([S]B − R − [k]A) = 0` with `k = SHA-512(R_bytes ‖ A_bytes ‖ M) mod ℓ`, where
//!   `R_bytes` and `A_bytes` are the encodings exactly as given and `M` is the
//!   domain-prefixed message (see [`Domain`]).
//!
//! The batch check draws a random 128-bit `z_i` per signature and tests
//! `[8](−(Σ z_i S_i)B + Σ z_i R_i + Σ_A (Σ_{i: A_i = A} z_i k_i) A) = 0` with one vartime
//! multiscalar multiplication; a key that signs several items contributes one point (keys
//! are grouped by their bytes). Because both checks are cofactored, the torsion components
//! that the single check ignores vanish from the batch too — including the ones introduced
//! by reducing the coefficients `z_i k_i` mod ℓ, which is what makes a cofactorless batch
//! check (ed25519-dalek's) disagree with its own single check on mixed-order keys. So a
//! batch is accepted iff every member is accepted singly (a batch with a bad member passes
//! with probability at most about 2⁻¹²⁸): validity never depends on batching.
//!
//! [`find_invalid`] decodes each signature once and bisects failing batches to name the
//! bad ones; the result is exactly the set of items that [`verify`] rejects.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::convert::Infallible;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use rand::rngs::ThreadRng;
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

impl<'a> VerifyKey<'a> {
    /// The key's encoding as given; this, not a re-encoding of the point, enters `k`.
    fn bytes(self) -> &'a [u8; 32] {
        match self {
            VerifyKey::Raw(k) => &k.0,
            VerifyKey::Prepared(p) => &p.key.0,
        }
    }

    fn point(self) -> Result<EdwardsPoint, CryptoError> {
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

/// What the rule needs from a signed message: its key, its signature and the bytes `M`
/// that follow `R_bytes ‖ A_bytes` in the challenge hash.
pub(crate) trait SignedMessage {
    fn key(&self) -> VerifyKey<'_>;
    fn sig(&self) -> &Signature;
    fn hash_message(&self, hasher: &mut Sha512);
}

impl SignedMessage for BatchItem<'_> {
    fn key(&self) -> VerifyKey<'_> {
        self.key
    }

    fn sig(&self) -> &Signature {
        self.sig
    }

    fn hash_message(&self, hasher: &mut Sha512) {
        // Must feed exactly `Domain::signed_bytes(msg)`, without building it.
        let (len, tag) = self.domain.prefix();
        hasher.update(len);
        hasher.update(tag);
        hasher.update(self.msg);
    }
}

/// `R`, `S` and the challenge `k` of one signature. `A` is kept apart so that a key signing
/// several items of a batch is decompressed once.
struct SigParts {
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

/// A signature decoded once, for repeated sub-batch checks while bisecting.
struct Decoded<'k> {
    key: &'k [u8; 32],
    a: EdwardsPoint,
    parts: SigParts,
}

fn decompress_key(key: &PublicKey) -> Result<EdwardsPoint, CryptoError> {
    CompressedEdwardsY(key.0).decompress().ok_or(CryptoError::InvalidPublicKey)
}

fn decode_sig<T: SignedMessage>(item: &T) -> Result<SigParts, CryptoError> {
    let sig = &item.sig().0;
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&sig[..32]);
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&sig[32..]);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))
        .ok_or(CryptoError::NonCanonicalScalar)?;
    let r = CompressedEdwardsY(r_bytes).decompress().ok_or(CryptoError::InvalidSignature)?;
    let mut hasher = Sha512::new();
    hasher.update(r_bytes);
    hasher.update(item.key().bytes());
    item.hash_message(&mut hasher);
    Ok(SigParts { r, s, k: Scalar::from_hash(hasher) })
}

/// `[8]([S]B − [k]A − R) = 0`.
fn single_equation_holds(a: &EdwardsPoint, parts: &SigParts) -> bool {
    let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&parts.k, &(-a), &parts.s);
    (sb_minus_ka - parts.r).mul_by_cofactor().is_identity()
}

/// The batch equation under construction: `B`'s coefficient, one term per `R_i`, and one
/// per distinct key. The `R` terms and the key terms are kept in two runs rather than
/// interleaved: the multiscalar multiplication tests every term's digit at every bit
/// position, and the 128-bit `z_i` of the `R` terms have no digits in the upper half, so a
/// contiguous run of them branches predictably (measured: interleaving cost about 5 %).
struct BatchEquation<'k> {
    b_scalar: Scalar,
    r_scalars: Vec<Scalar>,
    r_points: Vec<EdwardsPoint>,
    key_scalars: Vec<Scalar>,
    key_points: Vec<EdwardsPoint>,
    key_slots: HashMap<&'k [u8; 32], usize>,
    rng: ThreadRng,
}

impl<'k> BatchEquation<'k> {
    fn with_capacity(items: usize) -> Self {
        BatchEquation {
            b_scalar: Scalar::ZERO,
            r_scalars: Vec::with_capacity(items),
            r_points: Vec::with_capacity(items),
            key_scalars: Vec::with_capacity(items),
            key_points: Vec::with_capacity(items),
            key_slots: HashMap::with_capacity(items),
            rng: rand::thread_rng(),
        }
    }

    /// Adds `z·(R + [k]A − [S]B)`; `key_point` runs only the first time `key` is seen.
    fn add<E>(
        &mut self,
        key: &'k [u8; 32],
        key_point: impl FnOnce() -> Result<EdwardsPoint, E>,
        parts: &SigParts,
    ) -> Result<(), E> {
        let z = Scalar::from(self.rng.gen::<u128>());
        self.b_scalar -= z * parts.s;
        self.r_scalars.push(z);
        self.r_points.push(parts.r);
        let zk = z * parts.k;
        match self.key_slots.entry(key) {
            Entry::Occupied(slot) => self.key_scalars[*slot.get()] += zk,
            Entry::Vacant(slot) => {
                let point = key_point()?;
                slot.insert(self.key_points.len());
                self.key_scalars.push(zk);
                self.key_points.push(point);
            }
        }
        Ok(())
    }

    fn holds(self) -> bool {
        let scalars = std::iter::once(self.b_scalar).chain(self.r_scalars).chain(self.key_scalars);
        let points = std::iter::once(ED25519_BASEPOINT_POINT).chain(self.r_points).chain(self.key_points);
        EdwardsPoint::vartime_multiscalar_mul(scalars, points).mul_by_cofactor().is_identity()
    }
}

pub(crate) fn verify_one<T: SignedMessage>(item: &T) -> Result<(), CryptoError> {
    let parts = decode_sig(item)?;
    let a = item.key().point()?;
    if single_equation_holds(&a, &parts) {
        Ok(())
    } else {
        Err(CryptoError::InvalidSignature)
    }
}

pub(crate) fn verify_all<T: SignedMessage>(items: &[T]) -> Result<(), CryptoError> {
    match items {
        [] => Ok(()),
        [one] => verify_one(one),
        many => verify_many(many),
    }
}

fn verify_many<T: SignedMessage>(items: &[T]) -> Result<(), CryptoError> {
    let mut equation = BatchEquation::with_capacity(items.len());
    for item in items {
        let parts = decode_sig(item)?;
        let key = item.key();
        equation.add(key.bytes(), || key.point(), &parts)?;
    }
    if equation.holds() {
        Ok(())
    } else {
        Err(CryptoError::InvalidSignature)
    }
}

pub(crate) fn find_invalid_in<T: SignedMessage>(items: &[T]) -> Vec<usize> {
    let mut bad = Vec::new();
    let mut decoded = Vec::with_capacity(items.len());
    let mut positions = Vec::with_capacity(items.len());
    let mut key_points: HashMap<&[u8; 32], Option<EdwardsPoint>> = HashMap::new();
    for (position, item) in items.iter().enumerate() {
        let key = item.key();
        let a = *key_points.entry(key.bytes()).or_insert_with(|| key.point().ok());
        match (a, decode_sig(item)) {
            (Some(a), Ok(parts)) => {
                decoded.push(Decoded { key: key.bytes(), a, parts });
                positions.push(position);
            }
            _ => bad.push(position),
        }
    }
    if !decoded_hold(&decoded) {
        bisect(&decoded, &positions, &mut bad);
    }
    bad.sort_unstable();
    bad
}

fn decoded_hold(decoded: &[Decoded<'_>]) -> bool {
    match decoded {
        [] => true,
        [one] => single_equation_holds(&one.a, &one.parts),
        _ => {
            let mut equation = BatchEquation::with_capacity(decoded.len());
            for d in decoded {
                let Ok(()) = equation.add::<Infallible>(d.key, || Ok(d.a), &d.parts);
            }
            equation.holds()
        }
    }
}

/// Names the failing members of `decoded`, which is known to fail as a whole. When the left
/// half passes, the right half must fail, so it is not checked again as a batch; a single
/// item is always checked on its own (deterministically), so a valid signature is never
/// named, even in the 2⁻¹²⁸ event that a bad half passed.
fn bisect(decoded: &[Decoded<'_>], positions: &[usize], bad: &mut Vec<usize>) {
    if let ([one], [position]) = (decoded, positions) {
        if !single_equation_holds(&one.a, &one.parts) {
            bad.push(*position);
        }
        return;
    }
    let mid = decoded.len() / 2;
    let (left, right) = decoded.split_at(mid);
    let (left_positions, right_positions) = positions.split_at(mid);
    if decoded_hold(left) {
        bisect(right, right_positions, bad);
    } else {
        bisect(left, left_positions, bad);
        if !decoded_hold(right) {
            bisect(right, right_positions, bad);
        }
    }
}

/// Verifies one signature under the ZIP215 rule.
pub fn verify(domain: Domain, msg: &[u8], key: &PublicKey, sig: &Signature) -> Result<(), CryptoError> {
    verify_one(&BatchItem { domain, msg, key: VerifyKey::Raw(key), sig })
}

/// Verifies all signatures at once; `Ok` iff each one would pass [`verify`].
pub fn verify_batch(items: &[BatchItem<'_>]) -> Result<(), CryptoError> {
    verify_all(items)
}

/// Indices (ascending) of exactly the items that fail [`verify`]. Each signature is decoded
/// once; a failing batch is bisected, so `b` bad signatures among `n` cost about
/// `b·log2(n)` sub-batch checks on top of the first.
pub fn find_invalid(items: &[BatchItem<'_>]) -> Vec<usize> {
    find_invalid_in(items)
}
