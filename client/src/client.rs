//! [`Client`]: a typed async client for one validator's HTTP API (DESIGN §4).
//!
//! Every method maps to one endpoint and returns the shared [`crate::api`] types. Errors
//! are [`ClientError`]s: the server's [`ErrorBody`] with its HTTP status for refusals, and
//! the URL for connection failures. The client never retries a submission on its own
//! (a transaction is idempotent by hash, but a caller should decide when to resend).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use bastion_crypto::{Digest, KeyPair};
use bastion_ledger::{Address, SignedTransaction, TransactionBuilder};
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use serde::de::DeserializeOwned;

use crate::api::{
    encode_frames, AccountResponse, BlockResponse, ErrorBody, HealthResponse, StatusResponse,
    StorageResponse, SubmitBatchResponse, SubmitRequest, TxResponse, ViewRequest, ViewResponse,
};
use crate::error::ClientError;
use crate::events::BlockStream;

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `?wait=commit` may hold a request open (the node bounds its own wait).
pub const WAIT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// A new transaction expires this many heights after the node's current height.
pub const DEFAULT_EXPIRY_BLOCKS: u64 = 1_000;

/// A block by height, or the latest one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockId {
    Latest,
    Height(u64),
}

impl FromStr for BlockId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            return Ok(BlockId::Latest);
        }
        s.parse().map(BlockId::Height).map_err(|_| format!("{s:?} is neither a height nor \"latest\""))
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockId::Latest => f.write_str("latest"),
            BlockId::Height(h) => write!(f, "{h}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for the node at `base_url` (`http://127.0.0.1:8080`; a missing scheme
    /// means `http://`).
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        Self::with_timeout(base_url, DEFAULT_TIMEOUT)
    }

    pub fn with_timeout(base_url: &str, timeout: Duration) -> Result<Self, ClientError> {
        let trimmed = base_url.trim().trim_end_matches('/');
        let base = if trimmed.contains("://") { trimmed.to_string() } else { format!("http://{trimmed}") };
        let invalid =
            |reason: &str| ClientError::InvalidUrl { url: base_url.to_string(), reason: reason.to_string() };
        if !base.starts_with("http://") {
            return Err(invalid("only http:// URLs are supported"));
        }
        reqwest::Url::parse(&base).map_err(|e| invalid(&e.to_string()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .build()
            .map_err(|e| invalid(&e.to_string()))?;
        Ok(Client { base, http })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `GET /health`: `Ok` whether or not the node is ready (503 carries the reason).
    pub async fn health(&self) -> Result<HealthResponse, ClientError> {
        let url = self.url("/health");
        let (status, headers, body) = self.send(self.http.get(&url), &url).await?;
        if status == 503 {
            if let Ok(health) = serde_json::from_slice::<HealthResponse>(&body) {
                return Ok(health);
            }
        }
        decode(&url, status, &headers, &body)
    }

    /// `GET /status`.
    pub async fn status(&self) -> Result<StatusResponse, ClientError> {
        self.get_json("/status").await
    }

    /// `POST /v1/transactions` with the transaction as hex JSON. Returns as soon as the
    /// node admitted it (status `pending`).
    pub async fn submit(&self, tx: &SignedTransaction) -> Result<TxResponse, ClientError> {
        self.submit_json(tx, false).await
    }

    /// `POST /v1/transactions` with the canonical bincode bytes as
    /// `application/octet-stream`.
    pub async fn submit_raw(&self, bytes: Vec<u8>) -> Result<TxResponse, ClientError> {
        let url = self.url("/v1/transactions");
        let request = self.http.post(&url).header(CONTENT_TYPE, "application/octet-stream").body(bytes);
        let (status, headers, body) = self.send(request, &url).await?;
        decode(&url, status, &headers, &body)
    }

    /// `POST /v1/transactions/batch` with up to [`crate::api::MAX_SUBMIT_BATCH`] transactions'
    /// canonical bytes: one outcome per transaction, in order.
    pub async fn submit_batch<T: AsRef<[u8]>>(&self, txs: &[T]) -> Result<SubmitBatchResponse, ClientError> {
        let url = self.url("/v1/transactions/batch");
        let request =
            self.http.post(&url).header(CONTENT_TYPE, "application/octet-stream").body(encode_frames(txs));
        let (status, headers, body) = self.send(request, &url).await?;
        decode(&url, status, &headers, &body)
    }

    /// `POST /v1/transactions?wait=commit`: submits and waits (as long as the node allows)
    /// for the outcome. The answer may still be `pending` if the node's wait ran out.
    pub async fn submit_and_wait(&self, tx: &SignedTransaction) -> Result<TxResponse, ClientError> {
        self.submit_json(tx, true).await
    }

    async fn submit_json(&self, tx: &SignedTransaction, wait: bool) -> Result<TxResponse, ClientError> {
        let bytes = tx.to_bytes().map_err(|e| ClientError::Encode(e.to_string()))?;
        let url = self.url(if wait { "/v1/transactions?wait=commit" } else { "/v1/transactions" });
        let mut request = self.http.post(&url).json(&SubmitRequest { tx: hex::encode(bytes) });
        if wait {
            request = request.timeout(WAIT_REQUEST_TIMEOUT);
        }
        let (status, headers, body) = self.send(request, &url).await?;
        decode(&url, status, &headers, &body)
    }

    /// `GET /v1/transactions/{hash}`.
    pub async fn transaction(&self, hash: &Digest) -> Result<TxResponse, ClientError> {
        self.get_json(&format!("/v1/transactions/{hash}")).await
    }

    /// Polls `GET /v1/transactions/{hash}` until the transaction is final or `timeout`
    /// passes. Returns the last answer (which is `pending` on timeout); if the node never
    /// answered with the transaction (unknown, unreachable, not ready), the last error.
    pub async fn wait_for_final(&self, hash: &Digest, timeout: Duration) -> Result<TxResponse, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut delay = Duration::from_millis(100);
        let mut last: Result<TxResponse, ClientError>;
        loop {
            last = self.transaction(hash).await;
            match &last {
                Ok(tx) if tx.status.is_final() => return last,
                Ok(_) => {}
                Err(e) if e.is_unavailable() || e.status() == Some(404) => {}
                Err(_) => return last,
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return last;
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }

    /// `GET /v1/accounts/{addr}`: balance and nonces at the latest executed height.
    pub async fn account(&self, address: &Address) -> Result<AccountResponse, ClientError> {
        self.get_json(&format!("/v1/accounts/{address}")).await
    }

    /// `GET /v1/accounts/{addr}?proof=true`: at the latest certified height, with a proof
    /// to check with [`crate::verify::verify_account`].
    pub async fn account_with_proof(&self, address: &Address) -> Result<AccountResponse, ClientError> {
        self.get_json(&format!("/v1/accounts/{address}?proof=true")).await
    }

    /// `GET /v1/contracts/{addr}/storage/{key_hex}` (`?proof=true` with `proof`).
    pub async fn storage(
        &self,
        contract: &Address,
        key: &[u8],
        proof: bool,
    ) -> Result<StorageResponse, ClientError> {
        let query = if proof { "?proof=true" } else { "" };
        self.get_json(&format!("/v1/contracts/{contract}/storage/{}{query}", hex::encode(key))).await
    }

    /// `POST /v1/contracts/{addr}/view`: runs `method` read-only (with `proof`: at the
    /// certified height, with a witness to check the answer by, see [`crate::verify_view`]).
    pub async fn view(
        &self,
        contract: &Address,
        method: &str,
        args: &[u8],
        proof: bool,
    ) -> Result<ViewResponse, ClientError> {
        let url = self.url(&format!("/v1/contracts/{contract}/view"));
        let body = ViewRequest { method: method.to_string(), args_hex: hex::encode(args), proof };
        let request = self.http.post(&url).json(&body);
        let (status, headers, body) = self.send(request, &url).await?;
        decode(&url, status, &headers, &body)
    }

    /// `GET /v1/blocks/{height|latest}`.
    pub async fn block(&self, id: BlockId) -> Result<BlockResponse, ClientError> {
        self.get_json(&format!("/v1/blocks/{id}")).await
    }

    /// `GET /v1/events` (server-sent events): committed blocks from height `from` on
    /// (`None`: from now), resumed automatically after a disconnection.
    pub async fn events(&self, from: Option<u64>) -> Result<BlockStream, ClientError> {
        BlockStream::connect(self.clone(), from).await
    }

    /// `GET /metrics`: the Prometheus text exposition.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let url = self.url("/metrics");
        let (status, headers, body) = self.send(self.http.get(&url), &url).await?;
        if !(200..300).contains(&status) {
            return Err(api_error(&url, status, &headers, &body));
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// `GET /openapi.json`.
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        self.get_json("/openapi.json").await
    }

    /// A [`TransactionBuilder`] for `key`'s next transaction: this chain's id, the sender's
    /// pending nonce (so quick successive sends do not collide), expiry
    /// [`DEFAULT_EXPIRY_BLOCKS`] after the current height, and `fuel_limit`.
    pub async fn transaction_builder(
        &self,
        key: &KeyPair,
        fuel_limit: u64,
    ) -> Result<TransactionBuilder, ClientError> {
        let sender = Address::from_public_key(&key.public());
        let (status, account) = tokio::join!(self.status(), self.account(&sender));
        let status = status?;
        let nonce = match account {
            Ok(account) => account.pending_nonce,
            // A node may answer 404 for an address it has never seen: its first nonce is 0.
            Err(e) if e.status() == Some(404) => 0,
            Err(e) => return Err(e),
        };
        let height = status.committed_height.max(status.executed_height);
        Ok(TransactionBuilder::new(status.chain_id, key.clone())
            .nonce(nonce)
            .expiry_height(height.saturating_add(DEFAULT_EXPIRY_BLOCKS))
            .fuel_limit(fuel_limit))
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        let (status, headers, body) = self.send(self.http.get(&url), &url).await?;
        decode(&url, status, &headers, &body)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<(u16, HeaderMap, bytes::Bytes), ClientError> {
        let response = request.send().await.map_err(|e| unreachable(url, &e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| unreachable(url, &e))?;
        Ok((status, headers, body))
    }
}

/// A transport failure, with its causes (reqwest's own message is terse).
pub(crate) fn unreachable(url: &str, error: &reqwest::Error) -> ClientError {
    let mut reason = if error.is_timeout() { "timed out".to_string() } else { String::new() };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(cause) = source {
        if !reason.is_empty() {
            reason.push_str(": ");
        }
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    if reason.is_empty() {
        reason = error.to_string();
    }
    ClientError::Unreachable { url: url.to_string(), reason }
}

fn decode<T: DeserializeOwned>(
    url: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ClientError> {
    if !(200..300).contains(&status) {
        return Err(api_error(url, status, headers, body));
    }
    serde_json::from_slice(body).map_err(|e| ClientError::Decode {
        url: url.to_string(),
        status,
        reason: format!("{e}; body: {}", snippet(body)),
    })
}

/// An error answer: the documented [`ErrorBody`], or (for a proxy, or a route the node
/// does not have) the body text under code `http_<status>`.
pub(crate) fn api_error(url: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> ClientError {
    let body = serde_json::from_slice::<ErrorBody>(body)
        .unwrap_or_else(|_| ErrorBody { code: format!("http_{status}"), message: snippet(body) });
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    ClientError::Api { url: url.to_string(), status, body, retry_after }
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}
