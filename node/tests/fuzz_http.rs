//! Fuzz target of the HTTP API: the real router over a real validator state (RocksDB
//! storage, ledger state at genesis with funded accounts, mempool, admission); see
//! `fuzz/harness.rs`. An input is a request as text: `METHOD TARGET\nCONTENT-TYPE\nBODY`
//! (an empty second line sends no `Content-Type`).
//!
//! What every request must get, whatever its method, path, query, content type and body:
//! * an answer (no panic, no hang), with a documented status: 200, 202, or one of
//!   400/401/404/405/409/413/415/422/429/503 — never a 500;
//! * for an error, a JSON body `{"code": "...", "message": "..."}`; for a JSON success, a
//!   body that parses as JSON.
//!
//! The only change to the node is [`ShortWaits`]: `?wait=commit` waits at most a few
//! milliseconds (nothing commits here), so a case stays short.

mod common;
#[path = "../../fuzz/harness.rs"]
mod harness;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, StatusCode, Uri};
use axum::Router;
use bastion_client::api::{
    AccountResponse, BlockResponse, ErrorBody, StatusResponse, StorageResponse, TxResponse, ViewResponse,
};
use bastion_crypto::{Digest, KeyPair};
use bastion_ledger::{Address, TransactionBuilder};
use bastion_node::api::{router, ApiError, NodeApi};
use bastion_node::state::NodeState;
use bastion_testnet::config::GenesisAccount;
use bytes::Bytes;
use common::{key, validator_zero, TestValidator};
use futures::StreamExt;
use http_body_util::BodyExt;
use tokio::sync::broadcast;
use tower::ServiceExt;

const TARGET: &str = "http_requests";
const CHAIN: &str = "bastion-fuzz-http";
const DOCUMENTED: [u16; 12] = [200, 202, 400, 401, 404, 405, 409, 413, 415, 422, 429, 503];
/// Longest a `?wait=commit` waits here.
const SHORT_WAIT: Duration = Duration::from_millis(5);

fn funded() -> KeyPair {
    key(42)
}

/// The real node, with `wait_for_final` bounded by [`SHORT_WAIT`].
struct ShortWaits(Arc<NodeState>);

impl NodeApi for ShortWaits {
    fn chain_id(&self) -> &str {
        self.0.chain_id()
    }
    fn max_tx_bytes(&self) -> usize {
        self.0.max_tx_bytes()
    }
    fn status(&self) -> StatusResponse {
        self.0.status()
    }
    fn submit(&self, tx: Bytes) -> Result<Digest, ApiError> {
        self.0.submit(tx)
    }
    fn submit_many(&self, txs: Vec<Bytes>) -> Vec<Result<Digest, ApiError>> {
        self.0.submit_many(txs)
    }
    fn transaction(&self, hash: &Digest) -> Result<Option<TxResponse>, ApiError> {
        self.0.transaction(hash)
    }
    async fn wait_for_final(&self, hash: Digest, timeout: Duration) -> Result<TxResponse, ApiError> {
        self.0.wait_for_final(hash, timeout.min(SHORT_WAIT)).await
    }
    fn account(&self, address: &Address, proof: bool) -> Result<AccountResponse, ApiError> {
        self.0.account(address, proof)
    }
    fn storage(&self, contract: &Address, key: &[u8], proof: bool) -> Result<StorageResponse, ApiError> {
        self.0.storage(contract, key, proof)
    }
    fn view(
        &self,
        contract: &Address,
        method: &str,
        args: &[u8],
        proof: bool,
    ) -> Result<ViewResponse, ApiError> {
        self.0.view(contract, method, args, proof)
    }
    fn block(&self, height: Option<u64>) -> Result<Option<BlockResponse>, ApiError> {
        self.0.block(height)
    }
    fn blocks_from(&self, from: u64, limit: usize) -> Result<Vec<BlockResponse>, ApiError> {
        self.0.blocks_from(from, limit)
    }
    fn subscribe_blocks(&self) -> broadcast::Receiver<BlockResponse> {
        self.0.subscribe_blocks()
    }
    fn metrics(&self) -> String {
        self.0.metrics()
    }
}

/// Validator 0 of 4 at genesis, with `funded()` holding funds; ready.
/// Must run inside a Tokio runtime (the transport spawns its tasks).
fn validator() -> TestValidator {
    let funded = GenesisAccount { address: Address::from_public_key(&funded().public()), balance: 1 << 50 };
    validator_zero(CHAIN, 4, vec![funded], true)
}

