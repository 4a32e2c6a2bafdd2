//! The JSON shapes of the validator HTTP API (DESIGN §4).
//!
//! Server (node) and client (SDK, CLI) both use these types, so a field can only change in
//! one place. Digests, keys and addresses are lowercase hex strings; byte strings are hex in
//! `*_hex` fields. Every error is an [`ErrorBody`] with one of the [`codes`].

use bastion_crypto::{Digest, PublicKey};
use bastion_ledger::{AccountProof, Address, StorageProof, ViewWitness};
use serde::{Deserialize, Serialize};

use crate::certificate::StateCertificate;

/// Machine-readable error codes, with the HTTP status each is served with.
pub mod codes {
    /// 400: the body is not a transaction (bad hex, bad bincode, trailing bytes).
    pub const BAD_ENCODING: &str = "bad_encoding";
    /// 400: a malformed request other than the transaction body (bad hex in a path, ...).
    pub const BAD_REQUEST: &str = "bad_request";
    /// 401: the transaction's signature does not verify.
    pub const BAD_SIGNATURE: &str = "bad_signature";
    /// 422: the transaction is for another chain.
    pub const WRONG_CHAIN: &str = "wrong_chain";
    /// 422: the transaction's expiry height has passed.
    pub const EXPIRED: &str = "expired";
    /// 422: the sender cannot pay `fuel_limit` x price up front.
    pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";
    /// 409: the nonce is below the sender's next nonce.
    pub const NONCE_TOO_LOW: &str = "nonce_too_low";
    /// 413: the body or transaction exceeds the size limit.
    pub const TOO_LARGE: &str = "too_large";
    /// 415: neither `application/json` nor `application/octet-stream`.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    /// 429: the mempool (or the sender's share of it) is full; see `Retry-After`.
    pub const MEMPOOL_FULL: &str = "mempool_full";
    /// 405: the path exists but not with this method (see the `Allow` header).
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// 404: no such transaction, block or account.
    pub const NOT_FOUND: &str = "not_found";
    /// 404: no contract at that address.
    pub const UNKNOWN_CONTRACT: &str = "unknown_contract";
    /// 503: the node is starting, catching up, or halted.
    pub const NOT_READY: &str = "not_ready";
    /// 500: a bug or a storage failure; details are in the node's log.
    pub const INTERNAL: &str = "internal";
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// `POST /v1/transactions` with `Content-Type: application/json`. (With
/// `application/octet-stream` the body is the signed transaction's bincode bytes.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitRequest {
    /// Hex of the signed transaction's canonical bincode encoding.
    pub tx: String,
}

/// The most transactions one `POST /v1/transactions/batch` may carry.
pub const MAX_SUBMIT_BATCH: usize = 1024;
/// The largest `POST /v1/transactions/batch` body in binary form (JSON may be twice this,
/// plus room for the quotes and commas around the hex).
pub const MAX_SUBMIT_BATCH_BYTES: usize = 8 << 20;

/// `POST /v1/transactions/batch` with `Content-Type: application/json`. (With
/// `application/octet-stream` the body is the transactions framed by [`encode_frames`].)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitBatchRequest {
    /// Hex of each signed transaction's canonical bincode encoding.
    pub txs: Vec<String>,
}

/// The verdict on one transaction of a batch submission: its hash once admitted (or already
/// known), else the error it would have got alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitOutcome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// Answer to `POST /v1/transactions/batch`: one outcome per transaction, in request order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitBatchResponse {
    /// How many outcomes carry a hash.
    pub accepted: usize,
    pub results: Vec<SubmitOutcome>,
}

/// The binary batch body: each transaction as a 4-byte little-endian length, then its bytes.
pub fn encode_frames<T: AsRef<[u8]>>(txs: &[T]) -> Vec<u8> {
    let total = txs.iter().map(|t| 4 + t.as_ref().len()).sum();
    let mut out = Vec::with_capacity(total);
    for tx in txs {
        let tx = tx.as_ref();
        out.extend_from_slice(&(tx.len() as u32).to_le_bytes());
        out.extend_from_slice(tx);
    }
    out
}

