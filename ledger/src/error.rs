//! Typed errors of the ledger crate.
//!
//! Errors here are about the *caller's* request (a malformed transaction, an unknown height)
//! or about the storage under the ledger. A transaction that is valid to include but fails
//! while executing is not an error: it produces a failed or rejected [`crate::Receipt`].

use thiserror::Error;

/// The canonical encoding could not encode or decode a value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    #[error("cannot encode: {0}")]
    Encode(String),
    #[error("cannot decode: {0}")]
    Decode(String),
    #[error("{size} bytes exceeds the limit of {max}")]
    TooLarge { size: usize, max: usize },
}

/// Why a transaction is not admitted to the mempool (or to a block).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AdmissionError {
    #[error("bad encoding: {0}")]
    Encoding(String),
    #[error("transaction is {size} bytes, the limit is {max}")]
    TooLarge { size: usize, max: usize },
    #[error("wrong chain id: expected {expected:?}, got {actual:?}")]
    WrongChain { expected: String, actual: String },
    #[error("invalid signature")]
    BadSignature,
    #[error("fuel limit {limit} exceeds the maximum of {max}")]
    FuelLimitTooHigh { limit: u64, max: u64 },
    #[error("fuel limit {limit} is below the intrinsic cost {min}")]
    FuelLimitTooLow { limit: u64, min: u64 },
    #[error("contract code is {size} bytes, the limit is {max}")]
    CodeTooLarge { size: usize, max: usize },
    #[error("invalid method name: {0}")]
    BadMethod(String),
    #[error("nonce {actual} is below the account's next nonce {expected}")]
    NonceTooLow { expected: u64, actual: u64 },
    #[error("transaction expired at height {expiry_height} (next height {height})")]
    Expired { expiry_height: u64, height: u64 },
    #[error("balance {balance} cannot pay the maximum fee {max_fee}")]
    InsufficientFunds { balance: u64, max_fee: u64 },
}

impl AdmissionError {
    /// A stable machine-readable code for APIs (`{"code": ..., "message": ...}`).
    pub fn code(&self) -> &'static str {
        match self {
            AdmissionError::Encoding(_) => "bad_encoding",
            AdmissionError::TooLarge { .. } | AdmissionError::CodeTooLarge { .. } => "too_large",
            AdmissionError::WrongChain { .. } => "wrong_chain",
            AdmissionError::BadSignature => "bad_signature",
            AdmissionError::FuelLimitTooHigh { .. } | AdmissionError::FuelLimitTooLow { .. } => {
                "bad_fuel_limit"
            }
            AdmissionError::BadMethod(_) => "bad_method",
            AdmissionError::NonceTooLow { .. } => "nonce_too_low",
            AdmissionError::Expired { .. } => "expired",
            AdmissionError::InsufficientFunds { .. } => "insufficient_funds",
        }
    }
}

impl From<CodecError> for AdmissionError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::TooLarge { size, max } => AdmissionError::TooLarge { size, max },
            other => AdmissionError::Encoding(other.to_string()),
        }
    }
}

/// The storage under the state tree failed or returned inconsistent data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    #[error("storage backend: {0}")]
    Backend(String),
    #[error("stored state is corrupt: {0}")]
    Corrupt(String),
}

impl From<CodecError> for StoreError {
    fn from(e: CodecError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// A Merkle proof does not establish the claimed value under the given root.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProofError {
    #[error("the proof is for a different key than the one asked about")]
    KeyMismatch,
    #[error("proof does not verify: {0}")]
    Invalid(String),
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// The genesis document is unusable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GenesisError {
    #[error("chain id must be 1..={max} bytes", max = crate::codec::MAX_CHAIN_ID_BYTES)]
    BadChainId,
    #[error("account {0} is listed twice")]
    DuplicateAccount(String),
    #[error("validator {0} is listed twice")]
    DuplicateValidator(String),
    #[error("genesis lists no validators")]
    NoValidators,
    #[error("total supply overflows u64")]
    SupplyOverflow,
}

/// Why a contract module cannot be deployed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContractError {
    #[error("code is {size} bytes, the limit is {max}")]
    TooLarge { size: usize, max: usize },
    #[error("code is not a binary WebAssembly module")]
    NotBinary,
    #[error("module does not validate: {0}")]
    Invalid(String),
    #[error("forbidden import {module}::{name}")]
    ForbiddenImport { module: String, name: String },
    #[error("import {0} has the wrong type")]
    ImportType(String),
    #[error("module must export its memory as \"memory\"")]
    NoMemoryExport,
    #[error("initial memory of {pages} pages exceeds the limit of {max}")]
    MemoryTooLarge { pages: u64, max: u64 },
    #[error("exported function {0:?} must take no parameters and return nothing")]
    MethodSignature(String),
    #[error("cannot parse WAT: {0}")]
    Wat(String),
}

/// Errors of the executor and of state queries.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    #[error("expected to execute height {expected}, got {actual}")]
    HeightMismatch { expected: u64, actual: u64 },
    #[error("state at height {0} is not available (not executed yet, or pruned)")]
    UnknownHeight(u64),
    #[error("the store already holds state; open it instead of writing genesis")]
    AlreadyInitialized,
    #[error("the store holds no state; write genesis first")]
    NotInitialized,
    #[error("no contract at {0}")]
    NoContract(String),
    #[error("view failed: {0}")]
    ViewFailed(String),
    #[error("view witness rejected: {0}")]
    Witness(String),
    #[error("contract runtime: {0}")]
    Runtime(String),
}
