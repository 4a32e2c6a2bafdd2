//! Checking a node's state answers without trusting the node.
//!
//! A proof-carrying answer ([`AccountResponse`], [`StorageResponse`] or [`ViewResponse`]
//! asked for with a proof) holds Merkle proofs and the [`StateCertificate`] of the root
//! they prove against. [`verify_account`], [`verify_storage`] and [`verify_view`] accept the
//! answer only if
//! 1. the certificate is for `chain_id` and carries a quorum (`2f+1` of the committee) of
//!    valid signatures from the committee's keys (taken from genesis, not from the node);
//! 2. the proof is for the height the certificate certifies and for the address (and key)
//!    that was asked about, and ties its value (or its absence) to the certified root;
//! 3. the answer's plain fields (balance, nonce, value, ...) equal the proven value; for a
//!    view, the proven value is what re-running the view over the witness returns.
//!
//! Anything else is a [`VerifyError`] naming what did not hold.

use bastion_crypto::PublicKey;
use bastion_ledger::{verify_view as rerun_view, Account, Address, LedgerError, ProofError};
use thiserror::Error;

use crate::api::{AccountResponse, StorageResponse, ViewResponse};
use crate::certificate::{CertificateError, StateCertificate};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    #[error("the answer carries no proof (ask with proof=true)")]
    NoProof,
    #[error("state certificate rejected: {0}")]
    Certificate(#[from] CertificateError),
    #[error("the proof is for height {proof}, the certificate for height {certificate}")]
    HeightMismatch { proof: u64, certificate: u64 },
    #[error("the answer is for {answer}, the proof for {proof}")]
    SubjectMismatch { answer: String, proof: String },
    #[error("Merkle proof rejected: {0}")]
    Proof(#[from] ProofError),
    #[error("the answer says {field} = {claimed}, the proof says {proven}")]
    ValueMismatch { field: &'static str, claimed: String, proven: String },
    #[error("bad hex in {field}: {message}")]
    BadHex { field: &'static str, message: String },
    #[error("re-running the view over its witness failed: {0}")]
    View(LedgerError),
}

/// An account answer that passed [`verify_account`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAccount {
    /// The certified height the answer holds at.
    pub height: u64,
    /// How many validators signed the root.
    pub signers: usize,
    /// The committee's size.
    pub validators: usize,
    /// The proven account (`None`: no account at that address, which reads as empty).
    pub account: Option<Account>,
}

/// A storage answer that passed [`verify_storage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedStorage {
    pub height: u64,
    pub signers: usize,
    pub validators: usize,
    /// The proven value (`None`: the key holds nothing).
    pub value: Option<Vec<u8>>,
}

/// A view answer that passed [`verify_view`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedView {
    pub height: u64,
    pub signers: usize,
    pub validators: usize,
    /// What the method returned, re-computed from proven state.
    pub return_data: Vec<u8>,
}

fn check_certificate(
    certificate: &StateCertificate,
    proof_height: u64,
    chain_id: &str,
    committee: &[PublicKey],
) -> Result<(), VerifyError> {
    certificate.verify(chain_id, committee)?;
    if proof_height != certificate.height {
        return Err(VerifyError::HeightMismatch { proof: proof_height, certificate: certificate.height });
    }
    Ok(())
}

fn ensure_equal<T: PartialEq + ToString>(
    field: &'static str,
    claimed: T,
    proven: T,
) -> Result<(), VerifyError> {
    if claimed == proven {
        Ok(())
    } else {
        Err(VerifyError::ValueMismatch { field, claimed: claimed.to_string(), proven: proven.to_string() })
    }
}

/// Verifies an account answer against the committee (see the module docs).
pub fn verify_account(
    response: &AccountResponse,
    chain_id: &str,
    committee: &[PublicKey],
) -> Result<VerifiedAccount, VerifyError> {
    let certified = response.proof.as_ref().ok_or(VerifyError::NoProof)?;
    let (proof, certificate) = (&certified.proof, &certified.certificate);
    check_certificate(certificate, proof.height, chain_id, committee)?;
    if proof.address != response.address {
        return Err(VerifyError::SubjectMismatch {
            answer: response.address.to_hex(),
            proof: proof.address.to_hex(),
        });
    }
    let account = proof.verify(certificate.state_root, &response.address)?;
    let proven = account.clone().unwrap_or_default();
    ensure_equal("height", response.height, certificate.height)?;
    ensure_equal("balance", response.balance, proven.balance)?;
    ensure_equal("nonce", response.nonce, proven.nonce)?;
    ensure_equal("is_contract", response.is_contract, proven.is_contract())?;
    Ok(VerifiedAccount {
        height: certificate.height,
        signers: certificate.signers.len(),
        validators: committee.len(),
        account,
    })
}

/// Verifies a contract storage answer against the committee (see the module docs).
pub fn verify_storage(
    response: &StorageResponse,
    chain_id: &str,
    committee: &[PublicKey],
) -> Result<VerifiedStorage, VerifyError> {
    let certified = response.proof.as_ref().ok_or(VerifyError::NoProof)?;
    let (proof, certificate) = (&certified.proof, &certified.certificate);
    check_certificate(certificate, proof.height, chain_id, committee)?;
    let key = decode_hex("key_hex", &response.key_hex)?;
    if proof.contract != response.contract || proof.key != key {
        return Err(VerifyError::SubjectMismatch {
            answer: format!("{}/{}", response.contract, response.key_hex),
            proof: format!("{}/{}", proof.contract, hex::encode(&proof.key)),
        });
    }
    let value = proof.verify(certificate.state_root, &response.contract, &key)?;
    let claimed = response.value_hex.as_deref().map(|v| decode_hex("value_hex", v)).transpose()?;
    let show = |v: &Option<Vec<u8>>| v.as_ref().map_or_else(|| "(none)".to_string(), hex::encode);
    ensure_equal("value", show(&claimed), show(&value))?;
    ensure_equal("height", response.height, certificate.height)?;
    Ok(VerifiedStorage {
        height: certificate.height,
        signers: certificate.signers.len(),
        validators: committee.len(),
        value,
    })
}

/// Verifies a view answer by re-running `method(args)` of `contract` over the answer's
/// witness, whose every read must be proven under the certified root (see the module docs).
pub fn verify_view(
    response: &ViewResponse,
    contract: &Address,
    method: &str,
    args: &[u8],
    chain_id: &str,
    committee: &[PublicKey],
) -> Result<VerifiedView, VerifyError> {
    let certified = response.proof.as_ref().ok_or(VerifyError::NoProof)?;
    let (witness, certificate) = (&certified.proof, &certified.certificate);
    check_certificate(certificate, witness.height, chain_id, committee)?;
    let outcome =
        rerun_view(certificate.state_root, witness, contract, method, args).map_err(VerifyError::View)?;
    let claimed = decode_hex("return_hex", &response.return_hex)?;
    ensure_equal("return_hex", hex::encode(claimed), hex::encode(&outcome.return_data))?;
    ensure_equal("height", response.height, certificate.height)?;
    ensure_equal("fuel_used", response.fuel_used, outcome.fuel_used)?;
    ensure_equal("events", response.events.len(), outcome.events.len())?;
    Ok(VerifiedView {
        height: certificate.height,
        signers: certificate.signers.len(),
        validators: committee.len(),
        return_data: outcome.return_data,
    })
}

fn decode_hex(field: &'static str, text: &str) -> Result<Vec<u8>, VerifyError> {
    hex::decode(text.strip_prefix("0x").unwrap_or(text))
        .map_err(|e| VerifyError::BadHex { field, message: e.to_string() })
}
