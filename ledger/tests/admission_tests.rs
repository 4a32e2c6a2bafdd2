//! Admission: encoding round trips, tamper detection, stateless and stateful checks, batch
//! verification.

mod common;

use bastion_crypto::{sha256, Digest, KeyCache, Signature};
use bastion_ledger::codec::{self, MAX_TX_BYTES};
use bastion_ledger::fuel::{MAX_FUEL_LIMIT, TRANSFER_FUEL};
use bastion_ledger::{
    admit, admit_batch, admit_batch_hashed, check_stateful, Account, Address, AdmissionError, Payload,
    SignedTransaction, Transaction,
};
use common::*;
use proptest::prelude::*;

fn sample_payloads() -> Vec<Payload> {
    vec![
        Payload::Transfer { to: Address([3; 32]), amount: 42 },
        Payload::Deploy { code: wasm(COUNTER_WAT), init: vec![1, 2, 3] },
        Payload::Call { contract: Address([4; 32]), method: "increment".into(), args: vec![9; 40] },
    ]
}

#[test]
fn signed_transactions_round_trip_in_bincode_and_json() {
    for payload in sample_payloads() {
        let signed = builder(&key(1), 7).expiry_height(99).build(payload).unwrap();
        let bytes = signed.to_bytes().unwrap();
        assert_eq!(SignedTransaction::from_bytes(&bytes).unwrap(), signed);
        let json = serde_json::to_string(&signed).unwrap();
        let back: SignedTransaction = serde_json::from_str(&json).unwrap();
        assert_eq!(back, signed);
        assert_eq!(back.to_bytes().unwrap(), bytes, "JSON and binary forms carry the same transaction");

        let verified = admit(&bytes, CHAIN).unwrap();
        assert_eq!(verified.hash(), bastion_crypto::sha256(&bytes));
        assert_eq!(verified.hash(), signed.hash().unwrap());
        assert_eq!(verified.encoded_len(), bytes.len());
        assert_eq!(verified.sender(), address(&key(1)));
    }
}

#[test]
fn json_uses_hex_for_bytes_and_addresses() {
    let signed = builder(&key(1), 0).call(Address([0xab; 32]), "m", vec![0xde, 0xad]).unwrap();
    let json = serde_json::to_value(&signed).unwrap();
    let call = &json["tx"]["payload"]["Call"];
    assert_eq!(call["args"], "dead");
    assert_eq!(call["contract"], "ab".repeat(32));
}

#[test]
fn trailing_bytes_and_truncation_are_rejected() {
    let bytes = builder(&key(1), 0).transfer(Address([3; 32]), 1).unwrap().to_bytes().unwrap();
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(admit(&longer, CHAIN), Err(AdmissionError::Encoding(_))));
    assert!(matches!(admit(&bytes[..bytes.len() - 1], CHAIN), Err(AdmissionError::Encoding(_))));
    assert!(matches!(admit(&[], CHAIN), Err(AdmissionError::Encoding(_))));
}

