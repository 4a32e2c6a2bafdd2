//! A stand-in validator API for the SDK and CLI tests: the real routes and JSON shapes
//! (from `bastion_client::api`), canned chain data, real ledger state (MemoryStore) for
//! account proofs with a certificate signed by a test committee, and switches to make it
//! misbehave (never commit, fail calls, lie about a balance, refuse with mempool_full).

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bastion_client::api::*;
use bastion_client::certificate::{sign_state_root, StateCertificate};
use bastion_crypto::{sha256, Digest, KeyPair};
use bastion_ledger::{
    Address, Executor, ExecutorConfig, Genesis, MemoryStore, Payload, SignedTransaction, StateQuery,
};
use bastion_testnet::config::{GenesisAccount, GenesisFile, GenesisValidator};
use bastion_testnet::dev_keys::{dev_addresses, DEV_BALANCE};
use serde::Deserialize;

pub const CHAIN: &str = "fake-chain";
/// The chain's latest height.
pub const TIP: u64 = 10;

pub struct Switches {
    /// GET /v1/transactions/{hash} answers `pending` this many times before the outcome.
    pub pending_polls: u32,
    pub fail_calls: bool,
    pub tamper_balance: bool,
    pub mempool_full: bool,
    /// Blocks sent per event-stream connection before the server closes it.
    pub events_per_connection: u64,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            pending_polls: 1,
            fail_calls: false,
            tamper_balance: false,
            mempool_full: false,
            events_per_connection: 3,
        }
    }
}

struct Known {
    response: TxResponse,
    polls_left: u32,
}

pub struct Inner {
    pub switches: Switches,
    pub submitted: Vec<SignedTransaction>,
    /// Path and query of every request, in order.
    pub requests: Vec<String>,
    txs: HashMap<Digest, Known>,
}

pub struct FakeNode {
    pub addr: SocketAddr,
    pub url: String,
    pub inner: Arc<Mutex<Inner>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Clone)]
struct App {
    inner: Arc<Mutex<Inner>>,
    chain: Arc<Chain>,
}

/// The ledger side: genesis state and its certificate.
struct Chain {
    committee: Vec<KeyPair>,
    query: StateQuery<MemoryStore>,
    certificate: StateCertificate,
}

pub fn committee() -> Vec<KeyPair> {
    (1..=4u8).map(|i| KeyPair::from_seed([i; 32])).collect()
}

/// The `genesis.json` of the fake chain (dev accounts funded, the test committee).
pub fn genesis_file() -> GenesisFile {
    GenesisFile {
        chain_id: CHAIN.into(),
        validators: committee()
            .iter()
            .enumerate()
            .map(|(i, k)| GenesisValidator {
                public_key: k.public(),
                quic_addr: format!("127.0.0.1:{}", 9000 + i).parse().unwrap(),
                api_url: None,
            })
            .collect(),
        accounts: dev_addresses()
            .into_iter()
            .map(|address| GenesisAccount { address, balance: DEV_BALANCE })
            .collect(),
    }
}

fn chain() -> Chain {
    let committee = committee();
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        accounts: dev_addresses().into_iter().map(|a| (a, DEV_BALANCE)).collect(),
        validators: committee.iter().map(KeyPair::public).collect(),
    };
    let executor =
        Executor::genesis(Arc::new(MemoryStore::new()), &genesis, ExecutorConfig::default()).unwrap();
    let root = executor.state_root();
    let signers = vec![0u16, 1, 2];
    let certificate = StateCertificate {
        chain_id: CHAIN.into(),
        height: 0,
        state_root: root,
        signatures: signers
            .iter()
            .map(|i| sign_state_root(&committee[usize::from(*i)], CHAIN, 0, &root))
            .collect(),
        signers,
    };
    Chain { committee, query: executor.query(), certificate }
}

impl FakeNode {
    pub fn start(switches: Switches) -> FakeNode {
        let inner = Arc::new(Mutex::new(Inner {
            switches,
            submitted: Vec::new(),
            requests: Vec::new(),
            txs: HashMap::new(),
        }));
        let app = App { inner: inner.clone(), chain: Arc::new(chain()) };
        let router = Router::new()
            .route("/health", get(|| async { Json(HealthResponse { ready: true, reason: None }) }))
            .route("/status", get(status))
            .route("/metrics", get(|| async { "bastion_committed_height 10\n" }))
            .route("/v1/transactions", post(submit))
            .route("/v1/transactions/{hash}", get(transaction))
            .route("/v1/accounts/{addr}", get(account))
            .route("/v1/contracts/{addr}/storage/{key}", get(storage))
            .route("/v1/contracts/{addr}/view", post(view))
            .route("/v1/blocks/{id}", get(block))
            .route("/v1/events", get(events))
            .layer(axum::middleware::from_fn_with_state(app.clone(), record))
            .with_state(app);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let _ = axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stop.await;
                    })
                    .await;
            });
        });
        let addr = addr_rx.recv().unwrap();
        FakeNode { addr, url: format!("http://{addr}"), inner, shutdown: Some(shutdown) }
    }

    pub fn with(&self, f: impl FnOnce(&mut Inner)) {
        f(&mut self.inner.lock().unwrap());
    }

    pub fn requests(&self) -> Vec<String> {
        self.inner.lock().unwrap().requests.clone()
    }

    pub fn submitted(&self) -> Vec<SignedTransaction> {
        self.inner.lock().unwrap().submitted.clone()
    }
}