/// Where each transaction of an [`encode_frames`] body lies, checked before anything is
/// copied: at most `max_count` frames, every length within the body, no trailing bytes.
pub fn frame_ranges(body: &[u8], max_count: usize) -> Result<Vec<std::ops::Range<usize>>, String> {
    let mut ranges = Vec::new();
    let mut at = 0usize;
    while at < body.len() {
        if ranges.len() == max_count {
            return Err(format!("more than {max_count} transactions in one batch"));
        }
        let Some(prefix) = body.get(at..at + 4) else {
            return Err(format!("truncated length prefix at byte {at}"));
        };
        let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        let start = at + 4;
        let end = start.checked_add(len).filter(|&end| end <= body.len()).ok_or_else(|| {
            format!("transaction {} claims {len} bytes but only {} remain", ranges.len(), body.len() - start)
        })?;
        ranges.push(start..end);
        at = end;
    }
    Ok(ranges)
}

/// Where a transaction is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    Pending,
    CommittedOk,
    CommittedFailed,
    Expired,
    Rejected,
}

impl TxStatus {
    pub fn is_final(&self) -> bool {
        !matches!(self, TxStatus::Pending)
    }
}

/// Finer-grained progress of a pending transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxStage {
    Received,
    InBatch,
    Proposed,
    Committed,
    Failed,
    Expired,
    Rejected,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    pub contract: Address,
    pub topic_hex: String,
    pub data_hex: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptView {
    /// `committed_ok` or `committed_failed`.
    pub status: TxStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub height: u64,
    pub index: u32,
    pub fuel_used: u64,
    pub events: Vec<EventView>,
    pub return_hex: String,
    /// The new contract's address, for a deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<Address>,
}

/// Answer to `POST /v1/transactions` and `GET /v1/transactions/{hash}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxResponse {
    pub hash: Digest,
    pub status: TxStatus,
    pub stage: TxStage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<ReceiptView>,
    /// Why a transaction was rejected or expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A state answer's proof: the Merkle proof, and the certificate of the root it proves against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CertifiedProof<P> {
    pub proof: P,
    pub certificate: StateCertificate,
}

/// `GET /v1/accounts/{addr}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountResponse {
    pub address: Address,
    pub balance: u64,
    /// The next nonce in executed state.
    pub nonce: u64,
    /// The next nonce counting this node's pending transactions from the sender.
    pub pending_nonce: u64,
    pub is_contract: bool,
    /// The height the answer was read at (the certified height when a proof is asked for).
    pub height: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<CertifiedProof<AccountProof>>,
}

/// `GET /v1/contracts/{addr}/storage/{key_hex}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StorageResponse {
    pub contract: Address,
    pub key_hex: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_hex: Option<String>,
    pub height: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<CertifiedProof<StorageProof>>,
}

/// `POST /v1/contracts/{addr}/view`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewRequest {
    pub method: String,
    #[serde(default)]
    pub args_hex: String,
    /// Run at the latest certified height and return a witness to re-run it with.
    #[serde(default)]
    pub proof: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewResponse {
    pub return_hex: String,
    pub height: u64,
    pub fuel_used: u64,
    pub events: Vec<EventView>,
    /// With `proof`: the certified root at `height` and proofs of the contract's code and
    /// every state key the view read, so a client can re-run the view and check the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<CertifiedProof<ViewWitness>>,
}

/// A transaction inside a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockTx {
    pub hash: Digest,
    pub status: TxStatus,
}

