//! The SDK against a fake validator API: typed answers, typed errors (with the server's
//! code and HTTP status), the pending nonce, waiting, proofs, and the resumable event
//! stream; plus node discovery.

mod fake_node;

use std::time::{Duration, Instant};

use bastion_client::api::{codes, TxStatus};
use bastion_client::discovery::{discover_from, NodeSource};
use bastion_client::{verify_account, BlockId, Client, ClientError, VerifyError};
use bastion_crypto::{Digest, PublicKey};
use bastion_ledger::{Address, Payload};
use bastion_testnet::dev_keys::{dev_key, DEV_BALANCE};
use bastion_testnet::{Manifest, ValidatorEntry};
use fake_node::{FakeNode, Switches, CHAIN, TIP};

fn dev(i: u8) -> bastion_crypto::KeyPair {
    dev_key(i).unwrap()
}

fn addr(i: u8) -> Address {
    Address::from_public_key(&dev(i).public())
}

#[tokio::test]
async fn status_health_metrics_block_view_decode() {
    let node = FakeNode::start(Switches::default());
    let client = Client::new(&node.url).unwrap();
    assert!(client.health().await.unwrap().ready);
    let status = client.status().await.unwrap();
    assert_eq!((status.chain_id.as_str(), status.committed_height, status.validators.len()), (CHAIN, TIP, 4));
    assert!(client.metrics().await.unwrap().contains("bastion_committed_height 10"));

    let latest = client.block(BlockId::Latest).await.unwrap();
    assert_eq!(latest.height, TIP);
    assert_eq!(client.block(BlockId::Height(3)).await.unwrap(), fake_node::make_block(3));
    let missing = client.block(BlockId::Height(99)).await.unwrap_err();
    assert_eq!((missing.status(), missing.code()), (Some(404), Some(codes::NOT_FOUND)));
    assert!(missing.is_rejection());

    let view = client.view(&Address([3; 32]), "echo", &[1, 2, 3], false).await.unwrap();
    assert_eq!((view.return_hex.as_str(), view.height, view.fuel_used), ("010203", TIP, 1_234));
    let unknown = client.view(&Address::ZERO, "get", &[], false).await.unwrap_err();
    assert_eq!(unknown.code(), Some(codes::UNKNOWN_CONTRACT));

    let storage = client.storage(&Address([3; 32]), b"count", false).await.unwrap();
    assert_eq!(storage.key_hex, hex::encode("count"));
    assert!(node.requests().contains(&format!(
        "GET /v1/contracts/{}/storage/{}",
        Address([3; 32]),
        hex::encode("count")
    )));
}

#[tokio::test]
async fn a_transfer_is_built_submitted_and_waited_for() {
    let node = FakeNode::start(Switches { pending_polls: 2, ..Switches::default() });
    let client = Client::new(&node.url).unwrap();
    let builder = client.transaction_builder(&dev(0), 50_000).await.unwrap();
    let tx = builder.transfer(addr(1), 1_000).unwrap();
    let accepted = client.submit(&tx).await.unwrap();
    assert_eq!(accepted.status, TxStatus::Pending);
    assert_eq!(accepted.hash, tx.hash().unwrap());

    let sent = &node.submitted()[0];
    assert_eq!(sent, &tx);
    assert_eq!((sent.tx.chain_id.as_str(), sent.tx.nonce, sent.tx.fuel_limit), (CHAIN, 0, 50_000));
    assert_eq!(sent.tx.expiry_height, TIP + 1_000);
    assert_eq!(sent.tx.payload, Payload::Transfer { to: addr(1), amount: 1_000 });

    let done = client.wait_for_final(&accepted.hash, Duration::from_secs(10)).await.unwrap();
    assert_eq!(done.status, TxStatus::CommittedOk);
    assert_eq!(done.receipt.unwrap().height, TIP + 1);
    let polls = node.requests().iter().filter(|r| r.starts_with("GET /v1/transactions/")).count();
    assert_eq!(polls, 3, "two pending answers, then the outcome");
}