async fn record(
    State(app): State<App>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let uri = request.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    app.inner.lock().unwrap().requests.push(format!("{} {uri}", request.method()));
    next.run(request).await
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(ErrorBody { code: code.into(), message: message.into() })).into_response()
}

async fn status(State(app): State<App>) -> Json<StatusResponse> {
    Json(StatusResponse {
        chain_id: CHAIN.into(),
        validator_index: 0,
        ready: true,
        consensus_only: false,
        round: 14,
        committed_height: TIP,
        executed_height: TIP,
        certified_height: 0,
        state_root: Some(app.chain.certificate.state_root),
        mempool_size: 0,
        peers_connected: 3,
        validators: app
            .chain
            .committee
            .iter()
            .enumerate()
            .map(|(i, k)| ValidatorView {
                index: i as u16,
                public_key: k.public(),
                quic_addr: format!("127.0.0.1:{}", 9000 + i),
                api_url: None,
            })
            .collect(),
        version: "fake".into(),
        halted: None,
    })
}

#[derive(Deserialize)]
struct SubmitQuery {
    wait: Option<String>,
}

fn next_nonce(inner: &Inner, sender: &Address) -> u64 {
    inner.submitted.iter().filter(|t| t.tx.sender_address() == *sender).count() as u64
}

async fn submit(
    State(app): State<App>,
    Query(q): Query<SubmitQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let bytes = if json {
        match serde_json::from_slice::<SubmitRequest>(&body).map(|r| hex::decode(r.tx)) {
            Ok(Ok(bytes)) => bytes,
            _ => return error(StatusCode::BAD_REQUEST, codes::BAD_ENCODING, "body is not {\"tx\": hex}"),
        }
    } else {
        body.to_vec()
    };
    let Ok(signed) = SignedTransaction::from_bytes(&bytes) else {
        return error(StatusCode::BAD_REQUEST, codes::BAD_ENCODING, "not a transaction");
    };
    if signed.tx.chain_id != CHAIN {
        return error(StatusCode::UNPROCESSABLE_ENTITY, codes::WRONG_CHAIN, "wrong chain");
    }
    let hash = sha256(&bytes);
    let mut inner = app.inner.lock().unwrap();
    if inner.switches.mempool_full {
        let mut response = error(StatusCode::TOO_MANY_REQUESTS, codes::MEMPOOL_FULL, "mempool full");
        response.headers_mut().insert("retry-after", "2".parse().unwrap());
        return response;
    }
    if let Some(known) = inner.txs.get(&hash) {
        return Json(known.response.clone()).into_response();
    }
    let next = next_nonce(&inner, &signed.tx.sender_address());
    if signed.tx.nonce < next {
        return error(
            StatusCode::CONFLICT,
            codes::NONCE_TOO_LOW,
            format!("nonce {} is below the sender's next nonce {next}", signed.tx.nonce),
        );
    }
    let failed = inner.switches.fail_calls && matches!(signed.tx.payload, Payload::Call { .. });
    let receipt = ReceiptView {
        status: if failed { TxStatus::CommittedFailed } else { TxStatus::CommittedOk },
        reason: failed.then(|| "aborted: insufficient balance".to_string()),
        height: TIP + 1,
        index: 0,
        fuel_used: 1_000,
        events: vec![],
        return_hex: match &signed.tx.payload {
            Payload::Call { method, .. } if method == "get" => hex::encode(1u64.to_le_bytes()),
            _ => String::new(),
        },
        contract: match &signed.tx.payload {
            Payload::Deploy { .. } => Some(Address::contract(&signed.tx.sender, signed.tx.nonce)),
            _ => None,
        },
    };
    let committed = TxResponse {
        hash,
        status: receipt.status,
        stage: if failed { TxStage::Failed } else { TxStage::Committed },
        receipt: Some(receipt),
        reason: None,
    };
    let pending =
        TxResponse { hash, status: TxStatus::Pending, stage: TxStage::Received, receipt: None, reason: None };
    let polls_left = inner.switches.pending_polls;
    inner.submitted.push(signed);
    if q.wait.as_deref() == Some("commit") {
        inner.txs.insert(hash, Known { response: committed.clone(), polls_left: 0 });
        return Json(committed).into_response();
    }
    inner.txs.insert(hash, Known { response: committed, polls_left });
    (StatusCode::ACCEPTED, Json(pending)).into_response()
}

