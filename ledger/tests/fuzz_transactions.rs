//! Fuzz targets of transaction decoding and admission (`SignedTransaction::from_bytes`,
//! `admit`, `admit_batch`, `check_stateless`, `check_stateful`); see `fuzz/harness.rs`.
//!
//! What every input must satisfy:
//! * nothing panics, and no forged length makes decoding allocate more than a small bound;
//! * a transaction is admitted only if its encoding is canonical, its chain id is ours and
//!   its signature verifies on its own (checked here with `bastion_crypto::verify`, not
//!   through admission);
//! * the verdict is the same through `admit`, `check_stateless` on the decoded value, and
//!   `admit_batch` (sequential and parallel, with and without the key cache), and one bad
//!   transaction in a batch does not change the verdict on the others.

#[path = "../../fuzz/harness.rs"]
mod harness;

mod common;

use bastion_crypto::{sha256, verify, KeyCache, KeyPair};
use bastion_ledger::admission::PARALLEL_BATCH_THRESHOLD;
use bastion_ledger::codec::MAX_TX_BYTES;
use bastion_ledger::{
    admit, admit_batch, check_stateful, check_stateless, Account, AdmissionError, Payload, SignedTransaction,
    TransactionBuilder, VerifiedTransaction, TX_DOMAIN,
};
use common::{address, key, wasm, CHAIN, COUNTER_WAT};
use proptest::prelude::*;

#[global_allocator]
static ALLOCATOR: harness::TrackingAllocator = harness::TrackingAllocator;

const TARGET: &str = "transactions";
const BATCH_TARGET: &str = "transaction_batches";

/// No single allocation while admitting an input may exceed this (serde caps what a
/// length prefix preallocates at 1 MiB; the rest is proportional to the input).
fn allocation_bound(input_len: usize) -> usize {
    (1 << 20) + 8 * input_len + 4096
}

fn bytes(signed: &SignedTransaction) -> Vec<u8> {
    signed.to_bytes().expect("test transactions encode")
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let alice = TransactionBuilder::new(CHAIN, key(1));
    let transfer = alice.transfer(address(&key(2)), 5).expect("transfer");
    let deploy = alice.clone().nonce(1).deploy(wasm(COUNTER_WAT), vec![1, 2]).expect("deploy");
    let call = alice.clone().nonce(2).call(alice.contract_address(), "increment", vec![7; 40]).expect("call");
    let other_chain =
        TransactionBuilder::new("other-chain", key(3)).transfer(address(&key(1)), 1).expect("tx");
    let no_fuel = alice.clone().fuel_limit(0).transfer(address(&key(2)), 1).expect("tx");
    let empty_method = alice.clone().call(alice.contract_address(), "", vec![]).expect("tx");
    let mut bad_signature = bytes(&transfer);
    if let Some(last) = bad_signature.last_mut() {
        *last ^= 0x01;
    }
    // The chain id's length prefix (first 8 bytes) claims 2^62 bytes.
    let mut forged_length = bytes(&transfer);
    forged_length[..8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    let mut trailing = bytes(&transfer);
    trailing.push(0);
    vec![
        ("transfer.bin", bytes(&transfer)),
        ("deploy_counter.bin", bytes(&deploy)),
        ("call.bin", bytes(&call)),
        ("wrong_chain.bin", bytes(&other_chain)),
        ("fuel_limit_zero.bin", bytes(&no_fuel)),
        ("empty_method.bin", bytes(&empty_method)),
        ("bad_signature.bin", bad_signature),
        ("forged_length.bin", forged_length),
        ("trailing_byte.bin", trailing),
        ("empty.bin", Vec::new()),
    ]
}

/// Same verdict: the same admitted transaction, or the same error.
fn same(
    a: &Result<VerifiedTransaction, AdmissionError>,
    b: &Result<VerifiedTransaction, AdmissionError>,
) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a == b,
        (Err(a), Err(b)) => a == b,
        _ => false,
    }
}

/// What must hold of one input's `admit` verdict.
fn check_one(input: &[u8], verdict: &Result<VerifiedTransaction, AdmissionError>) -> Result<(), String> {
    let decoded = SignedTransaction::from_bytes(input);
    match (verdict, &decoded) {
        (Ok(admitted), Ok(signed)) => {
            if admitted.signed() != signed {
                return Err("admitted a different transaction than the bytes decode to".into());
            }
            if bytes(signed) != input {
                return Err("admitted a non-canonical encoding".into());
            }
            if admitted.hash() != sha256(input) || admitted.encoded_len() != input.len() {
                return Err("admitted with the wrong hash or length".into());
            }
            if signed.tx.chain_id != CHAIN {
                return Err(format!("admitted a transaction for chain {:?}", signed.tx.chain_id));
            }
            let message = signed.tx.signing_bytes().map_err(|e| e.to_string())?;
            if verify(TX_DOMAIN, &message, &signed.tx.sender, &signed.signature).is_err() {
                return Err("admitted a transaction whose signature does not verify".into());
            }
            // Stateful checks must answer (not panic) on whatever was admitted.
            let rich = Account { balance: u64::MAX, nonce: 0, code_hash: None };
            let _ = check_stateful(admitted.tx(), &rich, 1);
            let _ = check_stateful(admitted.tx(), &Account::default(), u64::MAX);
            Ok(())
        }
        (Ok(_), Err(e)) => Err(format!("admitted bytes that do not decode: {e}")),
        (Err(e), Ok(signed)) => match check_stateless(signed, input.len(), CHAIN) {
            Err(again) if &again == e => Ok(()),
            other => Err(format!("admit said {e:?} but check_stateless on the decoded value says {other:?}")),
        },
        (Err(AdmissionError::Encoding(_) | AdmissionError::TooLarge { .. }), Err(_)) => Ok(()),
        (Err(e), Err(_)) => Err(format!("undecodable bytes refused with a non-encoding error {e:?}")),
    }
}

