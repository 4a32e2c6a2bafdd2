//! Admission: the checks that turn submitted bytes into a [`VerifiedTransaction`].
//!
//! Stateless checks (everything knowable without state), in this order:
//! 1. the encoding is at most `MAX_TX_BYTES` and decodes canonically,
//! 2. the chain id is this chain's,
//! 3. the fuel limit is at most `MAX_FUEL_LIMIT` and covers the intrinsic fuel, deploy
//!    code is at most `MAX_CODE_BYTES`, call method names are 1..=`MAX_METHOD_BYTES` bytes,
//! 4. the signature verifies under the one ZIP215 rule of `bastion-crypto`.
//!
//! [`admit`] checks one transaction; [`admit_batch`] checks many with batch signature
//! verification (`find_invalid`, or `find_invalid_parallel` across cores when the batch is
//! large). Both apply exactly the same rules, so the verdict never depends on how a transaction
//! arrived. [`check_stateful`] adds the mempool's state checks (nonce not below the next
//! nonce, not expired, maximum fee affordable); the executor re-checks those at execution.

use bastion_crypto::{
    find_invalid, find_invalid_parallel, sha256, verify, BatchItem, Digest, KeyCache, PreparedKey, VerifyKey,
};
use rayon::prelude::*;

use crate::codec::{MAX_CHAIN_ID_BYTES, MAX_CODE_BYTES, MAX_METHOD_BYTES, MAX_TX_BYTES};
use crate::error::AdmissionError;
use crate::fuel::{intrinsic_fuel, max_fee, MAX_FUEL_LIMIT};
use crate::transaction::{Payload, SignedTransaction, TX_DOMAIN};
use crate::{Account, Transaction, VerifiedTransaction};

/// Batches at least this large are decoded and verified across rayon's pool.
pub const PARALLEL_BATCH_THRESHOLD: usize = 256;

/// Every stateless rule except the signature.
fn check_fields(
    signed: &SignedTransaction,
    encoded_len: usize,
    chain_id: &str,
) -> Result<(), AdmissionError> {
    if encoded_len > MAX_TX_BYTES {
        return Err(AdmissionError::TooLarge { size: encoded_len, max: MAX_TX_BYTES });
    }
    let tx = &signed.tx;
    if tx.chain_id != chain_id || tx.chain_id.len() > MAX_CHAIN_ID_BYTES {
        return Err(AdmissionError::WrongChain { expected: chain_id.into(), actual: tx.chain_id.clone() });
    }
    if tx.fuel_limit > MAX_FUEL_LIMIT {
        return Err(AdmissionError::FuelLimitTooHigh { limit: tx.fuel_limit, max: MAX_FUEL_LIMIT });
    }
    let intrinsic = intrinsic_fuel(tx, encoded_len);
    if tx.fuel_limit < intrinsic {
        return Err(AdmissionError::FuelLimitTooLow { limit: tx.fuel_limit, min: intrinsic });
    }
    match &tx.payload {
        Payload::Deploy { code, .. } if code.len() > MAX_CODE_BYTES => {
            Err(AdmissionError::CodeTooLarge { size: code.len(), max: MAX_CODE_BYTES })
        }
        Payload::Call { method, .. } if method.is_empty() || method.len() > MAX_METHOD_BYTES => {
            Err(AdmissionError::BadMethod(format!("must be 1..={MAX_METHOD_BYTES} bytes")))
        }
        _ => Ok(()),
    }
}

/// The stateless checks on an already decoded transaction whose canonical encoding is
/// `encoded_len` bytes, including its signature.
pub fn check_stateless(
    signed: &SignedTransaction,
    encoded_len: usize,
    chain_id: &str,
) -> Result<(), AdmissionError> {
    check_fields(signed, encoded_len, chain_id)?;
    let message = signed.tx.signing_bytes()?;
    verify(TX_DOMAIN, &message, &signed.tx.sender, &signed.signature)
        .map_err(|_| AdmissionError::BadSignature)
}

/// Decodes and checks one submitted transaction.
pub fn admit(bytes: &[u8], chain_id: &str) -> Result<VerifiedTransaction, AdmissionError> {
    let signed = SignedTransaction::from_bytes(bytes)?;
    check_stateless(&signed, bytes.len(), chain_id)?;
    Ok(VerifiedTransaction::new(signed, sha256(bytes), bytes.len()))
}

/// Checks a transaction that arrived already decoded (e.g. as JSON).
pub fn admit_signed(
    signed: SignedTransaction,
    chain_id: &str,
) -> Result<VerifiedTransaction, AdmissionError> {
    let bytes = signed.to_bytes()?;
    check_stateless(&signed, bytes.len(), chain_id)?;
    Ok(VerifiedTransaction::new(signed, sha256(&bytes), bytes.len()))
}

