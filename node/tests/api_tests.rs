//! The HTTP API against a mock `NodeApi`: response shapes, error mapping, limits, long
//! polling, the resumable block stream, the OpenAPI document and graceful shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use bastion_client::api::{
    encode_frames, AccountResponse, BlockEvent, BlockResponse, BlockTx, EventView, ReceiptView,
    StatusResponse, StorageResponse, SubmitBatchRequest, SubmitBatchResponse, TxResponse, TxStage, TxStatus,
    ValidatorView, ViewResponse, MAX_SUBMIT_BATCH,
};
use bastion_crypto::{sha256, Digest, PublicKey};
use bastion_ledger::Address;
use bastion_node::api::{router, serve, ApiError, NodeApi, MAX_ADMISSIONS_IN_FLIGHT};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::broadcast;
use tower::ServiceExt;

// ---------------------------------------------------------------------------------------
// The mock node.

#[derive(Default)]
struct MockState {
    ready: bool,
    halted: Option<String>,
    /// Returned by `submit` instead of admitting.
    submit_error: Option<ApiError>,
    /// Returned by `submit` for these exact transactions (after `submit_error`).
    refuse: HashMap<Bytes, ApiError>,
    /// Returned by every query (`transaction`, `account`, `storage`, `view`, `block`, `blocks_from`).
    query_error: Option<ApiError>,
    submitted: Vec<Bytes>,
    txs: HashMap<Digest, TxResponse>,
    waits: Vec<Duration>,
    blocks: Vec<BlockResponse>,
    last_account: Option<(Address, bool)>,
    last_storage: Option<(Address, Vec<u8>, bool)>,
    last_view: Option<(Address, String, Vec<u8>, bool)>,
    /// Committed right after a `blocks_from` call that found nothing: a block landing just
    /// as an event stream switches from replay to live.
    commit_after_empty_replay: Option<BlockResponse>,
    /// While it holds `true`, `submit` blocks (counted in `blocked`): admissions in progress.
    gate: Option<Arc<(Mutex<bool>, Condvar)>>,
    blocked: usize,
}

struct MockNode {
    max_tx_bytes: usize,
    state: Mutex<MockState>,
    live: broadcast::Sender<BlockResponse>,
}

impl MockNode {
    fn new() -> Arc<Self> {
        Self::with_channel_capacity(64)
    }

