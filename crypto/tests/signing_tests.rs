//! Signing and single verification: round trips, tampering, domain separation, encodings.

mod common;

use bastion_crypto::raw::verify_raw;
use bastion_crypto::{sha256, verify, CryptoError, Digest, Domain, KeyPair, PublicKey, Signature};
use common::{unhex, DOMAIN, OTHER_DOMAIN};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn key_pair(seed: u8) -> KeyPair {
    KeyPair::from_seed([seed; 32])
}

#[test]
fn signature_round_trips() {
    let mut rng = StdRng::seed_from_u64(1);
    for len in [0usize, 1, 31, 32, 33, 1000, 100_000] {
        let pair = KeyPair::generate(&mut rng);
        let msg = vec![0xa5; len];
        let sig = pair.sign(DOMAIN, &msg);
        assert_eq!(verify(DOMAIN, &msg, &pair.public(), &sig), Ok(()), "message of {len} bytes");
    }
}

#[test]
fn signing_is_deterministic() {
    let pair = key_pair(7);
    assert_eq!(pair.sign(DOMAIN, b"vote"), pair.sign(DOMAIN, b"vote"));
    assert_ne!(pair.sign(DOMAIN, b"vote"), pair.sign(DOMAIN, b"vote!"));
}

#[test]
fn tampered_message_is_rejected() {
    let pair = key_pair(1);
    let msg = b"transfer 10 to bob".to_vec();
    let sig = pair.sign(DOMAIN, &msg);
    for bit in 0..msg.len() * 8 {
        let mut tampered = msg.clone();
        tampered[bit / 8] ^= 1 << (bit % 8);
        assert!(verify(DOMAIN, &tampered, &pair.public(), &sig).is_err(), "bit {bit}");
    }
    assert!(verify(DOMAIN, b"transfer 10 to bob ", &pair.public(), &sig).is_err());
    assert!(verify(DOMAIN, b"transfer 10 to bo", &pair.public(), &sig).is_err());
}

#[test]
fn tampered_signature_is_rejected() {
    let pair = key_pair(2);
    let sig = pair.sign(DOMAIN, b"block 7");
    for bit in 0..512 {
        let mut tampered = sig;
        tampered.0[bit / 8] ^= 1 << (bit % 8);
        assert!(verify(DOMAIN, b"block 7", &pair.public(), &tampered).is_err(), "bit {bit}");
    }
}

#[test]
fn other_key_is_rejected() {
    let sig = key_pair(3).sign(DOMAIN, b"block 7");
    assert!(verify(DOMAIN, b"block 7", &key_pair(4).public(), &sig).is_err());
    let mut bent = key_pair(3).public();
    for bit in 0..256 {
        bent.0[bit / 8] ^= 1 << (bit % 8);
        assert!(verify(DOMAIN, b"block 7", &bent, &sig).is_err(), "key bit {bit}");
        bent.0[bit / 8] ^= 1 << (bit % 8);
    }
}

#[test]
fn signature_from_another_domain_is_rejected() {
    let pair = key_pair(5);
    let vote = pair.sign(Domain("bastion/vote/v1"), b"round 9");
    assert_eq!(verify(Domain("bastion/vote/v1"), b"round 9", &pair.public(), &vote), Ok(()));
    assert!(verify(Domain("bastion/tx/v1"), b"round 9", &pair.public(), &vote).is_err());
    assert!(verify(OTHER_DOMAIN, b"round 9", &pair.public(), &vote).is_err());
    // Shifting bytes between the tag and the message must not produce the same signed bytes.
    let sig = pair.sign(Domain("bastion/a"), b"bc");
    assert!(verify(Domain("bastion/ab"), b"c", &pair.public(), &sig).is_err());
}

