//! Batch verification: it must accept exactly what single verification accepts, which must
//! be exactly what ed25519-consensus (the reference ZIP215 verifier) accepts, on honest,
//! corrupted and adversarial inputs; bisection must name exactly the bad items.

mod common;

use std::collections::BTreeSet;

use bastion_crypto::{
    find_invalid, find_invalid_parallel, verify, verify_batch, verify_batch_parallel, BatchItem, KeyCache,
    KeyPair, PreparedKey, PublicKey, Signature, VerifyKey,
};
use common::{
    consensus_batch_accepts, encodings, scalar_from_seed, Corruption, Forgery, Signed, CORRUPTIONS, DOMAIN,
};
use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::scalar::Scalar;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};

/// Checks every way of verifying `batch` against the single rule and the reference.
fn assert_all_agree(batch: &[Signed]) -> Result<(), TestCaseError> {
    let singles: Vec<bool> = batch.iter().map(|s| verify(DOMAIN, &s.msg, &s.key, &s.sig).is_ok()).collect();
    for (i, s) in batch.iter().enumerate() {
        prop_assert_eq!(singles[i], s.consensus_accepts(), "item {} vs ed25519-consensus: {:?}", i, s);
    }
    let all_valid = singles.iter().all(|ok| *ok);
    let expected_bad: Vec<usize> = (0..batch.len()).filter(|i| !singles[*i]).collect();

    let raw: Vec<BatchItem<'_>> = batch.iter().map(Signed::item).collect();
    prop_assert_eq!(verify_batch(&raw).is_ok(), all_valid);
    prop_assert_eq!(verify_batch_parallel(&raw).is_ok(), all_valid);
    prop_assert_eq!(find_invalid(&raw), expected_bad.clone());
    prop_assert_eq!(find_invalid_parallel(&raw), expected_bad.clone());

    // The same batch with every key that decompresses prepared in advance.
    let prepared: Vec<Option<PreparedKey>> = batch.iter().map(|s| PreparedKey::new(&s.key).ok()).collect();
    let mixed: Vec<BatchItem<'_>> = batch
        .iter()
        .zip(&prepared)
        .map(|(s, p)| BatchItem {
            key: p.as_ref().map_or(VerifyKey::Raw(&s.key), VerifyKey::Prepared),
            ..s.item()
        })
        .collect();
    prop_assert_eq!(verify_batch(&mixed).is_ok(), all_valid);
    prop_assert_eq!(find_invalid(&mixed), expected_bad);

    let reference: Vec<([u8; 32], [u8; 64], Vec<u8>)> =
        batch.iter().map(|s| (s.key.0, s.sig.0, s.signed_bytes())).collect();
    prop_assert_eq!(consensus_batch_accepts(&reference), all_valid);
    Ok(())
}

/// Mostly torsion-free, sometimes one of the eight torsion points.
fn torsion() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(0usize), 2 => 0..8usize]
}

/// One generated signature: how it was forged, and how it was spoiled afterwards.
#[derive(Clone, Debug)]
struct Case {
    forgery: Forgery,
    msg: Vec<u8>,
    corruption: Corruption,
    garbage: [u8; 32],
}

impl Case {
    fn signed(&self) -> Signed {
        Signed::forge(&self.forgery, &self.msg, self.corruption, self.garbage)
    }

    /// The verdict the rule must reach, derived from how the case was built (independently
    /// of any verifier). Holds except with negligible probability.
    fn expected(&self) -> bool {
        let small_order_key = self.forgery.secret == Scalar::ZERO;
        match self.corruption {
            // `[8]([k]A) = 0` for a small-order key: the message does not matter.
            Corruption::None | Corruption::Message | Corruption::WrongDomain if small_order_key => true,
            // Hashing re-encoded bytes changes `k`, which matters only for a large-order key.
            Corruption::None => !self.forgery.hash_canonical || self.forgery.is_canonical(),
            _ => false,
        }
    }
}

