//! What the HTTP API needs from a running validator, as a trait.
//!
//! The axum handlers are written against [`NodeApi`] only, so they can be tested with a
//! mock and the node's internals can change freely. Every method answers from local state
//! and returns quickly, except [`NodeApi::wait_for_final`], which waits (bounded).

use std::future::Future;
use std::time::Duration;

use bastion_client::api::{
    AccountResponse, BlockResponse, StatusResponse, StorageResponse, TxResponse, ViewResponse,
};
use bastion_crypto::Digest;
use bastion_ledger::Address;
use bytes::Bytes;
use tokio::sync::broadcast;

/// Why the node refused or could not answer; mapped to an HTTP status and an error code by
/// the API layer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("bad encoding: {0}")]
    BadEncoding(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("transaction is for chain {got:?}, this is {expected:?}")]
    WrongChain { got: String, expected: String },
    #[error("transaction expired at height {expiry_height} (next height {next_height})")]
    Expired { expiry_height: u64, next_height: u64 },
    #[error("sender cannot pay the fuel limit: balance {balance}, needs {needed}")]
    InsufficientFunds { balance: u64, needed: u64 },
    #[error("nonce {nonce} is below the sender's next nonce {next}")]
    NonceTooLow { nonce: u64, next: u64 },
    #[error("too large: {size} bytes, limit {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("mempool full: {0}")]
    MempoolFull(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("no contract at {0}")]
    UnknownContract(Address),
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The validator as the API sees it.
pub trait NodeApi: Send + Sync + 'static {
    fn chain_id(&self) -> &str;

    /// Largest accepted transaction, in bytes.
    fn max_tx_bytes(&self) -> usize;

    fn status(&self) -> StatusResponse;

    /// Admits a signed transaction (canonical bincode bytes). Submitting the same
    /// transaction again returns the same hash and is not an error.
    fn submit(&self, tx: Bytes) -> Result<Digest, ApiError>;

    /// Admits many transactions at once, one verdict per transaction in input order, each
    /// the one [`NodeApi::submit`] would give. May block (signatures are checked as a batch).
    fn submit_many(&self, txs: Vec<Bytes>) -> Vec<Result<Digest, ApiError>> {
        txs.into_iter().map(|tx| self.submit(tx)).collect()
    }

    /// Status and receipt of a transaction this node has seen, `None` if unknown.
    fn transaction(&self, hash: &Digest) -> Result<Option<TxResponse>, ApiError>;

    /// Waits until the transaction is final (committed, failed, expired, rejected) or
    /// `timeout` passes, and returns its status then (possibly still pending).
    fn wait_for_final(
        &self,
        hash: Digest,
        timeout: Duration,
    ) -> impl Future<Output = Result<TxResponse, ApiError>> + Send;

    /// With `proof`, answers at the latest certified height with a certified proof.
    fn account(&self, address: &Address, proof: bool) -> Result<AccountResponse, ApiError>;

    fn storage(&self, contract: &Address, key: &[u8], proof: bool) -> Result<StorageResponse, ApiError>;

    fn view(
        &self,
        contract: &Address,
        method: &str,
        args: &[u8],
        proof: bool,
    ) -> Result<ViewResponse, ApiError>;

    /// A committed block by height, or the latest one with `None`.
    fn block(&self, height: Option<u64>) -> Result<Option<BlockResponse>, ApiError>;

    /// Committed (and, unless consensus-only, executed) blocks from `from` on, at most
    /// `limit`, oldest first: what a resuming event stream replays before going live.
    fn blocks_from(&self, from: u64, limit: usize) -> Result<Vec<BlockResponse>, ApiError>;

    /// Every block as it is committed and executed, in height order.
    fn subscribe_blocks(&self) -> broadcast::Receiver<BlockResponse>;

    /// Prometheus text exposition of the node's metrics.
    fn metrics(&self) -> String;
}