#[test]
fn signature_covers_exactly_the_domain_prefixed_bytes() {
    let pair = key_pair(6);
    let sig = pair.sign(DOMAIN, b"payload");
    let signed = DOMAIN.signed_bytes(b"payload");
    assert_eq!(signed[0] as usize, DOMAIN.0.len());
    assert_eq!(&signed[1..1 + DOMAIN.0.len()], DOMAIN.0.as_bytes());
    assert_eq!(verify_raw(&signed, &pair.public(), &sig), Ok(()));
    assert!(verify_raw(b"payload", &pair.public(), &sig).is_err());
}

#[test]
fn non_canonical_scalar_is_rejected_with_its_own_error() {
    let pair = key_pair(8);
    let sig = pair.sign(DOMAIN, b"m");
    let mut s = [0u8; 32];
    s.copy_from_slice(&sig.0[32..]);
    let mut malleated = sig;
    malleated.0[32..].copy_from_slice(&common::add_order(&s));
    assert_eq!(verify(DOMAIN, b"m", &pair.public(), &malleated), Err(CryptoError::NonCanonicalScalar));
}

#[test]
fn key_that_does_not_decompress_is_rejected() {
    // y = 2 is not the y-coordinate of any curve point.
    let mut bad = [0u8; 32];
    bad[0] = 2;
    let sig = key_pair(9).sign(DOMAIN, b"m");
    assert_eq!(verify(DOMAIN, b"m", &PublicKey(bad), &sig), Err(CryptoError::InvalidPublicKey));
}

/// RFC 8032 section 7.1, tests 1 to 3: seed, public key, message, signature.
const RFC8032: [(&str, &str, &str, &str); 3] = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
];

#[test]
fn rfc8032_keys_and_signatures() {
    for (seed, public, msg, sig) in RFC8032 {
        let pair = KeyPair::from_seed(unhex(seed));
        assert_eq!(pair.public(), PublicKey(unhex(public)));
        let msg = hex::decode(msg).expect("hex");
        let sig = Signature(unhex(sig));
        assert_eq!(verify_raw(&msg, &pair.public(), &sig), Ok(()));
        // Our domain-separated signature is a plain ed25519 signature of the prefixed bytes.
        let ours = pair.sign(DOMAIN, &msg);
        assert_eq!(verify_raw(&DOMAIN.signed_bytes(&msg), &pair.public(), &ours), Ok(()));
        assert_ne!(ours, sig);
    }
}

#[test]
fn json_is_hex_and_round_trips() {
    let pair = key_pair(10);
    let sig = pair.sign(DOMAIN, b"m");
    let digest = sha256(b"m");

    let json = serde_json::to_string(&pair.public()).expect("encode");
    assert_eq!(json, format!("\"{}\"", hex::encode(pair.public().0)));
    assert_eq!(serde_json::from_str::<PublicKey>(&json).expect("decode"), pair.public());

    let json = serde_json::to_string(&sig).expect("encode");
    assert_eq!(json, format!("\"{}\"", hex::encode(sig.0)));
    assert_eq!(serde_json::from_str::<Signature>(&json).expect("decode"), sig);

    let json = serde_json::to_string(&digest).expect("encode");
    assert_eq!(json, format!("\"{}\"", hex::encode(digest.0)));
    assert_eq!(serde_json::from_str::<Digest>(&json).expect("decode"), digest);
    assert_eq!(format!("{digest}"), hex::encode(digest.0));
    // An escaped character makes the decoder hand over a transient string, not a borrowed one.
    let escaped = format!("\"\\u00{:02x}{}\"", json.as_bytes()[1], &json[2..json.len() - 1]);
    assert_eq!(serde_json::from_str::<Digest>(&escaped).expect("decode"), digest);
    assert_eq!(serde_json::from_value::<Digest>(serde_json::json!(digest.to_hex())).expect("decode"), digest);

    // A 0x prefix and upper case are accepted on input.
    let upper = format!("\"0x{}\"", hex::encode_upper(pair.public().0));
    assert_eq!(serde_json::from_str::<PublicKey>(&upper).expect("decode"), pair.public());
}