#[tokio::test]
async fn rapid_sends_use_the_pending_nonce_and_stale_nonces_are_typed_errors() {
    let node = FakeNode::start(Switches::default());
    let client = Client::new(&node.url).unwrap();
    for expected in 0..3 {
        let tx = client.transaction_builder(&dev(2), 10_000).await.unwrap().transfer(addr(3), 1).unwrap();
        assert_eq!(tx.tx.nonce, expected);
        client.submit(&tx).await.unwrap();
    }
    // Resending an old nonce (a different transaction) is refused with the server's code.
    let stale =
        client.transaction_builder(&dev(2), 10_000).await.unwrap().nonce(0).transfer(addr(3), 2).unwrap();
    match client.submit(&stale).await.unwrap_err() {
        ClientError::Api { status: 409, body, url, .. } => {
            assert_eq!(body.code, codes::NONCE_TOO_LOW);
            assert!(body.message.contains("next nonce 3"), "{}", body.message);
            assert!(url.ends_with("/v1/transactions"));
        }
        other => panic!("expected a 409, got {other:?}"),
    }
}

#[tokio::test]
async fn raw_and_wait_commit_submission() {
    let node = FakeNode::start(Switches { pending_polls: 100, ..Switches::default() });
    let client = Client::new(&node.url).unwrap();
    let builder = client.transaction_builder(&dev(0), 10_000).await.unwrap();
    let raw = builder.transfer(addr(1), 5).unwrap();
    let accepted = client.submit_raw(raw.to_bytes().unwrap()).await.unwrap();
    assert_eq!(accepted.hash, raw.hash().unwrap());

    let next = builder.nonce(1).transfer(addr(1), 6).unwrap();
    let committed = client.submit_and_wait(&next).await.unwrap();
    assert_eq!(committed.status, TxStatus::CommittedOk);
    assert!(node.requests().contains(&"POST /v1/transactions?wait=commit".to_string()));
}

#[tokio::test]
async fn waiting_times_out_as_pending_and_errors_are_classified() {
    let node = FakeNode::start(Switches { pending_polls: u32::MAX, ..Switches::default() });
    let client = Client::new(&node.url).unwrap();
    let tx = client.transaction_builder(&dev(0), 10_000).await.unwrap().transfer(addr(1), 5).unwrap();
    let accepted = client.submit(&tx).await.unwrap();
    let started = Instant::now();
    let still = client.wait_for_final(&accepted.hash, Duration::from_millis(700)).await.unwrap();
    assert_eq!(still.status, TxStatus::Pending);
    assert!(started.elapsed() < Duration::from_secs(3));

    // An unknown transaction: 404 with the server's code; waiting for it ends in that error.
    let unknown = Digest([1; 32]);
    let err = client.wait_for_final(&unknown, Duration::from_millis(300)).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(404), Some(codes::NOT_FOUND)));

    // Mempool full: 429 with Retry-After.
    node.with(|n| n.switches.mempool_full = true);
    let tx = client.transaction_builder(&dev(4), 10_000).await.unwrap().transfer(addr(1), 5).unwrap();
    match client.submit(&tx).await.unwrap_err() {
        ClientError::Api { status: 429, body, retry_after, .. } => {
            assert_eq!(body.code, codes::MEMPOOL_FULL);
            assert_eq!(retry_after, Some(Duration::from_secs(2)));
        }
        other => panic!("expected a 429, got {other:?}"),
    }

    // A route the node does not have: not an ErrorBody, still a typed error.
    let err = client.openapi().await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(404), Some("http_404")));

    // Nothing listening: unreachable, naming the URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dead = Client::new(&format!("http://{closed}")).unwrap();
    let err = dead.status().await.unwrap_err();
    assert!(err.is_unavailable() && matches!(err, ClientError::Unreachable { .. }));
    assert!(err.to_string().contains(&closed.to_string()), "{err}");
}

