//! End-to-end tests over real `bastion-node` processes talking QUIC on 127.0.0.1.
//!
//! Each test starts its own 4-validator net, bounded in time, and kills only what it
//! started. They assert what a user would notice: every validator reports the same blocks,
//! a crashed validator catches up, commits stop without a quorum and resume with one, and
//! no committed block or transaction is lost or changed across restarts.

use std::time::Duration;

use bastion_ledger::Address;
use bastion_testnet::config::MempoolSettings;
use bastion_tests::localnet::LocalNet;

const LIMIT: Duration = Duration::from_secs(60);

fn balance(net: &LocalNet, via: usize, address: &Address) -> u64 {
    let (status, account) = net.get(via, &format!("/v1/accounts/{address}")).expect("API answers");
    assert_eq!(status, 200, "{account}");
    account["balance"].as_u64().expect("balance")
}

fn assert_same_blocks(net: &LocalNet, validators: &[usize], up_to: u64) -> Vec<String> {
    (1..=up_to)
        .map(|height| {
            let hashes: Vec<Option<String>> = validators.iter().map(|&i| net.block_hash(i, height)).collect();
            let first = hashes[0]
                .clone()
                .unwrap_or_else(|| panic!("validator {} has no block {height}", validators[0]));
            for (k, hash) in hashes.iter().enumerate() {
                assert_eq!(
                    hash.as_ref(),
                    Some(&first),
                    "validator {} disagrees at height {height}",
                    validators[k]
                );
            }
            first
        })
        .collect()
}

#[test]
fn four_validators_commit_transfers_and_agree_on_every_block() {
    let net = LocalNet::start(4, false);
    let recipient = Address([0x42; 32]);
    let mut hashes = Vec::new();
    for round in 0..10u64 {
        for from in 0..4u8 {
            // Spread submissions over all validators.
            hashes.push(net.transfer(usize::from(from), from, round, recipient, 1 + u64::from(from)));
        }
    }
    for hash in &hashes {
        let tx = net.wait_final(0, hash);
        assert_eq!(tx["status"], "committed_ok", "{tx}");
    }
    let expected: u64 = (0..10).map(|_| 1 + 2 + 3 + 4).sum();
    let height = net.height(0).expect("status");
    assert!(net.wait_height(&[0, 1, 2, 3], height, LIMIT));
    for i in 0..4 {
        assert_eq!(balance(&net, i, &recipient), expected, "validator {i} sees another balance");
    }
    assert_same_blocks(&net, &[0, 1, 2, 3], height);
    for i in 0..4 {
        // Each validator checked each batch once, when it arrived, and ordered each once.
        assert_eq!(net.counter(i, "batches_verified_again"), Some(0), "validator {i}");
        assert_eq!(net.counter(i, "batches_ordered_again"), Some(0), "validator {i}");
    }
    // Resubmitting a committed transaction returns the same hash and changes nothing.
    let again = net.transfer(2, 0, 0, recipient, 1);
    assert_eq!(again, hashes[0]);
    assert_eq!(balance(&net, 2, &recipient), expected);
}

#[test]
fn crashed_validators_catch_up_and_quorum_loss_stops_commits() {
    let mut net = LocalNet::start(4, false);
    let recipient = Address([0x43; 32]);
    let mut nonce = 0;
    let mut send = |net: &LocalNet, via: usize| {
        let hash = net.transfer(via, 5, nonce, recipient, 10);
        nonce += 1;
        hash
    };
    let first = send(&net, 0);
    net.wait_final(0, &first);

    // One validator down: the other three keep committing.
    net.kill(3);
    let during = send(&net, 1);
    assert_eq!(net.wait_final(1, &during)["status"], "committed_ok");
    let before_restart = net.height(0).expect("status");
    assert!(net.wait_height(&[0, 1, 2], before_restart + 5, LIMIT), "three validators stopped committing");

    // Restarted, it catches up with the others and keeps committing.
    net.restart(3);
    let target = net.height(0).expect("status") + 3;
    assert!(net.wait_height(&[3], target, LIMIT), "restarted validator did not catch up: {}", net.log(3));
    let history = assert_same_blocks(&net, &[0, 1, 2, 3], target);

    // Two of four down: no quorum, so no commits.
    net.kill(2);
    net.kill(3);
    std::thread::sleep(Duration::from_secs(2));
    let stalled = net.height(0).expect("status");
    std::thread::sleep(Duration::from_secs(4));
    let still = net.height(0).expect("status");
    assert!(still <= stalled + 1, "committed without a quorum: {stalled} -> {still}");

    // One back: commits resume, and nothing committed before was lost or changed.
    net.restart(3);
    let pending = send(&net, 0);
    assert_eq!(net.wait_final(0, &pending)["status"], "committed_ok");
    assert!(net.wait_height(&[0, 1, 3], still + 3, LIMIT), "commits did not resume");
    let again = assert_same_blocks(&net, &[0, 1, 3], target);
    assert_eq!(again, history, "a committed block changed across restarts");
    assert_eq!(balance(&net, 3, &recipient), 30);
}