#[test]
fn json_rejects_wrong_length_and_bad_hex() {
    let short = format!("\"{}\"", hex::encode([1u8; 31]));
    assert!(serde_json::from_str::<PublicKey>(&short).is_err());
    assert!(serde_json::from_str::<Signature>(&short).is_err());
    assert!(serde_json::from_str::<Digest>(&short).is_err());
    let not_hex = format!("\"{}\"", "zz".repeat(32));
    assert!(serde_json::from_str::<PublicKey>(&not_hex).is_err());
    assert!(matches!("zz".parse::<Digest>(), Err(CryptoError::InvalidHex(_))));
    assert_eq!("00".parse::<Signature>(), Err(CryptoError::InvalidLength { expected: 64, actual: 1 }));
}

#[test]
fn bincode_round_trips() {
    let pair = key_pair(11);
    let sig = pair.sign(DOMAIN, b"m");
    let digest = sha256(b"m");
    let bytes = bincode::serialize(&pair.public()).expect("encode");
    assert_eq!(bincode::deserialize::<PublicKey>(&bytes).expect("decode"), pair.public());
    let bytes = bincode::serialize(&sig).expect("encode");
    assert_eq!(bincode::deserialize::<Signature>(&bytes).expect("decode"), sig);
    let bytes = bincode::serialize(&digest).expect("encode");
    assert_eq!(bytes.len(), 32);
    assert_eq!(bincode::deserialize::<Digest>(&bytes).expect("decode"), digest);
    let bytes = bincode::serialize(&pair).expect("encode");
    let back: KeyPair = bincode::deserialize(&bytes).expect("decode");
    assert_eq!((back.public(), back.seed()), (pair.public(), pair.seed()));
    // Truncated input is an error, not a panic.
    let bytes = bincode::serialize(&sig).expect("encode");
    assert!(bincode::deserialize::<Signature>(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn key_pair_json_round_trips() {
    let pair = key_pair(12);
    let json = serde_json::to_value(&pair).expect("encode");
    assert_eq!(json["public"], pair.public().to_hex());
    assert_eq!(json["seed"], hex::encode(pair.seed()));
    let back: KeyPair = serde_json::from_value(json).expect("decode");
    assert_eq!(back.public(), pair.public());
    assert_eq!(back.sign(DOMAIN, b"m"), pair.sign(DOMAIN, b"m"));
}

#[test]
fn key_pair_json_with_mismatching_public_key_is_rejected() {
    let pair = key_pair(13);
    let other = key_pair(14);
    let json = format!(r#"{{"public":"{}","seed":"{}"}}"#, other.public().to_hex(), hex::encode(pair.seed()));
    let err = serde_json::from_str::<KeyPair>(&json).expect_err("mismatch must be rejected");
    assert!(err.to_string().contains("does not match"), "{err}");
    let json = format!(r#"{{"public":"{}","seed":"{}"}}"#, "00", hex::encode(pair.seed()));
    assert!(serde_json::from_str::<KeyPair>(&json).is_err());
}

#[test]
fn key_pair_debug_does_not_leak_the_seed() {
    let pair = key_pair(15);
    let shown = format!("{pair:?}");
    assert!(!shown.contains(&hex::encode(pair.seed())[..8]), "{shown}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn honest_signatures_verify_and_any_change_is_rejected(
        seed in any::<[u8; 32]>(),
        msg in proptest::collection::vec(any::<u8>(), 0..200),
        flip in any::<prop::sample::Index>(),
    ) {
        let pair = KeyPair::from_seed(seed);
        let sig = pair.sign(DOMAIN, &msg);
        prop_assert_eq!(verify(DOMAIN, &msg, &pair.public(), &sig), Ok(()));
        let mut bent = sig;
        let bit = flip.index(512);
        bent.0[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(verify(DOMAIN, &msg, &pair.public(), &bent).is_err());
        let mut longer = msg.clone();
        longer.push(0);
        prop_assert!(verify(DOMAIN, &longer, &pair.public(), &sig).is_err());
    }
}