fn request_text(method: &str, target: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    [format!("{method} {target}\n{content_type}\n").into_bytes(), body.to_vec()].concat()
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    let alice = TransactionBuilder::new(CHAIN, funded());
    let tx = alice.transfer(Address([9; 32]), 5).expect("tx").to_bytes().expect("bytes");
    let tx2 = alice.clone().nonce(1).transfer(Address([9; 32]), 6).expect("tx").to_bytes().expect("bytes");
    let wrong_chain = TransactionBuilder::new("other", funded())
        .transfer(Address([9; 32]), 1)
        .expect("tx")
        .to_bytes()
        .expect("bytes");
    let addr = Address::from_public_key(&funded().public()).to_hex();
    let hash = hex::encode(bastion_crypto::sha256(&tx).0);
    let json_tx = format!("{{\"tx\":\"{}\"}}", hex::encode(&tx2));
    let view = "{\"method\":\"get\",\"args_hex\":\"00ff\",\"proof\":false}";
    let frames = bastion_client::api::encode_frames(&[&tx, &tx2, &wrong_chain]);
    let json_batch = format!("{{\"txs\":[\"{}\",\"0x{}\"]}}", hex::encode(&tx), hex::encode(&tx2));
    let list: Vec<(&str, Vec<u8>)> = vec![
        ("health", request_text("GET", "/health", "", b"")),
        ("status", request_text("GET", "/status", "", b"")),
        ("metrics", request_text("GET", "/metrics", "", b"")),
        ("openapi", request_text("GET", "/openapi.json", "", b"")),
        ("submit_binary", request_text("POST", "/v1/transactions", "application/octet-stream", &tx)),
        ("submit_json", request_text("POST", "/v1/transactions", "application/json", json_tx.as_bytes())),
        (
            "submit_wait",
            request_text(
                "POST",
                "/v1/transactions?wait=commit&timeout_ms=5",
                "application/octet-stream",
                &tx,
            ),
        ),
        (
            "submit_wrong_chain",
            request_text("POST", "/v1/transactions", "application/octet-stream", &wrong_chain),
        ),
        ("submit_no_type", request_text("POST", "/v1/transactions", "", &tx)),
        (
            "submit_batch_binary",
            request_text("POST", "/v1/transactions/batch", "application/octet-stream", &frames),
        ),
        (
            "submit_batch_json",
            request_text("POST", "/v1/transactions/batch", "application/json", json_batch.as_bytes()),
        ),
        ("transaction", request_text("GET", &format!("/v1/transactions/{hash}"), "", b"")),
        ("account", request_text("GET", &format!("/v1/accounts/{addr}"), "", b"")),
        ("account_proof", request_text("GET", &format!("/v1/accounts/0x{addr}?proof=true"), "", b"")),
        ("storage", request_text("GET", &format!("/v1/contracts/{addr}/storage/00ff?proof=false"), "", b"")),
        (
            "view",
            request_text("POST", &format!("/v1/contracts/{addr}/view"), "application/json", view.as_bytes()),
        ),
        ("block_latest", request_text("GET", "/v1/blocks/latest", "", b"")),
        ("block_zero", request_text("GET", "/v1/blocks/0", "", b"")),
        ("events", request_text("GET", "/v1/events?from=0", "", b"")),
        ("wrong_method", request_text("DELETE", "/v1/transactions", "", b"")),
        ("unknown_path", request_text("GET", "/v2/%ff/../x?y=%zz", "", b"")),
        (
            "json_garbage",
            request_text("POST", "/v1/transactions", "application/json; charset=utf-8", b"{\"tx\":"),
        ),
    ];
    list.into_iter().map(|(name, bytes)| (format!("{name}.txt"), bytes)).collect()
}

/// The request an input describes, or `None` if it is not one a client could send.
fn parse_request(input: &[u8]) -> Option<Request<Body>> {
    let mut parts = input.splitn(3, |&b| b == b'\n');
    let line = parts.next()?;
    let content_type = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let space = line.iter().position(|&b| b == b' ')?;
    let method = Method::from_bytes(&line[..space]).ok()?;
    let uri = Uri::try_from(&line[space + 1..]).ok()?;
    let mut request = Request::builder().method(method).uri(uri);
    if !content_type.is_empty() {
        request = request.header(header::CONTENT_TYPE, HeaderValue::from_bytes(content_type).ok()?);
    }
    request.body(Body::from(body.to_vec())).ok()
}