    fn with_channel_capacity(capacity: usize) -> Arc<Self> {
        let state = MockState { ready: true, ..MockState::default() };
        Arc::new(MockNode {
            max_tx_bytes: 1024,
            state: Mutex::new(state),
            live: broadcast::channel(capacity).0,
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut MockState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    fn query_result(&self) -> Result<(), ApiError> {
        self.with(|s| s.query_error.clone().map_or(Ok(()), Err))
    }

    /// Stores a committed block and announces it to subscribers.
    fn commit(&self, block: BlockResponse) {
        self.store(block.clone());
        let _ = self.live.send(block);
    }

    /// Stores a block without announcing it.
    fn store(&self, block: BlockResponse) {
        self.with(|s| s.blocks.push(block));
    }

    /// Announces a block without storing it.
    fn announce(&self, block: BlockResponse) {
        let _ = self.live.send(block);
    }

    fn finalize(&self, answer: TxResponse) {
        self.with(|s| s.txs.insert(answer.hash, answer));
    }
}

impl NodeApi for MockNode {
    fn chain_id(&self) -> &str {
        "bastion-test"
    }

    fn max_tx_bytes(&self) -> usize {
        self.max_tx_bytes
    }

    fn status(&self) -> StatusResponse {
        let ready = self.with(|s| s.ready);
        StatusResponse {
            chain_id: "bastion-test".into(),
            validator_index: 2,
            ready,
            consensus_only: false,
            round: 40,
            committed_height: 12,
            executed_height: if ready { 12 } else { 3 },
            certified_height: 11,
            state_root: Some(Digest([7; 32])),
            mempool_size: 5,
            peers_connected: 3,
            validators: vec![ValidatorView {
                index: 0,
                public_key: PublicKey([1; 32]),
                quic_addr: "127.0.0.1:9000".into(),
                api_url: Some("http://127.0.0.1:8000".into()),
            }],
            version: "0.1.0".into(),
            halted: self.with(|s| s.halted.clone()),
        }
    }

    fn submit(&self, tx: Bytes) -> Result<Digest, ApiError> {
        if let Some(gate) = self.with(|s| s.gate.clone()) {
            self.with(|s| s.blocked += 1);
            let closed = gate.1.wait_while(gate.0.lock().unwrap(), |closed| *closed).unwrap();
            drop(closed);
        }
        if let Some(e) = self.with(|s| s.submit_error.clone().or_else(|| s.refuse.get(&tx).cloned())) {
            return Err(e);
        }
        let hash = sha256(&tx);
        self.with(|s| s.submitted.push(tx));
        Ok(hash)
    }

    fn transaction(&self, hash: &Digest) -> Result<Option<TxResponse>, ApiError> {
        self.query_result()?;
        Ok(self.with(|s| s.txs.get(hash).cloned()))
    }

    async fn wait_for_final(&self, hash: Digest, timeout: Duration) -> Result<TxResponse, ApiError> {
        self.with(|s| s.waits.push(timeout));
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let known = self.with(|s| s.txs.get(&hash).cloned());
            match known {
                Some(answer) if answer.status.is_final() => return Ok(answer),
                _ if tokio::time::Instant::now() >= deadline => return Ok(pending(hash)),
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    fn account(&self, address: &Address, proof: bool) -> Result<AccountResponse, ApiError> {
        self.query_result()?;
        self.with(|s| s.last_account = Some((*address, proof)));
        Ok(AccountResponse {
            address: *address,
            balance: 1_000,
            nonce: 4,
            pending_nonce: 6,
            is_contract: false,
            height: 12,
            proof: None,
        })
    }

    fn storage(&self, contract: &Address, key: &[u8], proof: bool) -> Result<StorageResponse, ApiError> {
        self.query_result()?;
        self.with(|s| s.last_storage = Some((*contract, key.to_vec(), proof)));
        Ok(StorageResponse {
            contract: *contract,
            key_hex: hex::encode(key),
            value_hex: Some("2a00000000000000".into()),
            height: 12,
            proof: None,
        })
    }

    fn view(
        &self,
        contract: &Address,
        method: &str,
        args: &[u8],
        proof: bool,
    ) -> Result<ViewResponse, ApiError> {
        self.query_result()?;
        self.with(|s| s.last_view = Some((*contract, method.to_string(), args.to_vec(), proof)));
        Ok(ViewResponse {
            return_hex: "0700000000000000".into(),
            height: 12,
            fuel_used: 321,
            events: vec![event_view()],
            proof: None,
        })
    }

    fn block(&self, height: Option<u64>) -> Result<Option<BlockResponse>, ApiError> {
        self.query_result()?;
        Ok(self.with(|s| match height {
            Some(h) => s.blocks.iter().find(|b| b.height == h).cloned(),
            None => s.blocks.last().cloned(),
        }))
    }

    fn blocks_from(&self, from: u64, limit: usize) -> Result<Vec<BlockResponse>, ApiError> {
        self.query_result()?;
        let page: Vec<_> =
            self.with(|s| s.blocks.iter().filter(|b| b.height >= from).take(limit).cloned().collect());
        if page.is_empty() {
            if let Some(late) = self.with(|s| s.commit_after_empty_replay.take()) {
                self.commit(late);
            }
        }
        Ok(page)
    }

    fn subscribe_blocks(&self) -> broadcast::Receiver<BlockResponse> {
        self.live.subscribe()
    }

    fn metrics(&self) -> String {
        "# TYPE bastion_round gauge\nbastion_round 40\n".into()
    }
}

fn pending(hash: Digest) -> TxResponse {
    TxResponse { hash, status: TxStatus::Pending, stage: TxStage::InBatch, receipt: None, reason: None }
}

fn committed(hash: Digest) -> TxResponse {
    TxResponse {
        hash,
        status: TxStatus::CommittedOk,
        stage: TxStage::Committed,
        receipt: Some(ReceiptView {
            status: TxStatus::CommittedOk,
            reason: None,
            height: 9,
            index: 0,
            fuel_used: 1_500,
            events: vec![event_view()],
            return_hex: String::new(),
            contract: Some(Address([3; 32])),
        }),
        reason: None,
    }
}

fn event_view() -> EventView {
    EventView { contract: Address([3; 32]), topic_hex: "01".into(), data_hex: "ff".into() }
}

fn block(height: u64) -> BlockResponse {
    BlockResponse {
        height,
        hash: Digest([height as u8; 32]),
        round: height + 1,
        proposer: (height % 4) as u16,
        parent: Digest([height.wrapping_sub(1) as u8; 32]),
        state_root: Some(Digest([0xaa; 32])),
        batches: vec![Digest([0xbb; 32])],
        txs: vec![BlockTx { hash: Digest([0xcc; 32]), status: TxStatus::CommittedOk }],
        events: vec![BlockEvent { tx_hash: Digest([0xcc; 32]), event: event_view() }],
    }
}

// ---------------------------------------------------------------------------------------
// Request helpers.

const TX: &[u8] = b"signed transaction bytes";

fn hex64(byte: u8) -> String {
    hex::encode([byte; 32])
}

async fn send(app: &Router, request: Request<Body>) -> Response {
    app.clone().oneshot(request).await.unwrap()
}

async fn get(app: &Router, uri: &str) -> Response {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post(app: &Router, uri: &str, content_type: &str, body: impl Into<Body>) -> Response {
    send(app, Request::post(uri).header(header::CONTENT_TYPE, content_type).body(body.into()).unwrap()).await
}

async fn post_json(app: &Router, uri: &str, body: Value) -> Response {
    post(app, uri, "application/json", body.to_string()).await
}

async fn json(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!("not JSON ({e}, content type {content_type:?}): {}", String::from_utf8_lossy(&bytes))
    });
    (status, value)
}

/// Asserts the response is the JSON error shape with this status and code.
async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    let (got, body) = json(response).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    body
}

// ---------------------------------------------------------------------------------------
// Node endpoints.

#[tokio::test]
async fn health_is_200_when_ready_and_503_with_a_reason_otherwise() {
    let node = MockNode::new();
    let app = router(node.clone());
    let (status, body) = json(get(&app, "/health").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({"ready": true}));

    node.with(|s| s.ready = false);
    let (status, body) = json(get(&app, "/health").await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["ready"], false);
    assert!(body["reason"].as_str().unwrap().contains("executed height 3"), "{body}");

    // A halted validator says why, not just that it is behind.
    node.with(|s| s.halted = Some("cannot persist safety data: No space left on device".into()));
    let (status, body) = json(get(&app, "/health").await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["reason"].as_str().unwrap().starts_with("halted: cannot persist safety data"), "{body}");
    let (_, body) = json(get(&app, "/status").await).await;
    assert!(body["halted"].as_str().unwrap().contains("No space left"), "{body}");
}

#[tokio::test]
async fn status_is_the_nodes_status() {
    let node = MockNode::new();
    let (status, body) = json(get(&router(node.clone()), "/status").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::to_value(node.status()).unwrap());
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let response = get(&router(MockNode::new()), "/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&text[..], b"# TYPE bastion_round gauge\nbastion_round 40\n");
}

#[tokio::test]
async fn unknown_route_is_404_json_and_wrong_method_is_405_json() {
    let app = router(MockNode::new());
    assert_error(get(&app, "/v2/nothing").await, StatusCode::NOT_FOUND, "not_found").await;

    let response = send(&app, Request::delete("/status").body(Body::empty()).unwrap()).await;
    assert!(response.headers()[header::ALLOW].to_str().unwrap().contains("GET"));
    assert_error(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let response = get(&app, "/v1/transactions").await;
    assert_error(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

// ---------------------------------------------------------------------------------------
// Submitting transactions.

#[tokio::test]
async fn submit_json_returns_202_with_the_hash_and_stage_received() {
    let node = MockNode::new();
    let app = router(node.clone());
    let response = post_json(&app, "/v1/transactions", serde_json::json!({"tx": hex::encode(TX)})).await;
    let (status, body) = json(response).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        body,
        serde_json::json!({"hash": sha256(TX).to_hex(), "status": "pending", "stage": "received"})
    );
    assert_eq!(node.with(|s| s.submitted.clone()), vec![Bytes::from_static(TX)]);

    // 0x prefix accepted; charset parameter accepted.
    let body = serde_json::json!({"tx": format!("0x{}", hex::encode(TX))}).to_string();
    let response = post(&app, "/v1/transactions", "application/json; charset=utf-8", body).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn submit_octet_stream_passes_the_raw_bytes() {
    let node = MockNode::new();
    let app = router(node.clone());
    let (status, body) = json(post(&app, "/v1/transactions", "application/octet-stream", TX).await).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["hash"], sha256(TX).to_hex());
    assert_eq!(node.with(|s| s.submitted.clone()), vec![Bytes::from_static(TX)]);
}

#[tokio::test]
async fn resubmitting_a_final_transaction_returns_its_final_status() {
    let node = MockNode::new();
    node.finalize(committed(sha256(TX)));
    let (status, body) =
        json(post(&router(node), "/v1/transactions", "application/octet-stream", TX).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "committed_ok");
    assert_eq!(body["receipt"]["height"], 9);
}

#[tokio::test]
async fn submit_rejects_other_media_types_with_415() {
    let node = MockNode::new();
    let app = router(node.clone());
    let response = post(&app, "/v1/transactions", "text/plain", hex::encode(TX)).await;
    assert_error(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    let response = send(&app, Request::post("/v1/transactions").body(Body::from(TX)).unwrap()).await;
    assert_error(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    assert!(node.with(|s| s.submitted.is_empty()));
}

#[tokio::test]
async fn submit_rejects_garbage_json_and_bad_hex_with_400() {
    let app = router(MockNode::new());
    let response = post(&app, "/v1/transactions", "application/json", "{not json").await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    let response = post_json(&app, "/v1/transactions", serde_json::json!({"transaction": "00"})).await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    let response = post_json(&app, "/v1/transactions", serde_json::json!({"tx": "zz"})).await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_encoding").await;
    let response = post_json(&app, "/v1/transactions", serde_json::json!({"tx": "abc"})).await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_encoding").await;
}

#[tokio::test]
async fn submit_rejects_oversized_bodies_with_413() {
    let node = MockNode::new();
    let app = router(node.clone());
    let limit = 1024 * 2 + 1024;
    // At the limit it reaches the node.
    let hex_tx = "ab".repeat((limit - 10) / 2);
    let at_limit = serde_json::json!({ "tx": hex_tx }).to_string();
    assert!(at_limit.len() <= limit);
    assert_eq!(
        post(&app, "/v1/transactions", "application/json", at_limit).await.status(),
        StatusCode::ACCEPTED
    );

    // Over it, without and with Content-Length (which is checked before reading).
    let response = post(&app, "/v1/transactions", "application/octet-stream", vec![0u8; limit + 1]).await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
    let request = Request::post("/v1/transactions")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, "1000000000")
        .body(Body::from(vec![0u8; 16]))
        .unwrap();
    assert_error(send(&app, request).await, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;

    // Over it, streamed without Content-Length: cut off, not buffered whole.
    let chunks = (0..1000).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 1024])));
    let body = Body::from_stream(futures::stream::iter(chunks));
    let response = post(&app, "/v1/transactions", "application/octet-stream", body).await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
    assert_eq!(node.with(|s| s.submitted.len()), 1);
}

#[tokio::test]
async fn every_node_error_maps_to_its_status_and_code() {
    let cases = [
        (ApiError::BadEncoding("trailing bytes".into()), StatusCode::BAD_REQUEST, "bad_encoding"),
        (ApiError::BadRequest("no".into()), StatusCode::BAD_REQUEST, "bad_request"),
        (ApiError::BadSignature, StatusCode::UNAUTHORIZED, "bad_signature"),
        (
            ApiError::WrongChain { got: "other".into(), expected: "bastion-test".into() },
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_chain",
        ),
        (ApiError::Expired { expiry_height: 3, next_height: 9 }, StatusCode::UNPROCESSABLE_ENTITY, "expired"),
        (
            ApiError::InsufficientFunds { balance: 1, needed: 2 },
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient_funds",
        ),
        (ApiError::NonceTooLow { nonce: 1, next: 5 }, StatusCode::CONFLICT, "nonce_too_low"),
        (ApiError::TooLarge { size: 9000, limit: 1024 }, StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        (ApiError::MempoolFull("sender share".into()), StatusCode::TOO_MANY_REQUESTS, "mempool_full"),
        (ApiError::NotFound("x".into()), StatusCode::NOT_FOUND, "not_found"),
        (ApiError::UnknownContract(Address([4; 32])), StatusCode::NOT_FOUND, "unknown_contract"),
        (ApiError::NotReady("catching up".into()), StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
        (
            ApiError::Internal("rocksdb: /data/x corrupt".into()),
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
        ),
    ];
    for (error, status, code) in cases {
        let node = MockNode::new();
        node.with(|s| s.submit_error = Some(error.clone()));
        let response = post(&router(node), "/v1/transactions", "application/octet-stream", TX).await;
        let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
        let body = assert_error(response, status, code).await;
        if code == "mempool_full" {
            assert_eq!(retry_after.unwrap(), "1");
        } else {
            assert!(retry_after.is_none(), "{code}");
        }
        if code == "internal" {
            assert!(
                !body["message"].as_str().unwrap().contains("/data/x"),
                "internal details leaked: {body}"
            );
        } else {
            assert_eq!(body["message"], error.to_string());
        }
    }
}

#[tokio::test]
async fn wait_commit_returns_the_final_status_once_the_node_finalizes() {
    let node = MockNode::new();
    let app = router(node.clone());
    let finalizer = {
        let node = node.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            node.finalize(committed(sha256(TX)));
        })
    };
    let response =
        post(&app, "/v1/transactions?wait=commit&timeout_ms=10000", "application/octet-stream", TX).await;
    let (status, body) = json(response).await;
    finalizer.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::to_value(committed(sha256(TX))).unwrap());
    assert_eq!(node.with(|s| s.waits.clone()), vec![Duration::from_secs(10)]);
}

#[tokio::test]
async fn wait_commit_times_out_with_202_pending() {
    let node = MockNode::new();
    let response = post(
        &router(node.clone()),
        "/v1/transactions?wait=commit&timeout_ms=150",
        "application/octet-stream",
        TX,
    )
    .await;
    let (status, body) = json(response).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["hash"], sha256(TX).to_hex());
    assert_eq!(body["status"], "pending");
    assert_eq!(node.with(|s| s.waits.clone()), vec![Duration::from_millis(150)]);
}

#[tokio::test]
async fn wait_timeout_defaults_to_30s_and_is_capped_at_120s() {
    let node = MockNode::new();
    node.finalize(committed(sha256(TX)));
    let app = router(node.clone());
    for uri in ["/v1/transactions?wait=commit", "/v1/transactions?wait=commit&timeout_ms=99999999"] {
        assert_eq!(post(&app, uri, "application/octet-stream", TX).await.status(), StatusCode::OK);
    }
    assert_eq!(node.with(|s| s.waits.clone()), vec![Duration::from_secs(30), Duration::from_secs(120)]);

    let response = post(&app, "/v1/transactions?wait=forever", "application/octet-stream", TX).await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    let response =
        post(&app, "/v1/transactions?wait=commit&timeout_ms=-1", "application/octet-stream", TX).await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
}

// ---------------------------------------------------------------------------------------
// Submitting batches.

const BATCH: &str = "/v1/transactions/batch";

/// Three distinct transactions (one of them empty: framing must not drop it).
fn three_txs() -> Vec<Bytes> {
    vec![Bytes::from_static(b"first tx"), Bytes::new(), Bytes::from(vec![0xab; 700])]
}

/// The body as a batch answer, checking its shape: `accepted` counts the outcomes with a
/// hash, and every outcome has exactly one of `hash` and `error`.
async fn batch_answer(response: Response) -> (StatusCode, Option<String>, SubmitBatchResponse) {
    let retry_after =
        response.headers().get(header::RETRY_AFTER).map(|value| value.to_str().unwrap().to_string());
    let (status, body) = json(response).await;
    for outcome in body["results"].as_array().unwrap_or_else(|| panic!("no results: {body}")) {
        assert_eq!(outcome.as_object().unwrap().len(), 1, "{outcome}");
    }
    let answer: SubmitBatchResponse = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(answer.accepted, answer.results.iter().filter(|r| r.hash.is_some()).count(), "{body}");
    (status, retry_after, answer)
}

fn hashes(answer: &SubmitBatchResponse) -> Vec<Option<Digest>> {
    answer.results.iter().map(|r| r.hash).collect()
}

fn error_codes(answer: &SubmitBatchResponse) -> Vec<Option<String>> {
    answer.results.iter().map(|r| r.error.as_ref().map(|e| e.code.clone())).collect()
}

#[tokio::test]
async fn batch_octet_stream_admits_each_transaction_in_order() {
    let node = MockNode::new();
    let txs = three_txs();
    let response = post(&router(node.clone()), BATCH, "application/octet-stream", encode_frames(&txs)).await;
    let (status, retry_after, answer) = batch_answer(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retry_after, None);
    assert_eq!(answer.accepted, 3);
    assert_eq!(hashes(&answer), txs.iter().map(|tx| Some(sha256(tx))).collect::<Vec<_>>());
    assert_eq!(node.with(|s| s.submitted.clone()), txs);
}

#[tokio::test]
async fn batch_json_accepts_hex_with_and_without_0x() {
    let node = MockNode::new();
    let txs = three_txs();
    let hexes = vec![
        hex::encode(&txs[0]),
        format!("0x{}", hex::encode(&txs[1])),
        format!("0x{}", hex::encode(&txs[2])),
    ];
    let response = post_json(&router(node.clone()), BATCH, serde_json::json!({ "txs": hexes })).await;
    let (status, _, answer) = batch_answer(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer.accepted, 3);
    assert_eq!(hashes(&answer), txs.iter().map(|tx| Some(sha256(tx))).collect::<Vec<_>>());
    assert_eq!(node.with(|s| s.submitted.clone()), txs);
}

#[tokio::test]
async fn batch_outcomes_carry_each_transactions_own_error() {
    let node = MockNode::new();
    let txs = three_txs();
    node.with(|s| s.refuse.insert(txs[1].clone(), ApiError::NonceTooLow { nonce: 1, next: 5 }));
    let app = router(node.clone());
    let (status, retry_after, answer) =
        batch_answer(post(&app, BATCH, "application/octet-stream", encode_frames(&txs)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retry_after, None);
    assert_eq!(answer.accepted, 2);
    assert_eq!(hashes(&answer), vec![Some(sha256(&txs[0])), None, Some(sha256(&txs[2]))]);
    let error = answer.results[1].error.clone().unwrap();
    assert_eq!(error.code, "nonce_too_low");
    assert_eq!(error.message, ApiError::NonceTooLow { nonce: 1, next: 5 }.to_string());
    assert_eq!(node.with(|s| s.submitted.clone()), vec![txs[0].clone(), txs[2].clone()]);

    // One full-mempool refusal among them is enough for Retry-After.
    node.with(|s| s.refuse.insert(txs[2].clone(), ApiError::MempoolFull("sender share".into())));
    let (status, retry_after, answer) =
        batch_answer(post(&app, BATCH, "application/octet-stream", encode_frames(&txs)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(error_codes(&answer), vec![None, Some("nonce_too_low".into()), Some("mempool_full".into())]);
}

#[tokio::test]
async fn batch_against_a_full_mempool_is_mempool_full_for_each_with_retry_after() {
    let node = MockNode::new();
    node.with(|s| s.submit_error = Some(ApiError::MempoolFull("10 transactions waiting".into())));
    let response =
        post(&router(node.clone()), BATCH, "application/octet-stream", encode_frames(&three_txs())).await;
    let (status, retry_after, answer) = batch_answer(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(answer.accepted, 0);
    assert_eq!(error_codes(&answer), vec![Some("mempool_full".to_string()); 3]);
    assert!(node.with(|s| s.submitted.is_empty()));
}

#[tokio::test]
async fn batch_with_only_other_errors_has_no_retry_after() {
    let node = MockNode::new();
    node.with(|s| s.submit_error = Some(ApiError::BadSignature));
    let response = post(&router(node), BATCH, "application/octet-stream", encode_frames(&three_txs())).await;
    let (status, retry_after, answer) = batch_answer(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retry_after, None);
    assert_eq!(answer.accepted, 0);
    assert_eq!(error_codes(&answer), vec![Some("bad_signature".to_string()); 3]);
}

#[tokio::test]
async fn batch_to_a_node_that_is_not_ready_is_503() {
    let node = MockNode::new();
    node.with(|s| s.submit_error = Some(ApiError::NotReady("catching up".into())));
    let response = post(&router(node), BATCH, "application/octet-stream", encode_frames(&three_txs())).await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "not_ready").await;
}

#[tokio::test]
async fn batch_with_bad_framing_is_400_bad_encoding() {
    let node = MockNode::new();
    let app = router(node.clone());
    let good = encode_frames(&three_txs());
    // A length prefix cut short, after a whole frame.
    let truncated = [&good[..], &[5, 0][..]].concat();
    // A length past the end: one byte missing, and the largest length a prefix can claim.
    let short = &good[..good.len() - 1];
    let huge = [&good[..], &u32::MAX.to_le_bytes()[..], b"tail"].concat();
    for body in [truncated, short.to_vec(), huge, vec![1]] {
        let response = post(&app, BATCH, "application/octet-stream", body).await;
        assert_error(response, StatusCode::BAD_REQUEST, "bad_encoding").await;
    }
    assert!(node.with(|s| s.submitted.is_empty()), "nothing of a bad batch is submitted");
}

#[tokio::test]
async fn batch_of_more_than_1024_transactions_is_refused_whole() {
    let node = MockNode::new();
    let app = router(node.clone());
    let txs: Vec<Bytes> =
        (0..=MAX_SUBMIT_BATCH as u32).map(|i| Bytes::from(i.to_le_bytes().to_vec())).collect();

    let response = post(&app, BATCH, "application/octet-stream", encode_frames(&txs)).await;
    let body = assert_error(response, StatusCode::BAD_REQUEST, "bad_encoding").await;
    assert!(body["message"].as_str().unwrap().contains("more than 1024 transactions"), "{body}");
    let hexes: Vec<String> = txs.iter().map(hex::encode).collect();
    let response = post_json(&app, BATCH, serde_json::json!({ "txs": hexes })).await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
    assert!(node.with(|s| s.submitted.is_empty()));

    // Exactly 1024 is a batch, in either encoding.
    let txs = &txs[..MAX_SUBMIT_BATCH];
    let (status, _, answer) =
        batch_answer(post(&app, BATCH, "application/octet-stream", encode_frames(txs)).await).await;
    assert_eq!((status, answer.accepted), (StatusCode::OK, MAX_SUBMIT_BATCH));
    let response = post_json(&app, BATCH, serde_json::json!({ "txs": hexes[..MAX_SUBMIT_BATCH] })).await;
    let (status, _, answer) = batch_answer(response).await;
    assert_eq!((status, answer.accepted), (StatusCode::OK, MAX_SUBMIT_BATCH));
    assert_eq!(node.with(|s| s.submitted.len()), 2 * MAX_SUBMIT_BATCH);
}

#[tokio::test]
async fn batch_json_with_bad_hex_names_the_transaction() {
    let node = MockNode::new();
    let app = router(node.clone());
    let txs = serde_json::json!({ "txs": ["00", "0x01", "0xzz", "03"] });
    let body = assert_error(post_json(&app, BATCH, txs).await, StatusCode::BAD_REQUEST, "bad_encoding").await;
    assert!(body["message"].as_str().unwrap().contains("transaction 2"), "{body}");
    let odd = serde_json::json!({ "txs": ["00", "abc"] });
    let body = assert_error(post_json(&app, BATCH, odd).await, StatusCode::BAD_REQUEST, "bad_encoding").await;
    assert!(body["message"].as_str().unwrap().contains("transaction 1"), "{body}");
    // Not the batch shape at all: the same 400 as a malformed single submission.
    for garbage in ["{not json", "{\"tx\": \"00\"}", "{\"txs\": [1, 2]}"] {
        let response = post(&app, BATCH, "application/json", garbage).await;
        assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    }
    assert!(node.with(|s| s.submitted.is_empty()), "nothing of a bad batch is submitted");
}

#[tokio::test]
async fn batch_rejects_other_media_types_with_415() {
    let node = MockNode::new();
    let app = router(node.clone());
    let body = encode_frames(&three_txs());
    let response = post(&app, BATCH, "text/plain", body.clone()).await;
    assert_error(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    let response = send(&app, Request::post(BATCH).body(Body::from(body)).unwrap()).await;
    assert_error(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    assert!(node.with(|s| s.submitted.is_empty()));
}

#[tokio::test]
async fn batch_body_over_the_limit_is_413() {
    let node = MockNode::new();
    let app = router(node.clone());
    let limit = bastion_client::api::MAX_SUBMIT_BATCH_BYTES;
    let response = post(&app, BATCH, "application/octet-stream", vec![0u8; limit + 1]).await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
    let request = Request::post(BATCH)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, "1000000000")
        .body(Body::from("{\"txs\": []}"))
        .unwrap();
    assert_error(send(&app, request).await, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
    assert!(node.with(|s| s.submitted.is_empty()));
}

#[tokio::test]
async fn an_empty_batch_is_200_with_no_results() {
    let node = MockNode::new();
    let app = router(node.clone());
    let (status, body) = json(post(&app, BATCH, "application/octet-stream", Vec::new()).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({"accepted": 0, "results": []}));
    let (status, body) = json(post_json(&app, BATCH, serde_json::json!({"txs": []})).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({"accepted": 0, "results": []}));
    assert!(node.with(|s| s.submitted.is_empty()));
}

// ---------------------------------------------------------------------------------------
// Queries.

#[tokio::test]
async fn transaction_lookup_by_hash() {
    let node = MockNode::new();
    let hash = sha256(TX);
    node.finalize(committed(hash));
    let app = router(node);
    for uri in [format!("/v1/transactions/{hash}"), format!("/v1/transactions/0x{hash}")] {
        let (status, body) = json(get(&app, &uri).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::to_value(committed(hash)).unwrap());
    }
    let unknown = format!("/v1/transactions/{}", hex64(9));
    assert_error(get(&app, &unknown).await, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn bad_hex_in_paths_is_400() {
    let app = router(MockNode::new());
    let long = hex64(1) + "00";
    let not_hex = "zz".repeat(32);
    // Not 32 bytes of hex: bad as a hash or an address.
    for value in ["abc", not_hex.as_str(), long.as_str(), "%FF%FE", "0x", "%F0%9F%92%A9", &hex64(1)[2..]] {
        for uri in [
            format!("/v1/transactions/{value}"),
            format!("/v1/accounts/{value}"),
            format!("/v1/contracts/{value}/storage/00"),
        ] {
            assert_error(get(&app, &uri).await, StatusCode::BAD_REQUEST, "bad_request").await;
        }
        let uri = format!("/v1/contracts/{value}/view");
        let response = post_json(&app, &uri, serde_json::json!({"method": "get"})).await;
        assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    }
    // Storage keys are any hex up to 256 bytes.
    let too_long_key = "00".repeat(257);
    for key in ["abc", not_hex.as_str(), "%FF%FE", "%F0%9F%92%A9", too_long_key.as_str()] {
        let uri = format!("/v1/contracts/{}/storage/{key}", hex64(1));
        assert_error(get(&app, &uri).await, StatusCode::BAD_REQUEST, "bad_request").await;
    }
}

#[tokio::test]
async fn account_query_with_and_without_proof() {
    let node = MockNode::new();
    let app = router(node.clone());
    let (status, body) = json(get(&app, &format!("/v1/accounts/{}", hex64(5))).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["address"], hex64(5));
    assert_eq!(body["balance"], 1_000);
    assert_eq!(body["pending_nonce"], 6);
    assert_eq!(node.with(|s| s.last_account), Some((Address([5; 32]), false)));

    let response = get(&app, &format!("/v1/accounts/0x{}?proof=true", hex64(6))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(node.with(|s| s.last_account), Some((Address([6; 32]), true)));

    let response = get(&app, &format!("/v1/accounts/{}?proof=maybe", hex64(6))).await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;

    node.with(|s| s.query_error = Some(ApiError::NotReady("syncing".into())));
    let response = get(&app, &format!("/v1/accounts/{}", hex64(5))).await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "not_ready").await;
}

#[tokio::test]
async fn storage_query_passes_key_bytes_and_proof_flag() {
    let node = MockNode::new();
    let app = router(node.clone());
    let (status, body) =
        json(get(&app, &format!("/v1/contracts/{}/storage/0x6b6579?proof=true", hex64(3))).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["key_hex"], "6b6579");
    assert_eq!(body["value_hex"], "2a00000000000000");
    assert_eq!(node.with(|s| s.last_storage.clone()), Some((Address([3; 32]), b"key".to_vec(), true)));

    node.with(|s| s.query_error = Some(ApiError::UnknownContract(Address([3; 32]))));
    let response = get(&app, &format!("/v1/contracts/{}/storage/00", hex64(3))).await;
    assert_error(response, StatusCode::NOT_FOUND, "unknown_contract").await;
}

#[tokio::test]
async fn view_call_and_its_input_checks() {
    let node = MockNode::new();
    let app = router(node.clone());
    let uri = format!("/v1/contracts/{}/view", hex64(3));
    let (status, body) =
        json(post_json(&app, &uri, serde_json::json!({"method": "get", "args_hex": "0102"})).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["return_hex"], "0700000000000000");
    assert_eq!(body["fuel_used"], 321);
    assert_eq!(node.with(|s| s.last_view.clone()), Some((Address([3; 32]), "get".into(), vec![1, 2], false)));

    // args_hex and proof are optional.
    let response = post_json(&app, &uri, serde_json::json!({"method": "get"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(node.with(|s| s.last_view.clone().unwrap().2), Vec::<u8>::new());
    let response = post_json(&app, &uri, serde_json::json!({"method": "get", "proof": true})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(node.with(|s| s.last_view.clone().unwrap().3));

    let garbage = post(&app, &uri, "application/json", "[1,2").await;
    assert_error(garbage, StatusCode::BAD_REQUEST, "bad_request").await;
    let no_method = post_json(&app, &uri, serde_json::json!({"args_hex": "00"})).await;
    assert_error(no_method, StatusCode::BAD_REQUEST, "bad_request").await;
    let bad_args = post_json(&app, &uri, serde_json::json!({"method": "get", "args_hex": "xyz"})).await;
    assert_error(bad_args, StatusCode::BAD_REQUEST, "bad_request").await;
    let text = post(&app, &uri, "text/plain", r#"{"method":"get"}"#).await;
    assert_error(text, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    let huge = serde_json::json!({"method": "get", "args_hex": "00".repeat(40 * 1024)});
    assert_error(post_json(&app, &uri, huge).await, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;

    node.with(|s| s.query_error = Some(ApiError::UnknownContract(Address([3; 32]))));
    let response = post_json(&app, &uri, serde_json::json!({"method": "get"})).await;
    assert_error(response, StatusCode::NOT_FOUND, "unknown_contract").await;
}

#[tokio::test]
async fn blocks_by_height_and_latest() {
    let node = MockNode::new();
    let app = router(node.clone());
    assert_error(get(&app, "/v1/blocks/latest").await, StatusCode::NOT_FOUND, "not_found").await;
    for h in 1..=3 {
        node.store(block(h));
    }
    let (status, body) = json(get(&app, "/v1/blocks/2").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::to_value(block(2)).unwrap());
    let (_, body) = json(get(&app, "/v1/blocks/latest").await).await;
    assert_eq!(body["height"], 3);
    assert_error(get(&app, "/v1/blocks/4").await, StatusCode::NOT_FOUND, "not_found").await;
    for bad in ["-1", "two", "99999999999999999999999", "0x10"] {
        assert_error(get(&app, &format!("/v1/blocks/{bad}")).await, StatusCode::BAD_REQUEST, "bad_request")
            .await;
    }
}

// ---------------------------------------------------------------------------------------
// Server-sent events.

#[derive(Debug)]
struct SseEvent {
    name: String,
    id: String,
    data: String,
}

/// Reads server-sent events from a response body (skipping keep-alive comments).
struct SseReader {
    body: Body,
    buffer: String,
}

impl SseReader {
    fn new(response: Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
        SseReader { body: response.into_body(), buffer: String::new() }
    }

    /// The next event, or `None` if the stream ended.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent { name: String::new(), id: String::new(), data: String::new() };
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        event.name = v.into();
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        event.id = v.into();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data.push_str(v);
                    }
                }
                if event.name.is_empty() && event.data.is_empty() {
                    continue; // a comment
                }
                return Some(event);
            }
            let frame = tokio::time::timeout(Duration::from_secs(5), self.body.frame())
                .await
                .expect("no event in 5 s");
            match frame {
                None => return None,
                Some(frame) => {
                    if let Ok(data) = frame.unwrap().into_data() {
                        self.buffer.push_str(std::str::from_utf8(&data).unwrap());
                    }
                }
            }
        }
    }

    /// The next event's block height, checking the event is a well-formed `block` event.
    async fn next_height(&mut self) -> u64 {
        let event = self.next().await.expect("stream ended");
        assert_eq!(event.name, "block", "{event:?}");
        let block: BlockResponse = serde_json::from_str(&event.data).unwrap();
        assert_eq!(block, self::block(block.height));
        assert_eq!(event.id, block.height.to_string());
        block.height
    }

    async fn heights(&mut self, n: usize) -> Vec<u64> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(self.next_height().await);
        }
        out
    }

    /// Asserts no event arrives for a while (no duplicates queued behind the last one).
    async fn assert_quiet(&mut self) {
        let wait = tokio::time::timeout(Duration::from_millis(200), self.body.frame()).await;
        if let Ok(Some(Ok(frame))) = wait {
            let data = frame.into_data().unwrap_or_default();
            let text = String::from_utf8_lossy(&data);
            assert!(text.starts_with(':'), "unexpected event: {text}");
        }
    }
}

async fn open_events(app: &Router, uri: &str, last_event_id: Option<&str>) -> SseReader {
    let mut request = Request::get(uri);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    SseReader::new(send(app, request.body(Body::empty()).unwrap()).await)
}

#[tokio::test]
async fn events_replay_from_a_height_then_go_live_without_gaps_or_duplicates() {
    let node = MockNode::new();
    for h in 1..=5 {
        node.commit(block(h));
    }
    let app = router(node.clone());
    let mut events = open_events(&app, "/v1/events?from=3", None).await;
    // Committed after the stream subscribed but before it caught up: in both store and channel.
    node.commit(block(6));
    assert_eq!(events.heights(4).await, vec![3, 4, 5, 6]);
    node.commit(block(7));
    node.commit(block(8));
    assert_eq!(events.heights(2).await, vec![7, 8]);
    events.assert_quiet().await;
}

#[tokio::test]
async fn events_resume_after_last_event_id_which_overrides_from() {
    let node = MockNode::new();
    for h in 1..=4 {
        node.commit(block(h));
    }
    let app = router(node.clone());
    let mut events = open_events(&app, "/v1/events?from=1", Some("2")).await;
    assert_eq!(events.heights(2).await, vec![3, 4]);
    node.commit(block(5));
    assert_eq!(events.next_height().await, 5);

    let response =
        send(&app, Request::get("/v1/events").header("Last-Event-ID", "x").body(Body::empty()).unwrap());
    assert_error(response.await, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_error(get(&app, "/v1/events?from=-3").await, StatusCode::BAD_REQUEST, "bad_request").await;
}

#[tokio::test]
async fn events_replay_in_pages_across_a_long_history() {
    let node = MockNode::new();
    for h in 0..200 {
        node.store(block(h));
    }
    let mut events = open_events(&router(node.clone()), "/v1/events?from=0", None).await;
    assert_eq!(events.heights(200).await, (0..200).collect::<Vec<_>>());
    node.commit(block(200));
    assert_eq!(events.next_height().await, 200);
}

#[tokio::test]
async fn a_lagging_subscriber_replays_from_the_store_instead_of_skipping() {
    let node = MockNode::with_channel_capacity(2);
    node.commit(block(1));
    let mut events = open_events(&router(node.clone()), "/v1/events?from=1", None).await;
    assert_eq!(events.next_height().await, 1);
    events.assert_quiet().await; // the stream has caught up and waits on the live channel
                                 // Ten blocks while the client is not reading: the channel keeps only the last two.
    for h in 2..=11 {
        node.commit(block(h));
    }
    assert_eq!(events.heights(10).await, (2..=11).collect::<Vec<_>>());
    node.commit(block(12));
    assert_eq!(events.next_height().await, 12);
    events.assert_quiet().await;
}

#[tokio::test]
async fn a_live_block_ahead_of_the_stream_is_preceded_by_the_missing_ones() {
    let node = MockNode::new();
    node.commit(block(1));
    let mut events = open_events(&router(node.clone()), "/v1/events?from=1", None).await;
    assert_eq!(events.next_height().await, 1);
    events.assert_quiet().await; // the stream has caught up and waits on the live channel
    node.store(block(2)); // stored, but never announced to this subscriber
    node.announce(block(3)); // announced before the store has it
    assert_eq!(events.heights(2).await, vec![2, 3]);
    node.store(block(3));
    events.assert_quiet().await;
}

#[tokio::test]
async fn a_block_committed_as_the_stream_goes_live_is_not_lost() {
    let node = MockNode::new();
    node.commit(block(1));
    node.with(|s| s.commit_after_empty_replay = Some(block(2)));
    let mut events = open_events(&router(node.clone()), "/v1/events?from=1", None).await;
    assert_eq!(events.heights(2).await, vec![1, 2]);
    events.assert_quiet().await;
}

#[tokio::test]
async fn events_without_a_position_start_at_the_next_block() {
    let node = MockNode::new();
    for h in 1..=3 {
        node.commit(block(h));
    }
    let mut events = open_events(&router(node.clone()), "/v1/events", None).await;
    node.announce(block(3)); // a late duplicate of what was already committed
    node.commit(block(4));
    assert_eq!(events.next_height().await, 4);
}

#[tokio::test]
async fn a_store_failure_mid_stream_ends_it_with_an_error_event() {
    let node = MockNode::new();
    node.commit(block(1));
    let mut events = open_events(&router(node.clone()), "/v1/events?from=1", None).await;
    assert_eq!(events.next_height().await, 1);
    node.commit(block(2));
    node.with(|s| s.query_error = Some(ApiError::NotReady("restarting".into())));
    let event = events.next().await.unwrap();
    assert_eq!(event.name, "error");
    let body: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(body["code"], "not_ready");
    assert!(events.next().await.is_none());

    let response = get(&router(node), "/v1/events?from=1").await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "not_ready").await;
}

// ---------------------------------------------------------------------------------------
// OpenAPI.

#[tokio::test]
async fn openapi_document_lists_every_endpoint() {
    let response = get(&router(MockNode::new()), "/openapi.json").await;
    assert!(response.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/json"));
    let (status, doc) = json(response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["info"]["title"].is_string());
    let expected = [
        ("/health", "get"),
        ("/status", "get"),
        ("/v1/transactions", "post"),
        ("/v1/transactions/batch", "post"),
        ("/v1/transactions/{hash}", "get"),
        ("/v1/accounts/{addr}", "get"),
        ("/v1/contracts/{addr}/storage/{key_hex}", "get"),
        ("/v1/contracts/{addr}/view", "post"),
        ("/v1/blocks/{height}", "get"),
        ("/v1/events", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), expected.len(), "{:?}", paths.keys().collect::<Vec<_>>());
    for (path, method) in expected {
        let op = &doc["paths"][path][method];
        assert!(op["responses"]["200"].is_object(), "{method} {path} has no 200 response");
        // Every path parameter in the template is declared.
        for name in path.split('{').skip(1).map(|s| s.split('}').next().unwrap()) {
            let declared =
                op["parameters"].as_array().unwrap().iter().any(|p| p["name"] == name && p["in"] == "path");
            assert!(declared, "{path}: parameter {name} not documented");
        }
    }
    let submit = &doc["paths"]["/v1/transactions"]["post"];
    for status in ["202", "400", "401", "409", "413", "415", "422", "429", "503"] {
        assert!(submit["responses"][status].is_object(), "submit lacks {status}");
    }
    assert!(submit["responses"]["429"]["headers"]["Retry-After"].is_object());
    assert!(submit["requestBody"]["content"]["application/octet-stream"].is_object());
    let batch = &doc["paths"]["/v1/transactions/batch"]["post"];
    let answered = &batch["responses"]["200"];
    assert_eq!(
        answered["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/SubmitBatchResponse"
    );
    assert!(answered["headers"]["Retry-After"].is_object(), "batch 200 lacks Retry-After");
    for status in ["400", "413", "415"] {
        assert!(batch["responses"][status].is_object(), "batch lacks {status}");
    }
    for media in ["application/json", "application/octet-stream"] {
        assert!(batch["requestBody"]["content"][media].is_object(), "batch body lacks {media}");
    }
    // Every $ref resolves.
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(doc["components"]["schemas"][name].is_object(), "dangling $ref {name}");
    }
}

/// The hand-written schemas must match what the handlers serialize: every field served is
/// described, and every field described as required is served.
#[tokio::test]
async fn openapi_schemas_match_the_served_json() {
    let node = MockNode::new();
    node.store(block(1));
    node.finalize(committed(sha256(TX)));
    let app = router(node.clone());
    let (_, doc) = json(get(&app, "/openapi.json").await).await;
    let schemas = &doc["components"]["schemas"];

    let mut samples: Vec<(&str, Value)> = vec![
        ("StatusResponse", json(get(&app, "/status").await).await.1),
        ("HealthResponse", json(get(&app, "/health").await).await.1),
        ("TxResponse", json(get(&app, &format!("/v1/transactions/{}", sha256(TX))).await).await.1),
        ("AccountResponse", json(get(&app, &format!("/v1/accounts/{}", hex64(1))).await).await.1),
        ("StorageResponse", json(get(&app, &format!("/v1/contracts/{}/storage/00", hex64(1))).await).await.1),
        ("BlockResponse", json(get(&app, "/v1/blocks/1").await).await.1),
        ("ErrorBody", json(get(&app, "/v1/blocks/9").await).await.1),
    ];
    let view_uri = format!("/v1/contracts/{}/view", hex64(1));
    let view = post_json(&app, &view_uri, serde_json::json!({"method": "m"})).await;
    samples.push(("ViewResponse", json(view).await.1));
    let tx = samples[2].1.clone();
    samples.push(("ReceiptView", tx["receipt"].clone()));
    samples.push(("EventView", tx["receipt"]["events"][0].clone()));
    samples.push(("ValidatorView", samples[0].1["validators"][0].clone()));
    samples.push(("BlockTx", samples[5].1["txs"][0].clone()));
    samples.push(("BlockEvent", samples[5].1["events"][0].clone()));
    // A batch with one accepted and one refused transaction: both outcome shapes.
    node.with(|s| s.refuse.insert(Bytes::from_static(b"refused"), ApiError::BadSignature));
    let batch = encode_frames(&[TX, b"refused".as_slice()]);
    let (status, answer) =
        json(post(&app, "/v1/transactions/batch", "application/octet-stream", batch).await).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(
        answer["results"][0]["hash"].is_string() && answer["results"][1]["error"].is_object(),
        "{answer}"
    );
    samples.push(("SubmitOutcome", answer["results"][0].clone()));
    samples.push(("SubmitOutcome", answer["results"][1].clone()));
    samples.push(("SubmitBatchResponse", answer));
    let request = SubmitBatchRequest { txs: vec![hex::encode(TX)] };
    samples.push(("SubmitBatchRequest", serde_json::to_value(request).unwrap()));

    for (name, sample) in samples {
        let schema = &schemas[name];
        let properties =
            schema["properties"].as_object().unwrap_or_else(|| panic!("{name} has no properties"));
        for key in sample.as_object().unwrap().keys() {
            assert!(properties.contains_key(key), "{name}.{key} is served but not documented");
        }
        // A schema with only optional fields (SubmitOutcome) has no `required` list.
        for required in schema["required"].as_array().into_iter().flatten() {
            let key = required.as_str().unwrap();
            assert!(sample.get(key).is_some(), "{name}.{key} is documented as required but not served");
        }
    }
}

// ---------------------------------------------------------------------------------------
// A real server.

/// Reads one chunk of an HTTP/1.1 chunked body; `None` at the end of the body.
async fn read_chunk(reader: &mut BufReader<tokio::net::TcpStream>) -> Option<String> {
    let mut size_line = String::new();
    reader.read_line(&mut size_line).await.unwrap();
    let size = usize::from_str_radix(size_line.trim(), 16).ok()?;
    let mut data = vec![0u8; size + 2];
    reader.read_exact(&mut data).await.unwrap();
    if size == 0 {
        return None;
    }
    data.truncate(size);
    Some(String::from_utf8(data).unwrap())
}

/// Reads chunks until `n` more events have arrived; their ids.
async fn read_ids(reader: &mut BufReader<tokio::net::TcpStream>, n: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    while ids.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(5), read_chunk(reader)).await.unwrap().unwrap();
        ids.extend(event_ids(&chunk));
    }
    ids
}

/// The `id:` of each event in `text`, in order.
fn event_ids(text: &str) -> Vec<u64> {
    text.lines().filter_map(|line| line.strip_prefix("id: ")).map(|id| id.parse().unwrap()).collect()
}

#[tokio::test]
async fn serve_streams_events_over_tcp_and_ends_them_on_shutdown() {
    let node = MockNode::new();
    for h in 1..=4 {
        node.commit(block(h));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(node.clone(), listener, async move {
        let _ = stopped.await;
    }));

    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut reader = BufReader::new(stream);
    let request = "GET /v1/events?from=0 HTTP/1.1\r\nHost: bastion\r\nAccept: text/event-stream\r\nLast-Event-ID: 1\r\n\r\n";
    reader.get_mut().write_all(request.as_bytes()).await.unwrap();

    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");

    assert_eq!(read_ids(&mut reader, 3).await, vec![2, 3, 4]);
    node.commit(block(5));
    assert_eq!(read_ids(&mut reader, 1).await, vec![5]);

    // Shutdown ends the open stream and the server returns.
    stop.send(()).unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while read_chunk(&mut reader).await.is_some() {}
    });
    end.await.expect("event stream not ended by shutdown");
    let result = tokio::time::timeout(Duration::from_secs(5), server).await.expect("serve did not return");
    result.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_admitting_its_limit_of_submissions_answers_the_next_429_at_once() {
    let node = MockNode::new();
    let gate = Arc::new((Mutex::new(true), Condvar::new()));
    node.with(|s| s.gate = Some(gate.clone()));
    let app = router(node.clone());
    let body = encode_frames(&three_txs()[..1]);
    let in_flight: Vec<_> = (0..MAX_ADMISSIONS_IN_FLIGHT)
        .map(|_| {
            let (app, body) = (app.clone(), body.clone());
            tokio::spawn(async move { post(&app, BATCH, "application/octet-stream", body).await })
        })
        .collect();
    let started = std::time::Instant::now();
    while node.with(|s| s.blocked) < MAX_ADMISSIONS_IN_FLIGHT {
        assert!(started.elapsed() < Duration::from_secs(10), "the submissions never started admitting");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // One more, single or batch: refused after a short wait for a turn, with Retry-After.
    let response = post(&app, BATCH, "application/octet-stream", body.clone()).await;
    assert_eq!(response.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap()), Some("1"));
    let error = assert_error(response, StatusCode::TOO_MANY_REQUESTS, "mempool_full").await;
    assert!(error["message"].as_str().unwrap().contains("busy"), "{error}");
    let single = post_json(&app, "/v1/transactions", serde_json::json!({ "tx": "00" })).await;
    assert_error(single, StatusCode::TOO_MANY_REQUESTS, "mempool_full").await;

    *gate.0.lock().unwrap() = false;
    gate.1.notify_all();
    for admission in in_flight {
        let (status, _, answer) = batch_answer(admission.await.unwrap()).await;
        assert_eq!((status, answer.accepted), (StatusCode::OK, 1));
    }
    let (status, _, answer) = batch_answer(post(&app, BATCH, "application/octet-stream", body).await).await;
    assert_eq!((status, answer.accepted), (StatusCode::OK, 1), "the permits came back");
}
