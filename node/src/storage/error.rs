//! [`StorageError`]: everything the validator's storage can report.
//!
//! The variants separate what the operator must act on (a data directory that is not ours,
//! belongs to another chain, or is damaged) from transient failures of the disk
//! ([`StorageError::Io`], e.g. a full disk), after which the node must stop voting because
//! it can no longer persist what a vote depends on. Nothing read from disk ever panics:
//! bytes that do not decode surface as [`StorageError::Corrupt`].

use std::path::PathBuf;

use bastion_crypto::Digest;
use bastion_ledger::StoreError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("{path} is not a Bastion database: {detail}")]
    NotADatabase { path: PathBuf, detail: String },
    #[error("the database at {path} is corrupted and cannot be opened: {detail}")]
    CorruptDatabase { path: PathBuf, detail: String },
    #[error("cannot open the database at {path}: {detail}")]
    Open { path: PathBuf, detail: String },
    #[error(
        "the database was created for genesis {stored}, but this node runs genesis {expected}; \
         use the data directory of this chain or start from an empty one"
    )]
    GenesisMismatch { stored: Digest, expected: Digest },
    #[error(
        "the database has schema version {found}; this build reads version {supported} \
         (start from an empty data directory, e.g. `bastion testnet up --reset`)"
    )]
    UnsupportedSchema { found: u32, supported: u32 },
    #[error("corrupt {what} in storage: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("storage {op} failed: {detail}")]
    Io { op: &'static str, detail: String },
    #[error("cannot encode {what} for storage: {detail}")]
    Encode { what: &'static str, detail: String },
    #[error("refused to store {what}: {detail}")]
    Refused { what: &'static str, detail: String },
}

impl StorageError {
    /// Classifies a RocksDB failure of an operation on an open database.
    pub(crate) fn rocksdb(op: &'static str, error: rocksdb::Error) -> Self {
        match error.kind() {
            rocksdb::ErrorKind::Corruption => {
                StorageError::Corrupt { what: "database files", detail: error.into_string() }
            }
            _ => StorageError::Io { op, detail: error.into_string() },
        }
    }

    /// Classifies a RocksDB failure while opening the database at `path`.
    pub(crate) fn opening(path: PathBuf, error: rocksdb::Error) -> Self {
        match error.kind() {
            rocksdb::ErrorKind::Corruption => {
                StorageError::CorruptDatabase { path, detail: error.into_string() }
            }
            _ => StorageError::Open { path, detail: error.into_string() },
        }
    }
}

/// The ledger's tree code sees storage failures through its own error type.
impl From<StorageError> for StoreError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Corrupt { .. } | StorageError::CorruptDatabase { .. } => {
                StoreError::Corrupt(error.to_string())
            }
            other => StoreError::Backend(other.to_string()),
        }
    }
}