async fn check_response(app: &Router, request: Request<Body>) -> Result<StatusCode, String> {
    let what = format!("{} {}", request.method(), request.uri());
    let response = tokio::time::timeout(Duration::from_secs(10), app.clone().oneshot(request))
        .await
        .map_err(|_| format!("{what}: no answer within 10 s"))?
        .map_err(|e| format!("{what}: {e}"))?;
    let status = response.status();
    if !DOCUMENTED.contains(&status.as_u16()) {
        return Err(format!("{what}: undocumented status {status}"));
    }
    let content_type =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if content_type.starts_with("text/event-stream") {
        return Ok(status); // An open event stream: its status and type are the answer.
    }
    let body = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .map_err(|_| format!("{what}: the body did not end"))?
        .map_err(|e| format!("{what}: body error {e}"))?
        .to_bytes();
    if status.is_client_error() || status.is_server_error() {
        if !content_type.starts_with("application/json") {
            return Err(format!("{what}: error {status} with Content-Type {content_type:?}"));
        }
        let error: ErrorBody = serde_json::from_slice(&body)
            .map_err(|e| format!("{what}: error {status} body is not {{code, message}}: {e}"))?;
        if error.code.is_empty() || error.message.is_empty() {
            return Err(format!("{what}: error {status} with an empty code or message"));
        }
    } else if content_type.starts_with("application/json")
        && serde_json::from_slice::<serde_json::Value>(&body).is_err()
    {
        return Err(format!("{what}: {status} with a body that is not JSON"));
    }
    Ok(status)
}

#[test]
fn fuzz_http_requests() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let validator = runtime.block_on(async { validator() });
    let app = router(Arc::new(ShortWaits(validator.state.clone())));
    let seeds = seeds();
    let seeds: Vec<(&str, Vec<u8>)> = seeds.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    harness::ensure_seeds(TARGET, &seeds);
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u64>::new());
    harness::run(TARGET, 5_000, 256, |input| match parse_request(input) {
        Some(request) => {
            let status = runtime.block_on(check_response(&app, request))?;
            *statuses.lock().expect("lock").entry(status.as_u16()).or_default() += 1;
            Ok(())
        }
        None => Ok(()),
    });
    eprintln!("fuzz {TARGET}: statuses of the requests sent {:?}", statuses.lock().expect("lock"));
}

/// A body that counts the bytes the server pulls from it.
fn counted_body(pulled: Arc<AtomicU64>, chunks: usize, chunk: usize) -> Body {
    let stream = futures::stream::iter(0..chunks).map(move |_| {
        pulled.fetch_add(chunk as u64, Ordering::SeqCst);
        Ok::<_, std::io::Error>(Bytes::from(vec![0u8; chunk]))
    });
    Body::from_stream(stream)
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_buffering() {
    let validator = validator();
    let limit = bastion_node::api::transactions::max_submit_body(validator.state.max_tx_bytes());
    let app = router(Arc::new(ShortWaits(validator.state.clone())));
    // A declared length over the limit: refused before a byte of the body is read.
    let pulled = Arc::new(AtomicU64::new(0));
    let request = Request::post("/v1/transactions")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, (limit + 1).to_string())
        .body(counted_body(pulled.clone(), 1, limit + 1))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("answer");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(pulled.load(Ordering::SeqCst), 0, "the body was read although its length was over the limit");
    // No declared length: reading stops at the first chunk past the limit.
    let chunk = 64 * 1024;
    let pulled = Arc::new(AtomicU64::new(0));
    let request = Request::post("/v1/transactions")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(counted_body(pulled.clone(), 10_000, chunk))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("answer");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let read = pulled.load(Ordering::SeqCst) as usize;
    assert!(read <= limit + chunk, "pulled {read} bytes for a limit of {limit}");
    // A view body over its limit, streamed.
    let pulled = Arc::new(AtomicU64::new(0));
    let addr = Address([1; 32]).to_hex();
    let request = Request::post(format!("/v1/contracts/{addr}/view"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(counted_body(pulled.clone(), 10_000, chunk))
        .expect("request");
    let response = app.oneshot(request).await.expect("answer");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        pulled.load(Ordering::SeqCst) as usize <= bastion_node::api::extract::MAX_JSON_BODY_BYTES + chunk
    );
}