/// A decoded transaction awaiting its signature check.
struct Candidate {
    signed: SignedTransaction,
    message: Vec<u8>,
    hash: Digest,
    len: usize,
    key: Option<PreparedKey>,
}

fn prepare(
    bytes: &[u8],
    known_hash: Option<&Digest>,
    chain_id: &str,
    keys: Option<&KeyCache>,
) -> Result<Candidate, AdmissionError> {
    let signed = SignedTransaction::from_bytes(bytes)?;
    check_fields(&signed, bytes.len(), chain_id)?;
    let message = signed.tx.signing_bytes()?;
    let key = match keys {
        Some(cache) => Some(cache.prepare(&signed.tx.sender).map_err(|_| AdmissionError::BadSignature)?),
        None => None,
    };
    let hash = known_hash.copied().unwrap_or_else(|| sha256(bytes));
    Ok(Candidate { signed, message, hash, len: bytes.len(), key })
}

/// Indices (within `candidates`) whose signature fails.
fn bad_signatures(candidates: &[&Candidate], parallel: bool) -> Vec<usize> {
    let items: Vec<BatchItem<'_>> = candidates
        .iter()
        .map(|c| BatchItem {
            domain: TX_DOMAIN,
            msg: &c.message,
            key: match &c.key {
                Some(prepared) => VerifyKey::Prepared(prepared),
                None => VerifyKey::Raw(&c.signed.tx.sender),
            },
            sig: &c.signed.signature,
        })
        .collect();
    if parallel {
        find_invalid_parallel(&items)
    } else {
        find_invalid(&items)
    }
}

/// Checks many submitted transactions; one verdict per input, in input order. `keys`
/// caches decompressed sender keys across batches (repeat senders verify faster).
pub fn admit_batch<B: AsRef<[u8]> + Sync>(
    raw: &[B],
    chain_id: &str,
    keys: Option<&KeyCache>,
) -> Vec<Result<VerifiedTransaction, AdmissionError>> {
    admit_batch_hashed(raw, &[], chain_id, keys)
}

/// [`admit_batch`] for transactions whose hashes (SHA-256 of each encoding, parallel to
/// `raw`) were computed already, e.g. for a batch digest: they are carried, not recomputed.
/// A missing hash (shorter `hashes`) is computed.
pub fn admit_batch_hashed<B: AsRef<[u8]> + Sync>(
    raw: &[B],
    hashes: &[Digest],
    chain_id: &str,
    keys: Option<&KeyCache>,
) -> Vec<Result<VerifiedTransaction, AdmissionError>> {
    let parallel = raw.len() >= PARALLEL_BATCH_THRESHOLD;
    let one = |(i, b): (usize, &B)| prepare(b.as_ref(), hashes.get(i), chain_id, keys);
    let prepared: Vec<Result<Candidate, AdmissionError>> = if parallel {
        raw.par_iter().enumerate().map(one).collect()
    } else {
        raw.iter().enumerate().map(one).collect()
    };

    // Candidate i (those that decoded and passed the field checks) is input positions[i].
    let positions: Vec<usize> =
        prepared.iter().enumerate().filter(|(_, p)| p.is_ok()).map(|(i, _)| i).collect();
    let candidates: Vec<&Candidate> = prepared.iter().filter_map(|p| p.as_ref().ok()).collect();
    let mut bad_inputs = vec![false; prepared.len()];
    for i in bad_signatures(&candidates, parallel) {
        if let Some(flag) = positions.get(i).and_then(|&p| bad_inputs.get_mut(p)) {
            *flag = true;
        }
    }

    prepared
        .into_iter()
        .zip(bad_inputs)
        .map(|(candidate, bad)| {
            let c = candidate?;
            if bad {
                return Err(AdmissionError::BadSignature);
            }
            Ok(VerifiedTransaction::new(c.signed, c.hash, c.len))
        })
        .collect()
}

/// The mempool's state checks against the sender's account as of the latest state, for a
/// transaction that would execute at `next_height` or later. A nonce above the next nonce
/// is allowed (it may become executable).
pub fn check_stateful(tx: &Transaction, account: &Account, next_height: u64) -> Result<(), AdmissionError> {
    if tx.nonce < account.nonce {
        return Err(AdmissionError::NonceTooLow { expected: account.nonce, actual: tx.nonce });
    }
    if tx.expiry_height < next_height {
        return Err(AdmissionError::Expired { expiry_height: tx.expiry_height, height: next_height });
    }
    match max_fee(tx.fuel_limit) {
        Some(fee) if fee <= account.balance => Ok(()),
        fee => Err(AdmissionError::InsufficientFunds {
            balance: account.balance,
            max_fee: fee.unwrap_or(u64::MAX),
        }),
    }
}