#[test]
fn fuzz_transaction_admission() {
    harness::ensure_seeds(TARGET, &seeds());
    let valid = bytes(&TransactionBuilder::new(CHAIN, key(9)).transfer(address(&key(1)), 3).expect("tx"));
    let cache = KeyCache::new(1_000);
    harness::run(TARGET, 2_000, 512, |input| {
        let (verdict, peak) = harness::largest_allocation(|| admit(input, CHAIN));
        if peak > allocation_bound(input.len()) {
            return Err(format!("admitting {} bytes allocated {peak} bytes at once", input.len()));
        }
        check_one(input, &verdict)?;
        // In a batch, beside a valid transaction: the same verdict, and the valid one stays valid.
        for keys in [None, Some(&cache)] {
            let batch = admit_batch(&[input, valid.as_slice()], CHAIN, keys);
            if !same(&batch[0], &verdict) {
                return Err(format!("admit_batch says {:?}, admit says {verdict:?}", batch[0]));
            }
            if batch[1].is_err() {
                return Err(format!("a bad neighbour made a valid transaction fail: {:?}", batch[1]));
            }
        }
        Ok(())
    });
}

/// A batch input: `u32 LE length || bytes`, repeated.
fn join(txs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for tx in txs {
        out.extend_from_slice(&(tx.len() as u32).to_le_bytes());
        out.extend_from_slice(tx);
    }
    out
}

fn split(mut input: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some((len, rest)) = input.split_first_chunk::<4>() {
        let len = (u32::from_le_bytes(*len) as usize).min(rest.len());
        out.push(rest[..len].to_vec());
        input = &rest[len..];
    }
    out
}

/// Many valid transactions from a few senders (the key cache gets hits).
fn valid_batch(count: usize) -> Vec<Vec<u8>> {
    let senders: Vec<KeyPair> = (10..14).map(key).collect();
    (0..count)
        .map(|i| {
            let builder = TransactionBuilder::new(CHAIN, senders[i % senders.len()].clone()).nonce(i as u64);
            let payload = Payload::Transfer { to: address(&key(1)), amount: i as u64 };
            bytes(&builder.build(payload).expect("tx"))
        })
        .collect()
}

#[test]
fn fuzz_transaction_batch_admission() {
    let count = PARALLEL_BATCH_THRESHOLD + 8;
    harness::ensure_seeds(BATCH_TARGET, &[("parallel_valid.bin", join(&valid_batch(count)))]);
    let tx_seeds: Vec<Vec<u8>> = harness::load_corpus(TARGET).into_iter().map(|(_, b)| b).collect();
    let base = valid_batch(count);
    // A parallel-sized batch of valid transactions with a few mutated or foreign ones mixed in.
    let strategy =
        proptest::collection::vec((any::<proptest::sample::Index>(), harness::inputs(tx_seeds, 256)), 1..8)
            .prop_map(move |replacements| {
                let mut batch = base.clone();
                for (at, input) in replacements {
                    let i = at.index(batch.len());
                    batch[i] = input;
                }
                batch
            });
    let cache = KeyCache::new(1_000);
    harness::run_with(
        BATCH_TARGET,
        30,
        strategy,
        split,
        |batch| join(batch),
        |batch| {
            let singles: Vec<_> = batch.iter().map(|tx| admit(tx, CHAIN)).collect();
            for keys in [None, Some(&cache)] {
                let together = admit_batch(batch, CHAIN, keys);
                if together.len() != batch.len() {
                    return Err(format!("{} verdicts for {} transactions", together.len(), batch.len()));
                }
                for (i, (single, joint)) in singles.iter().zip(&together).enumerate() {
                    if !same(single, joint) {
                        return Err(format!("transaction {i}: batch says {joint:?}, alone {single:?}"));
                    }
                }
            }
            for (tx, verdict) in batch.iter().zip(&singles) {
                check_one(tx, verdict)?;
            }
            Ok(())
        },
    );
}

#[test]
fn oversized_transactions_are_refused_before_decoding() {
    let huge = vec![0u8; MAX_TX_BYTES + 1];
    let (verdict, peak) = harness::largest_allocation(|| admit(&huge, CHAIN));
    assert_eq!(verdict, Err(AdmissionError::TooLarge { size: MAX_TX_BYTES + 1, max: MAX_TX_BYTES }));
    assert!(peak < 4096, "refusing an oversized transaction allocated {peak} bytes");
    // A small input whose deploy code claims 2^40 bytes fails without reserving them.
    let deploy = TransactionBuilder::new(CHAIN, key(1)).deploy(vec![0xab; 4], vec![]).expect("tx");
    let mut forged = bytes(&deploy);
    let mut prefixed_code = 4u64.to_le_bytes().to_vec();
    prefixed_code.extend_from_slice(&[0xab; 4]);
    let code_len_at =
        forged.windows(12).position(|w| w == prefixed_code.as_slice()).expect("the code's length prefix");
    forged[code_len_at..code_len_at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let (verdict, peak) = harness::largest_allocation(|| admit(&forged, CHAIN));
    assert!(matches!(verdict, Err(AdmissionError::Encoding(_))), "{verdict:?}");
    assert!(peak < allocation_bound(forged.len()), "a forged length allocated {peak} bytes");
}