/// A forged signature over a random message, possibly corrupted. Keys come from a pool of
/// five secrets (plus the zero secret: small-order keys), so batches repeat keys often.
fn case() -> impl Strategy<Value = Case> {
    let key = (prop_oneof![1 => Just(None), 4 => (0u8..5).prop_map(Some)], torsion(), 0..4usize);
    let nonce = (prop_oneof![1 => Just(None), 4 => any::<[u8; 32]>().prop_map(Some)], torsion(), 0..4usize);
    let spoil = (
        prop_oneof![4 => Just(Corruption::None), 3 => proptest::sample::select(CORRUPTIONS.to_vec())],
        proptest::bool::weighted(0.15),
        any::<[u8; 32]>(),
    );
    let msg = proptest::collection::vec(any::<u8>(), 0..48);
    (key, nonce, spoil, msg).prop_map(
        |((secret, key_torsion, key_encoding), (nonce, nonce_torsion, nonce_encoding), spoil, msg)| {
            let (corruption, hash_canonical, garbage) = spoil;
            let forgery = Forgery {
                secret: secret.map_or(Scalar::ZERO, |seed| scalar_from_seed(&[seed])),
                key_torsion,
                key_encoding,
                nonce: nonce.map_or(Scalar::ZERO, |seed| scalar_from_seed(&seed)),
                nonce_torsion,
                nonce_encoding,
                hash_canonical,
            };
            Case { forgery, msg, corruption, garbage }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn single_batch_bisection_and_reference_agree(cases in proptest::collection::vec(case(), 1..14)) {
        let batch: Vec<Signed> = cases.iter().map(Case::signed).collect();
        for (case, signed) in cases.iter().zip(&batch) {
            let accepted = verify(DOMAIN, &signed.msg, &signed.key, &signed.sig).is_ok();
            prop_assert_eq!(accepted, case.expected(), "{:?}", case);
        }
        assert_all_agree(&batch)?;
    }
}

/// Every combination of small-order key and nonce, in every encoding, with `S = 0`: ZIP215
/// accepts each of them (for any message), and so must every batch of them.
#[test]
fn every_small_order_key_and_nonce_encoding_agrees() {
    let mut batch = Vec::new();
    for (key_torsion, key_point) in EIGHT_TORSION.iter().enumerate() {
        for (nonce_torsion, nonce_point) in EIGHT_TORSION.iter().enumerate() {
            let key_encodings = encodings(key_point).len();
            let nonce_encodings = encodings(nonce_point).len();
            for key_encoding in 0..key_encodings {
                for nonce_encoding in 0..nonce_encodings {
                    let forgery = Forgery {
                        key_torsion,
                        key_encoding,
                        nonce_torsion,
                        nonce_encoding,
                        ..Forgery::honest(Scalar::ZERO, Scalar::ZERO)
                    };
                    batch.push(Signed::forge(&forgery, b"anything", Corruption::None, [0; 32]));
                }
            }
        }
    }
    // 8 points with one encoding, 2 with two (order 4: y = 0 and y = p), identity and the
    // order-2 point with their sign-flipped twins (identity also y = 1 + p): 14 encodings.
    let all: usize = EIGHT_TORSION.iter().map(|t| encodings(t).len()).sum();
    assert_eq!(all, 14);
    assert_eq!(batch.len(), all * all);
    for s in &batch {
        assert_eq!(verify(DOMAIN, &s.msg, &s.key, &s.sig), Ok(()), "{s:?}");
    }
    assert_all_agree(&batch).expect("agreement");
}

/// ZIP215 hashes `R` as sent: a signature whose `R` is a non-canonical encoding verifies
/// only if the signer hashed those exact bytes.
#[test]
fn non_canonical_nonce_is_hashed_as_sent() {
    let mut checked = 0;
    for (nonce_torsion, point) in EIGHT_TORSION.iter().enumerate() {
        for nonce_encoding in 1..encodings(point).len() {
            let forgery = Forgery {
                nonce_torsion,
                nonce_encoding,
                ..Forgery::honest(scalar_from_seed(b"key"), Scalar::ZERO)
            };
            assert!(!forgery.is_canonical());
            let as_sent = Signed::forge(&forgery, b"m", Corruption::None, [0; 32]);
            let rehashed = Forgery { hash_canonical: true, ..forgery };
            let canonical = Signed::forge(&rehashed, b"m", Corruption::None, [0; 32]);
            assert_eq!(verify(DOMAIN, &as_sent.msg, &as_sent.key, &as_sent.sig), Ok(()));
            assert!(verify(DOMAIN, &canonical.msg, &canonical.key, &canonical.sig).is_err());
            assert_all_agree(&[as_sent.clone(), canonical, as_sent]).expect("agreement");
            checked += 1;
        }
    }
    assert_eq!(checked, 6, "three extra encodings of the identity, one each for the other three");
}

/// A repeated key contributes one point whose coefficient is the sum of its items'; one
/// bad item among many by the same key must still be caught and named.
#[test]
fn repeated_keys_are_combined_without_hiding_a_bad_item() {
    let pair = KeyPair::from_seed([21; 32]);
    let public = pair.public();
    let prepared = PreparedKey::new(&public).expect("valid key");
    let msgs: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let mut sigs: Vec<Signature> = msgs.iter().map(|m| pair.sign(DOMAIN, m)).collect();
    let check = |sigs: &[Signature]| {
        let items: Vec<BatchItem<'_>> = msgs
            .iter()
            .zip(sigs)
            .enumerate()
            .map(|(i, (msg, sig))| BatchItem {
                domain: DOMAIN,
                msg,
                key: if i % 2 == 0 { VerifyKey::Raw(&public) } else { VerifyKey::Prepared(&prepared) },
                sig,
            })
            .collect();
        (verify_batch(&items).is_ok(), find_invalid(&items))
    };
    assert_eq!(check(&sigs), (true, vec![]));
    sigs.swap(40, 41);
    assert_eq!(check(&sigs), (false, vec![40, 41]));
    sigs.swap(40, 41);
    sigs[99] = pair.sign(DOMAIN, b"something else");
    assert_eq!(check(&sigs), (false, vec![99]));
}

fn signed_batch(rng: &mut StdRng, len: usize, signers: &[KeyPair]) -> Vec<Signed> {
    (0..len)
        .map(|i| {
            let pair = &signers[rng.gen_range(0..signers.len())];
            let msg = format!("tx {i} {}", rng.gen::<u64>()).into_bytes();
            Signed { sig: pair.sign(DOMAIN, &msg), key: pair.public(), msg }
        })
        .collect()
}

#[test]
fn bisection_finds_every_bad_signature_in_1024() {
    let mut rng = StdRng::seed_from_u64(1024);
    let signers: Vec<KeyPair> = (0..300).map(|_| KeyPair::generate(&mut rng)).collect();
    for bad_count in [1usize, 2, 37] {
        let mut batch = signed_batch(&mut rng, 1024, &signers);
        let bad: BTreeSet<usize> = sample(&mut rng, batch.len(), bad_count).into_iter().collect();
        for (n, &i) in bad.iter().enumerate() {
            // Vary the damage: message, signature, or a wrong (valid) key.
            match n % 3 {
                0 => batch[i].msg.push(b'!'),
                1 => batch[i].sig.0[5] ^= 0x40,
                _ => {
                    let original = batch[i].key;
                    batch[i].key =
                        signers.iter().map(KeyPair::public).find(|k| *k != original).expect("300 keys");
                }
            }
        }
        let bad: Vec<usize> = bad.into_iter().filter(|i| !batch[*i].consensus_accepts()).collect();
        assert_eq!(bad.len(), bad_count, "every corruption must actually break its signature");
        let items: Vec<BatchItem<'_>> = batch.iter().map(Signed::item).collect();
        assert!(verify_batch(&items).is_err());
        assert!(verify_batch_parallel(&items).is_err());
        assert_eq!(find_invalid(&items), bad, "{bad_count} bad");
        assert_eq!(find_invalid_parallel(&items), bad, "{bad_count} bad, parallel");
    }
    let batch = signed_batch(&mut rng, 1024, &signers);
    let items: Vec<BatchItem<'_>> = batch.iter().map(Signed::item).collect();
    assert_eq!(verify_batch(&items), Ok(()));
    assert_eq!(verify_batch_parallel(&items), Ok(()));
    assert!(find_invalid(&items).is_empty());
}

#[test]
fn parallel_verification_agrees_on_many_threads() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(7).build().expect("pool");
    let mut rng = StdRng::seed_from_u64(7);
    let signers: Vec<KeyPair> = (0..20).map(|_| KeyPair::generate(&mut rng)).collect();
    for len in [0usize, 1, 63, 64, 127, 128, 129, 500, 777] {
        let mut batch = signed_batch(&mut rng, len, &signers);
        let items: Vec<BatchItem<'_>> = batch.iter().map(Signed::item).collect();
        pool.install(|| {
            assert_eq!(verify_batch_parallel(&items), Ok(()), "len {len}");
            assert!(find_invalid_parallel(&items).is_empty(), "len {len}");
        });
        if len == 0 {
            continue;
        }
        let bad: BTreeSet<usize> = sample(&mut rng, len, len.min(5)).into_iter().collect();
        for &i in &bad {
            batch[i].msg.push(0);
        }
        let items: Vec<BatchItem<'_>> = batch.iter().map(Signed::item).collect();
        pool.install(|| {
            assert!(verify_batch_parallel(&items).is_err(), "len {len}");
            assert_eq!(find_invalid_parallel(&items), bad.iter().copied().collect::<Vec<_>>(), "len {len}");
        });
    }
}

#[test]
fn batches_with_undecodable_parts_name_them() {
    let mut rng = StdRng::seed_from_u64(3);
    let signers: Vec<KeyPair> = (0..4).map(|_| KeyPair::generate(&mut rng)).collect();
    let mut batch = signed_batch(&mut rng, 10, &signers);
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2; // no curve point has y = 2
    batch[1].key = PublicKey(not_a_point);
    batch[4].sig.0[..32].copy_from_slice(&not_a_point);
    let s = batch[7].s_bytes();
    batch[7].sig.0[32..].copy_from_slice(&common::add_order(&s));
    let items: Vec<BatchItem<'_>> = batch.iter().map(Signed::item).collect();
    assert!(verify_batch(&items).is_err());
    assert_eq!(find_invalid(&items), vec![1, 4, 7]);
    assert_all_agree(&batch).expect("agreement");
}

#[test]
fn empty_and_single_batches() {
    assert_eq!(verify_batch(&[]), Ok(()));
    assert!(find_invalid(&[]).is_empty());
    let pair = KeyPair::from_seed([1; 32]);
    let sig = pair.sign(DOMAIN, b"m");
    let public = pair.public();
    let item = BatchItem { domain: DOMAIN, msg: b"m", key: VerifyKey::Raw(&public), sig: &sig };
    assert_eq!(verify_batch(&[item]), Ok(()));
    let wrong = BatchItem { msg: b"n", ..item };
    assert!(verify_batch(&[wrong]).is_err());
    assert_eq!(find_invalid(&[item, wrong, item]), vec![1]);
}

#[test]
fn mixed_order_keys_and_nonces_verify_in_batches() {
    // Honest-looking signatures whose key and nonce carry torsion: cofactorless verifiers
    // disagree among themselves on these; ZIP215 accepts all, in any batch.
    let batch: Vec<Signed> = (0..8)
        .map(|t| {
            let forgery = Forgery {
                key_torsion: t,
                nonce_torsion: 7 - t,
                ..Forgery::honest(scalar_from_seed(&[t as u8]), scalar_from_seed(&[t as u8, 1]))
            };
            Signed::forge(&forgery, b"mixed", Corruption::None, [0; 32])
        })
        .collect();
    for s in &batch {
        assert_eq!(verify(DOMAIN, &s.msg, &s.key, &s.sig), Ok(()));
    }
    assert_all_agree(&batch).expect("agreement");
    // Sanity: the keys really are not in the prime-order subgroup.
    let torsioned = batch.iter().filter(|s| {
        let point = curve25519_dalek::edwards::CompressedEdwardsY(s.key.0).decompress().expect("valid");
        !point.is_torsion_free()
    });
    assert_eq!(torsioned.count(), 7);
}

#[test]
fn key_cache_never_exceeds_its_capacity() {
    let cache = KeyCache::new(4);
    let keys: Vec<PublicKey> = (0..50u8).map(|i| KeyPair::from_seed([i; 32]).public()).collect();
    for key in &keys {
        let prepared = cache.prepare(key).expect("valid key");
        assert_eq!(prepared.public(), key);
        assert!(cache.len() <= 4, "len {}", cache.len());
    }
    assert_eq!(cache.len(), 4);
    // A hit returns the cached key and does not grow the cache.
    let last = keys.last().expect("keys");
    assert_eq!(cache.prepare(last).expect("valid").public(), last);
    assert_eq!(cache.len(), 4);
    // Invalid keys are rejected and not cached.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    assert!(cache.prepare(&PublicKey(not_a_point)).is_err());
    assert!(cache.len() <= 4);
    // A zero capacity still caches one key.
    let tiny = KeyCache::new(0);
    tiny.prepare(&keys[0]).expect("valid");
    tiny.prepare(&keys[1]).expect("valid");
    assert_eq!(tiny.len(), 1);
}

#[test]
fn key_cache_stays_bounded_under_concurrent_use() {
    let cache = KeyCache::new(16);
    let keys: Vec<PublicKey> = (0..64u8).map(|i| KeyPair::from_seed([i; 32]).public()).collect();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (cache, keys) = (&cache, &keys);
            scope.spawn(move || {
                for round in 0..20 {
                    for key in keys.iter().skip((t * 7 + round) % 64).step_by(3) {
                        cache.prepare(key).expect("valid key");
                        assert!(cache.len() <= 16);
                    }
                }
            });
        }
    });
    assert_eq!(cache.len(), 16);
}

#[test]
fn prepared_keys_verify_like_raw_keys() {
    let cache = KeyCache::new(8);
    let pair = KeyPair::from_seed([30; 32]);
    let public = pair.public();
    let prepared = cache.prepare(&public).expect("valid");
    let sig = pair.sign(DOMAIN, b"m");
    let other = KeyPair::from_seed([31; 32]).sign(DOMAIN, b"m");
    for (sig, ok) in [(&sig, true), (&other, false)] {
        let raw = BatchItem { domain: DOMAIN, msg: b"m", key: VerifyKey::Raw(&public), sig };
        let pre = BatchItem { key: VerifyKey::Prepared(&prepared), ..raw };
        assert_eq!(verify_batch(&[raw, pre]).is_ok(), ok);
        assert_eq!(verify_batch(&[pre]).is_ok(), ok);
    }
}