/// A client with several requests in flight does not control their arrival order. The
/// validator batches each sender's transactions in nonce order, so all of them execute
/// (it used to batch them as they came, and execution rejected the early arrivals).
#[test]
fn nonces_submitted_in_reverse_order_all_execute() {
    let net = LocalNet::start(4, false);
    let recipient = Address([0x43; 32]);
    let hashes: Vec<String> = (0..8u64).rev().map(|nonce| net.transfer(1, 5, nonce, recipient, 10)).collect();
    for hash in &hashes {
        let tx = net.wait_final(1, hash);
        assert_eq!(tx["status"], "committed_ok", "{tx}");
    }
    assert_eq!(balance(&net, 0, &recipient), 80);
}

/// A nonce gap that never fills holds the later transaction only for the gap wait; then
/// it is batched and its receipt says why it did not execute, instead of pending forever.
#[test]
fn a_nonce_gap_that_never_fills_ends_in_a_bad_nonce_receipt() {
    let mempool = MempoolSettings { gap_wait_ms: 1_000, ..MempoolSettings::default() };
    let net = LocalNet::start_with_mempool(4, false, mempool);
    let recipient = Address([0x44; 32]);
    let orphan = net.transfer(0, 6, 1, recipient, 10);
    let (status, tx) = net.get(0, &format!("/v1/transactions/{orphan}")).expect("API answers");
    assert_eq!((status, tx["status"].as_str()), (200, Some("pending")), "{tx}");
    let tx = net.wait_final(0, &orphan);
    assert_eq!((tx["status"].as_str(), tx["reason"].as_str()), (Some("rejected"), Some("bad nonce")), "{tx}");
    assert_eq!(net.counter(0, "nonce_gap_releases"), Some(1));
    // The account's nonce did not move: nonce 0 still executes.
    let first = net.transfer(0, 6, 0, recipient, 10);
    assert_eq!(net.wait_final(0, &first)["status"], "committed_ok");
    assert_eq!(balance(&net, 0, &recipient), 10);
}

/// How many of the blocks up to `height`, as validator `via` serves them, list `hash`.
fn blocks_listing(net: &LocalNet, via: usize, height: u64, hash: &str) -> usize {
    (1..=height)
        .map(|h| {
            let block = net.block(via, h).unwrap_or_else(|| panic!("validator {via} has no block {h}"));
            let txs = block["txs"].as_array().expect("txs").clone();
            txs.iter().filter(|tx| tx["hash"].as_str() == Some(hash)).count()
        })
        .sum()
}

/// A transaction sent to every validator at once can be batched by each of them, so up to
/// four copies are ordered, possibly in different blocks. It gets one receipt and is
/// listed in one block: a copy ordered after one that executed (its nonce is then below the
/// sender's) or after one that was rejected (still at or above) is skipped on every
/// validator alike.
#[test]
fn a_transaction_sent_to_every_validator_gets_one_receipt() {
    let mempool = MempoolSettings { gap_wait_ms: 1_000, ..MempoolSettings::default() };
    let net = LocalNet::start_with_mempool(4, false, mempool);
    let recipient = Address([0x45; 32]);
    // Nonce 1 with nothing at nonce 0: each validator holds it for the gap wait, then
    // batches it, and the first copy ordered is rejected for its nonce.
    let orphan = net.builder(7, 1).fuel_limit(10_000).transfer(recipient, 5).expect("builds");
    let hashes: Vec<String> = (0..4).map(|via| net.submit(via, &orphan)).collect();
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashes:?}");
    let rejected = net.wait_final(0, &hashes[0]);
    assert_eq!(
        (rejected["status"].as_str(), rejected["reason"].as_str()),
        (Some("rejected"), Some("bad nonce"))
    );
    // Nonce 0, to every validator at once: it executes once.
    let first = net.builder(7, 0).fuel_limit(10_000).transfer(recipient, 10).expect("builds");
    let first_hash: Vec<String> = (0..4).map(|via| net.submit(via, &first)).collect();
    assert_eq!(net.wait_final(0, &first_hash[0])["status"], "committed_ok");
    // Every copy still in flight is ordered within a few blocks.
    let height = net.height(0).expect("status") + 5;
    assert!(net.wait_height(&[0, 1, 2, 3], height, LIMIT), "commits stopped");
    assert_same_blocks(&net, &[0, 1, 2, 3], height);
    for via in 0..4 {
        assert_eq!(blocks_listing(&net, via, height, &hashes[0]), 1, "validator {via}: the rejected one");
        assert_eq!(blocks_listing(&net, via, height, &first_hash[0]), 1, "validator {via}: the executed one");
        assert_eq!(balance(&net, via, &recipient), 10, "validator {via}");
        let tx = net.wait_final(via, &hashes[0]);
        assert_eq!(tx["status"], "rejected", "validator {via} keeps the first receipt: {tx}");
    }
    // Resubmitted now that the account's nonce is 1, the rejected one keeps its receipt.
    assert_eq!(net.submit(2, &orphan), hashes[0]);
    assert_eq!(net.wait_final(2, &hashes[0])["status"], "rejected");
}