#[test]
fn a_forged_length_prefix_does_not_allocate_or_panic() {
    // A Deploy whose code length claims 2^62 bytes.
    let mut bytes = builder(&key(1), 0).deploy(vec![1, 2, 3], vec![]).unwrap().to_bytes().unwrap();
    let code_len_at = bytes.windows(8).position(|w| w == 3u64.to_le_bytes()).unwrap();
    bytes[code_len_at..code_len_at + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    assert!(matches!(admit(&bytes, CHAIN), Err(AdmissionError::Encoding(_))));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any single bit flip anywhere in a signed transaction makes it inadmissible.
    #[test]
    fn any_bit_flip_is_rejected(payload in 0usize..3, bit in any::<prop::sample::Index>()) {
        let signed = builder(&key(1), 5).build(sample_payloads()[payload].clone()).unwrap();
        let mut bytes = signed.to_bytes().unwrap();
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(admit(&bytes, CHAIN).is_err());
    }
}

#[test]
fn stateless_checks_name_the_problem() {
    let k = key(1);
    let other = builder(&k, 0).transfer(Address([3; 32]), 1).unwrap();
    let bytes = other.to_bytes().unwrap();
    assert_eq!(
        admit(&bytes, "other-chain").unwrap_err(),
        AdmissionError::WrongChain { expected: "other-chain".into(), actual: CHAIN.into() }
    );

    let mut forged = other.clone();
    forged.tx.payload = Payload::Transfer { to: Address([3; 32]), amount: 1_000 };
    assert_eq!(admit(&forged.to_bytes().unwrap(), CHAIN).unwrap_err(), AdmissionError::BadSignature);
    let mut bad_sig = other.clone();
    bad_sig.signature = Signature([0; 64]);
    assert_eq!(admit(&bad_sig.to_bytes().unwrap(), CHAIN).unwrap_err().code(), "bad_signature");

    let greedy = builder(&k, 0).fuel_limit(MAX_FUEL_LIMIT + 1).transfer(Address([3; 32]), 1).unwrap();
    assert!(matches!(
        admit(&greedy.to_bytes().unwrap(), CHAIN),
        Err(AdmissionError::FuelLimitTooHigh { .. })
    ));

    let stingy = builder(&k, 0).fuel_limit(TRANSFER_FUEL - 1).transfer(Address([3; 32]), 1).unwrap();
    assert_eq!(
        admit(&stingy.to_bytes().unwrap(), CHAIN).unwrap_err(),
        AdmissionError::FuelLimitTooLow { limit: TRANSFER_FUEL - 1, min: TRANSFER_FUEL }
    );

    let nameless = builder(&k, 0).call(Address([3; 32]), "", vec![]).unwrap();
    assert!(matches!(admit(&nameless.to_bytes().unwrap(), CHAIN), Err(AdmissionError::BadMethod(_))));

    let huge = builder(&k, 0).call(Address([3; 32]), "m", vec![0; MAX_TX_BYTES]).unwrap();
    let huge_bytes = huge.to_bytes().unwrap();
    assert_eq!(
        admit(&huge_bytes, CHAIN).unwrap_err(),
        AdmissionError::TooLarge { size: huge_bytes.len(), max: MAX_TX_BYTES }
    );
}

#[test]
fn stateful_checks_follow_the_account() {
    let tx = |nonce, expiry_height, fuel_limit| Transaction {
        chain_id: CHAIN.into(),
        sender: key(1).public(),
        nonce,
        expiry_height,
        fuel_limit,
        payload: Payload::Transfer { to: Address([3; 32]), amount: 1 },
    };
    let account = Account { balance: 10_000, nonce: 4, code_hash: None };
    assert_eq!(check_stateful(&tx(4, 10, 10_000), &account, 10), Ok(()));
    assert_eq!(check_stateful(&tx(9, 10, 1), &account, 10), Ok(()), "future nonces may queue");
    assert_eq!(
        check_stateful(&tx(3, 10, 1), &account, 10),
        Err(AdmissionError::NonceTooLow { expected: 4, actual: 3 })
    );
    assert_eq!(
        check_stateful(&tx(4, 9, 1), &account, 10),
        Err(AdmissionError::Expired { expiry_height: 9, height: 10 })
    );
    assert_eq!(
        check_stateful(&tx(4, 10, 10_001), &account, 10),
        Err(AdmissionError::InsufficientFunds { balance: 10_000, max_fee: 10_001 })
    );
}

/// `n` transactions from several senders; the ones at `bad` carry a wrong signature.
fn batch(n: usize, bad: &[usize]) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut signed =
                builder(&key((i % 7) as u8 + 1), i as u64).transfer(Address([3; 32]), 1).unwrap();
            if bad.contains(&i) {
                signed.signature.0[0] ^= 1;
            }
            signed.to_bytes().unwrap()
        })
        .collect()
}

fn verdict_matches_single_checks(raw: &[Vec<u8>], keys: Option<&KeyCache>) {
    let verdicts = admit_batch(raw, CHAIN, keys);
    assert_eq!(verdicts.len(), raw.len());
    for (bytes, verdict) in raw.iter().zip(&verdicts) {
        assert_eq!(verdict, &admit(bytes, CHAIN), "batch and single verification agree");
    }
    // Hashes carried in (all, or only some) give the same verdicts and hashes.
    let hashes: Vec<Digest> = raw.iter().map(|bytes| sha256(bytes)).collect();
    for known in [&hashes[..], &hashes[..hashes.len() / 2]] {
        assert_eq!(admit_batch_hashed(raw, known, CHAIN, keys), verdicts, "carried hashes change nothing");
    }
}

#[test]
fn batch_admission_finds_exactly_the_bad_ones() {
    let raw = batch(40, &[3, 17, 39]);
    let verdicts = admit_batch(&raw, CHAIN, None);
    let bad: Vec<usize> = verdicts.iter().enumerate().filter(|(_, v)| v.is_err()).map(|(i, _)| i).collect();
    assert_eq!(bad, vec![3, 17, 39]);
    verdict_matches_single_checks(&raw, None);

    let mut mixed = batch(10, &[]);
    mixed[4] = vec![1, 2, 3];
    mixed[6] = builder(&key(1), 0).transfer(Address([3; 32]), 1).unwrap().to_bytes().unwrap();
    let verdicts = admit_batch(&mixed, "other-chain", None);
    assert!(verdicts.iter().all(Result::is_err));
    verdict_matches_single_checks(&mixed, None);
}

#[test]
fn large_batches_verify_in_parallel_with_cached_keys() {
    let bad = [0, 255, 256, 600, 799];
    let raw = batch(800, &bad);
    let cache = KeyCache::new(64);
    let verdicts = admit_batch(&raw, CHAIN, Some(&cache));
    for (i, verdict) in verdicts.iter().enumerate() {
        assert_eq!(verdict.is_err(), bad.contains(&i), "index {i}");
    }
    assert_eq!(cache.len(), 7, "one cached key per sender");
    verdict_matches_single_checks(&raw[..300], Some(&cache));
}

#[test]
fn codec_is_canonical_for_ledger_values() {
    let account = Account { balance: 5, nonce: 6, code_hash: Some(bastion_crypto::sha256(b"code")) };
    let bytes = codec::encode(&account).unwrap();
    assert_eq!(codec::decode::<Account>(&bytes).unwrap(), account);
    assert_eq!(bytes.len(), 8 + 8 + 1 + 32, "fixed-width integers, no padding");
    let none = codec::encode(&Account::default()).unwrap();
    let mut bad_tag = none.clone();
    bad_tag[16] = 2;
    assert!(codec::decode::<Account>(&bad_tag).is_err(), "an Option tag other than 0/1 is invalid");
}