#[tokio::test]
async fn account_proofs_verify_against_the_committee() {
    let node = FakeNode::start(Switches::default());
    let client = Client::new(&node.url).unwrap();
    let committee: Vec<PublicKey> = fake_node::committee().iter().map(|k| k.public()).collect();

    let plain = client.account(&addr(0)).await.unwrap();
    assert_eq!((plain.balance, plain.proof.is_none()), (DEV_BALANCE, true));
    assert_eq!(verify_account(&plain, CHAIN, &committee), Err(VerifyError::NoProof));

    let proven = client.account_with_proof(&addr(0)).await.unwrap();
    let verified = verify_account(&proven, CHAIN, &committee).unwrap();
    assert_eq!((verified.height, verified.signers, verified.validators), (0, 3, 4));
    assert_eq!(verified.account.unwrap().balance, DEV_BALANCE);

    node.with(|n| n.switches.tamper_balance = true);
    let lying = client.account_with_proof(&addr(0)).await.unwrap();
    assert!(matches!(
        verify_account(&lying, CHAIN, &committee),
        Err(VerifyError::ValueMismatch { field: "balance", .. })
    ));
}

#[tokio::test]
async fn the_event_stream_resumes_without_gaps_or_repeats() {
    let node = FakeNode::start(Switches::default());
    let client = Client::new(&node.url).unwrap();
    let mut stream = client.events(Some(1)).await.unwrap();
    let mut heights = Vec::new();
    while heights.len() < 8 {
        let block =
            tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap().unwrap();
        heights.push(block.height);
    }
    assert_eq!(heights, (1..=8).collect::<Vec<_>>());
    assert_eq!(stream.next_height(), Some(9));
    let connections: Vec<String> =
        node.requests().into_iter().filter(|r| r.starts_with("GET /v1/events")).collect();
    assert_eq!(connections[..3], ["GET /v1/events?from=1", "GET /v1/events?from=4", "GET /v1/events?from=7"]);
}

#[test]
fn urls_are_normalised_and_checked() {
    assert_eq!(Client::new("127.0.0.1:8080/").unwrap().base_url(), "http://127.0.0.1:8080");
    assert_eq!(Client::new("http://localhost:1").unwrap().base_url(), "http://localhost:1");
    assert!(matches!(Client::new("https://example.org"), Err(ClientError::InvalidUrl { .. })));
    assert!(matches!(Client::new("ftp://x"), Err(ClientError::InvalidUrl { .. })));
}

#[tokio::test]
async fn discovery_prefers_flag_then_env_then_a_live_testnet_validator() {
    let node = FakeNode::start(Switches::default());
    let tmp = tempfile::tempdir().unwrap();
    let dirs = vec![tmp.path().join("missing"), tmp.path().join("net")];

    let found = discover_from(Some("http://flag:1"), Some("http://env:2"), &dirs).await.unwrap();
    assert_eq!((found.url.as_str(), found.source), ("http://flag:1", NodeSource::Flag));
    let found = discover_from(None, Some("http://env:2"), &dirs).await.unwrap();
    assert_eq!((found.url.as_str(), found.source), ("http://env:2", NodeSource::Env));

    // Nothing: the error names all three ways.
    let err = discover_from(None, None, &dirs).await.unwrap_err().to_string();
    assert!(err.contains("--node") && err.contains("BASTION_NODE") && err.contains("testnet up"), "{err}");

    // A testnet whose validator 0 is down and validator 1 is the fake: validator 1.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let entry = |index: u16, api: String| ValidatorEntry {
        index,
        api_url: api,
        quic_addr: "127.0.0.1:1".parse().unwrap(),
        pid: None,
        data_dir: tmp.path().join("data"),
        byzantine: None,
    };
    std::fs::create_dir_all(&dirs[1]).unwrap();
    Manifest {
        chain_id: CHAIN.into(),
        consensus_only: false,
        validators: vec![entry(0, format!("http://{closed}")), entry(1, node.url.clone())],
    }
    .save(&dirs[1].join("testnet.json"))
    .unwrap();
    let found = discover_from(None, None, &dirs).await.unwrap();
    assert_eq!(found.url, node.url);
    assert!(matches!(found.source, NodeSource::Testnet { index: 1, .. }));
}