async fn transaction(State(app): State<App>, Path(hash): Path<String>) -> Response {
    let Ok(hash) = Digest::from_hex(&hash) else {
        return error(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, "bad hash");
    };
    let mut inner = app.inner.lock().unwrap();
    let Some(known) = inner.txs.get_mut(&hash) else {
        return error(StatusCode::NOT_FOUND, codes::NOT_FOUND, format!("no transaction {hash}"));
    };
    if known.polls_left > 0 {
        known.polls_left -= 1;
        let pending = TxResponse {
            hash,
            status: TxStatus::Pending,
            stage: TxStage::InBatch,
            receipt: None,
            reason: None,
        };
        return Json(pending).into_response();
    }
    Json(known.response.clone()).into_response()
}

#[derive(Deserialize)]
struct ProofQuery {
    proof: Option<bool>,
}

async fn account(State(app): State<App>, Path(addr): Path<String>, Query(q): Query<ProofQuery>) -> Response {
    let Ok(address) = Address::from_hex(&addr) else {
        return error(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, "bad address");
    };
    let inner = app.inner.lock().unwrap();
    let account = app.chain.query.account(&address, 0).unwrap();
    let mut answer = AccountResponse {
        address,
        balance: account.balance,
        nonce: account.nonce,
        pending_nonce: next_nonce(&inner, &address),
        is_contract: account.is_contract(),
        height: if q.proof == Some(true) { 0 } else { TIP },
        proof: None,
    };
    if q.proof == Some(true) {
        answer.proof = Some(CertifiedProof {
            proof: app.chain.query.account_proof(&address, 0).unwrap(),
            certificate: app.chain.certificate.clone(),
        });
    }
    if inner.switches.tamper_balance {
        answer.balance += 1;
    }
    Json(answer).into_response()
}

async fn storage(Path((addr, key)): Path<(String, String)>) -> Response {
    let Ok(contract) = Address::from_hex(&addr) else {
        return error(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, "bad address");
    };
    Json(StorageResponse { contract, key_hex: key, value_hex: Some("2a".into()), height: TIP, proof: None })
        .into_response()
}

async fn view(Path(addr): Path<String>, Json(request): Json<ViewRequest>) -> Response {
    let Ok(contract) = Address::from_hex(&addr) else {
        return error(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, "bad address");
    };
    if contract == Address::ZERO {
        return error(StatusCode::NOT_FOUND, codes::UNKNOWN_CONTRACT, format!("no contract at {contract}"));
    }
    let return_hex = match request.method.as_str() {
        "get" => hex::encode(42u64.to_le_bytes()),
        "echo" => request.args_hex,
        _ => String::new(),
    };
    Json(ViewResponse { return_hex, height: TIP, fuel_used: 1_234, events: vec![], proof: None })
        .into_response()
}

pub fn make_block(height: u64) -> BlockResponse {
    let tx_hash = sha256(&height.to_le_bytes());
    BlockResponse {
        height,
        hash: sha256(format!("block {height}").as_bytes()),
        round: height + 2,
        proposer: (height % 4) as u16,
        parent: sha256(format!("block {}", height.saturating_sub(1)).as_bytes()),
        state_root: Some(Digest([7; 32])),
        batches: vec![Digest([1; 32])],
        txs: vec![BlockTx { hash: tx_hash, status: TxStatus::CommittedOk }],
        events: vec![BlockEvent {
            tx_hash,
            event: EventView {
                contract: Address([5; 32]),
                topic_hex: hex::encode("transfer"),
                data_hex: "0a".into(),
            },
        }],
    }
}

async fn block(Path(id): Path<String>) -> Response {
    let height = if id == "latest" { Some(TIP) } else { id.parse().ok() };
    match height {
        Some(h) if h <= TIP => Json(make_block(h)).into_response(),
        Some(h) => error(StatusCode::NOT_FOUND, codes::NOT_FOUND, format!("no block {h}")),
        None => error(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, "bad height"),
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    from: Option<u64>,
}

/// Sends `events_per_connection` blocks from `from` (default: the next height), then
/// closes the connection, so clients must resume.
async fn events(State(app): State<App>, Query(q): Query<EventsQuery>) -> impl IntoResponse {
    let per = app.inner.lock().unwrap().switches.events_per_connection;
    let from = q.from.unwrap_or(TIP + 1);
    let blocks: Vec<Result<Event, Infallible>> = (from..from + per)
        .map(|h| {
            Ok(Event::default()
                .event("block")
                .id(h.to_string())
                .data(serde_json::to_string(&make_block(h)).unwrap()))
        })
        .collect();
    Sse::new(futures_util::stream::iter(blocks))
}