/// `GET /v1/blocks/{height|latest}`, and each server-sent event of `GET /v1/events`
/// (event name `block`, event id = height).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockResponse {
    pub height: u64,
    pub hash: Digest,
    pub round: u64,
    pub proposer: u16,
    pub parent: Digest,
    /// State root after executing this block (absent in consensus-only mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_root: Option<Digest>,
    pub batches: Vec<Digest>,
    pub txs: Vec<BlockTx>,
    /// Contract events emitted by this block's transactions, in order.
    pub events: Vec<BlockEvent>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEvent {
    pub tx_hash: Digest,
    #[serde(flatten)]
    pub event: EventView,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorView {
    pub index: u16,
    pub public_key: PublicKey,
    pub quic_addr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

/// `GET /status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    pub chain_id: String,
    pub validator_index: u16,
    pub ready: bool,
    pub consensus_only: bool,
    pub round: u64,
    pub committed_height: u64,
    pub executed_height: u64,
    pub certified_height: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_root: Option<Digest>,
    pub mempool_size: usize,
    pub peers_connected: usize,
    pub validators: Vec<ValidatorView>,
    pub version: String,
    /// Why the validator stopped voting for good (e.g. its disk is full), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halted: Option<String>,
}

/// `GET /health`: 200 when ready, 503 otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResponse {
    pub ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames `frame_ranges` finds in `body`, as byte strings.
    fn frames(body: &[u8], max_count: usize) -> Result<Vec<Vec<u8>>, String> {
        Ok(frame_ranges(body, max_count)?.into_iter().map(|range| body[range].to_vec()).collect())
    }

    #[test]
    fn frames_round_trip_in_order() {
        let cases: Vec<Vec<Vec<u8>>> = vec![
            vec![],
            vec![b"one transaction".to_vec()],
            vec![b"first".to_vec(), Vec::new(), vec![0xff; 300], b"x".to_vec(), Vec::new()],
        ];
        for txs in cases {
            let body = encode_frames(&txs);
            assert_eq!(body.len(), txs.iter().map(|tx| 4 + tx.len()).sum::<usize>());
            assert_eq!(frames(&body, MAX_SUBMIT_BATCH), Ok(txs));
        }
    }

    #[test]
    fn the_length_prefix_is_four_bytes_little_endian() {
        let body = encode_frames(&[vec![7u8; 258]]);
        assert_eq!(body[..4], [2, 1, 0, 0]);
        assert_eq!(body[4..], [7u8; 258]);
        // An empty transaction is a zero length and nothing else.
        assert_eq!(encode_frames(&[[0u8; 0]]), vec![0, 0, 0, 0]);
    }

    #[test]
    fn a_truncated_length_prefix_is_refused() {
        let whole = encode_frames(&[b"abc".as_slice()]);
        for cut in 1..4 {
            let err = frame_ranges(&whole[..cut], MAX_SUBMIT_BATCH).unwrap_err();
            assert!(err.contains("truncated length prefix at byte 0"), "{err}");
        }
        // After a complete frame, too.
        let mut body = whole.clone();
        body.extend_from_slice(&[1, 0]);
        let err = frame_ranges(&body, MAX_SUBMIT_BATCH).unwrap_err();
        assert!(err.contains("truncated length prefix at byte 7"), "{err}");
    }

    #[test]
    fn a_length_past_the_end_is_refused() {
        // One byte short.
        let mut body = encode_frames(&[b"abcdef".as_slice()]);
        body.pop();
        let err = frame_ranges(&body, MAX_SUBMIT_BATCH).unwrap_err();
        assert!(err.contains("transaction 0 claims 6 bytes but only 5 remain"), "{err}");
        // The largest length a prefix can claim, after a good frame: refused from the prefix
        // alone (nothing is reserved for it).
        let mut body = encode_frames(&[b"ok".as_slice()]);
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        body.extend_from_slice(b"tail");
        let err = frame_ranges(&body, MAX_SUBMIT_BATCH).unwrap_err();
        assert!(err.contains(&format!("transaction 1 claims {} bytes but only 4 remain", u32::MAX)), "{err}");
    }

    #[test]
    fn at_most_max_count_frames_are_accepted() {
        let txs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; usize::from(i)]).collect();
        let body = encode_frames(&txs);
        assert_eq!(frames(&body, 5), Ok(txs.clone()));
        let err = frame_ranges(&body, 4).unwrap_err();
        assert!(err.contains("more than 4 transactions"), "{err}");
        // Empty frames count too.
        let empties = encode_frames(&[[0u8; 0]; MAX_SUBMIT_BATCH + 1]);
        assert_eq!(
            frame_ranges(&empties[..4 * MAX_SUBMIT_BATCH], MAX_SUBMIT_BATCH).map(|r| r.len()),
            Ok(MAX_SUBMIT_BATCH)
        );
        let err = frame_ranges(&empties, MAX_SUBMIT_BATCH).unwrap_err();
        assert!(err.contains(&format!("more than {MAX_SUBMIT_BATCH} transactions")), "{err}");
        // No transactions at all is a valid (empty) batch, whatever the limit.
        assert_eq!(frame_ranges(&[], 0), Ok(Vec::new()));
    }
}
