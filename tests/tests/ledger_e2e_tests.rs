//! End-to-end tests of the ledger over real `bastion-node` processes: every validator
//! executes the same transactions to the same state, and the proofs a node serves convince
//! a client that trusts only the committee keys from genesis.

use std::time::{Duration, Instant};

use bastion_client::api::{AccountResponse, StorageResponse};
use bastion_client::verify::{verify_account, verify_storage, VerifyError};
use bastion_crypto::PublicKey;
use bastion_ledger::{compile_wat, Address};
use bastion_testnet::config::GenesisFile;
use bastion_tests::localnet::LocalNet;

const LIMIT: Duration = Duration::from_secs(60);
const COUNTER_WAT: &str = include_str!("../../examples/contracts/counter.wat");
/// counter.wat keeps its count under this storage key (an 8-byte little-endian u64).
const COUNTER_KEY: &[u8] = b"count";

/// Polls `path` on validator `via` until it answers 200 with a proof certified at `height`
/// or later (certificates trail execution by a block or so).
fn certified_answer(net: &LocalNet, via: usize, path: &str, height: u64) -> serde_json::Value {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < LIMIT {
        match net.get(via, path) {
            Ok((200, body)) if body["height"].as_u64().is_some_and(|h| h >= height) => return body,
            Ok((status, body)) => last = format!("{status} {body}"),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "validator {via}: no proof at height >= {height} for {path} within {LIMIT:?}; last answer: {last}"
    );
}

#[test]
fn every_validator_reports_the_same_state_root_at_every_height_and_proofs_verify() {
    let net = LocalNet::start(4, false);
    let genesis = GenesisFile::load(&net.dir.join("genesis.json")).expect("genesis.json");
    let committee: Vec<PublicKey> = genesis.validators.iter().map(|v| v.public_key).collect();
    let recipient = Address([0x51; 32]);

    let mut hashes = Vec::new();
    for nonce in 0..5u64 {
        for from in 0..4u8 {
            let tx = net.builder(from, nonce).fuel_limit(10_000).transfer(recipient, 1 + u64::from(from));
            hashes.push(net.submit(usize::from(from), &tx.expect("builds")));
        }
    }
    let expected_balance: u64 = 5 * (1 + 2 + 3 + 4);

    // dev 4 deploys the counter and calls it at the next nonces, so the calls run after it.
    // A sender's sequence goes through one validator: validators batch independently, so
    // nonces spread over several could be ordered out of sequence and rejected.
    let deployer = net.builder(4, 0);
    let counter = deployer.contract_address();
    let code = compile_wat(COUNTER_WAT).expect("counter.wat compiles");
    hashes.push(net.submit(0, &deployer.deploy(code, Vec::new()).expect("builds")));
    for nonce in 1..=3u64 {
        let call = net.builder(4, nonce).call(counter, "increment", Vec::new()).expect("builds");
        hashes.push(net.submit(0, &call));
    }

    for (k, hash) in hashes.iter().enumerate() {
        let tx = net.wait_final(0, hash);
        assert_eq!(tx["status"], "committed_ok", "transaction {k}: {tx}");
    }
    let final_height = net.height(0).expect("status");
    assert!(
        net.wait_height(&[0, 1, 2, 3], final_height, LIMIT),
        "validators did not all execute {final_height}"
    );

    // Same state root at every height on every validator.
    let top = (0..4).filter_map(|i| net.height(i)).min().expect("heights");
    assert!(top >= final_height);
    for height in 1..=top {
        let roots: Vec<serde_json::Value> = (0..4)
            .map(|i| {
                let (status, block) = net.get(i, &format!("/v1/blocks/{height}")).expect("API answers");
                assert_eq!(status, 200, "validator {i} has no block {height}: {block}");
                block["state_root"].clone()
            })
            .collect();
        assert!(roots[0].is_string(), "no state root at height {height}: {}", roots[0]);
        for (i, root) in roots.iter().enumerate() {
            assert_eq!(root, &roots[0], "validator {i} has another state root at height {height}");
        }
    }

    // Every validator's account proof convinces a client holding only the genesis keys.
    let path = format!("/v1/accounts/{recipient}?proof=true");
    for i in 0..4 {
        let answer: AccountResponse = serde_json::from_value(certified_answer(&net, i, &path, final_height))
            .unwrap_or_else(|e| panic!("validator {i}: undecodable account answer: {e}"));
        let verified = verify_account(&answer, &net.chain_id, &committee)
            .unwrap_or_else(|e| panic!("validator {i}: account proof rejected: {e}"));
        assert!(verified.signers >= 3, "validator {i}: only {} signers", verified.signers);
        assert_eq!(verified.validators, 4);
        assert_eq!(verified.account.map(|a| a.balance), Some(expected_balance), "validator {i}");
        assert_eq!(answer.balance, expected_balance);

        let mut tampered = answer.clone();
        tampered.balance += 1;
        assert!(
            matches!(
                verify_account(&tampered, &net.chain_id, &committee),
                Err(VerifyError::ValueMismatch { field: "balance", .. })
            ),
            "validator {i}: a tampered balance verified"
        );
    }

    // The counter's storage, proven: three increments.
    let path = format!("/v1/contracts/{counter}/storage/{}?proof=true", hex::encode(COUNTER_KEY));
    for i in 0..4 {
        let answer: StorageResponse = serde_json::from_value(certified_answer(&net, i, &path, final_height))
            .unwrap_or_else(|e| panic!("validator {i}: undecodable storage answer: {e}"));
        let verified = verify_storage(&answer, &net.chain_id, &committee)
            .unwrap_or_else(|e| panic!("validator {i}: storage proof rejected: {e}"));
        assert!(verified.signers >= 3, "validator {i}: only {} signers", verified.signers);
        assert_eq!(verified.value, Some(3u64.to_le_bytes().to_vec()), "validator {i}");

        let mut tampered = answer.clone();
        tampered.value_hex = Some(hex::encode(4u64.to_le_bytes()));
        assert!(
            verify_storage(&tampered, &net.chain_id, &committee).is_err(),
            "validator {i}: a tampered counter value verified"
        );
    }
}
