//! Byzantine validators as real processes: `f` validators of a real net run one of
//! `bastion-node --byzantine`'s modes, and the honest ones must keep committing and agree.
//!
//! For each mode, with n = 4 (f = 1: validator 0) and n = 7 (f = 2: validators 0 and 1, both
//! leaders early in every cycle of rounds): transfers submitted through honest validators
//! commit, every honest validator passes ten more heights, and all honest validators hold
//! the same block at every height. A Byzantine validator's log must show its mode at work,
//! and the modes that spoil the rounds a Byzantine validator leads (silent, bad signatures,
//! equivocation) must show up as round timeouts at the honest ones — so a mode that quietly
//! did nothing fails the test. Every honest validator executes exactly the submitted
//! transfers; with `bad-batches`, the forged transactions its batches carry are left out by
//! every honest validator (counted in `bastion_batch_txs_invalid_total`), none executed. The
//! figures of each run are printed (`BYZANTINE-E2E ...`).
//!
//! The nets run one at a time (a lock), so two 7-validator nets never share the two cores.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bastion_ledger::Address;
use bastion_testnet::byzantine::{max_faulty, ByzantineMode};
use bastion_tests::localnet::LocalNet;

const LIMIT: Duration = Duration::from_secs(60);
/// Heights every honest validator must pass after the transfers committed.
const MORE_BLOCKS: u64 = 10;
/// Transfers per honest sender.
const TRANSFERS_EACH: u64 = 2;

static ONE_NET_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Counter `bastion_<name>_total` of (running) validator `i`.
fn counter(net: &LocalNet, i: usize, name: &str) -> u64 {
    net.counter(i, name).unwrap_or_else(|| panic!("validator {i} serves no metrics"))
}

fn balance(net: &LocalNet, via: usize, address: &Address) -> u64 {
    let (status, account) = net.get(via, &format!("/v1/accounts/{address}")).expect("API answers");
    assert_eq!(status, 200, "{account}");
    account["balance"].as_u64().expect("balance")
}

/// Every listed validator holds the same block at every height `1..=up_to`.
fn assert_same_blocks(net: &LocalNet, validators: &[usize], up_to: u64) {
    for height in 1..=up_to {
        let first = net
            .block_hash(validators[0], height)
            .unwrap_or_else(|| panic!("validator {} has no block {height}", validators[0]));
        for &i in &validators[1..] {
            assert_eq!(
                net.block_hash(i, height).as_ref(),
                Some(&first),
                "honest validators {} and {i} disagree at height {height}",
                validators[0]
            );
        }
    }
}

fn run(n: usize, mode: ByzantineMode) {
    let _one = ONE_NET_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let f = max_faulty(n);
    let byzantine: Vec<(usize, &str)> = (0..f).map(|i| (i, mode.name())).collect();
    let honest: Vec<usize> = (f..n).collect();
    let started = Instant::now();
    let net = LocalNet::start_byzantine(n, false, &byzantine);
    let ready = started.elapsed();
    assert!(net.wait_height(&honest, 1, LIMIT), "{mode}, n = {n}: no first commit");
    let first_commit = started.elapsed();

    // Transfers from one dev account per honest validator, submitted through it.
    let recipient = Address([0xB0 + n as u8; 32]);
    let mut submitted = Vec::new();
    for nonce in 0..TRANSFERS_EACH {
        for &via in &honest {
            submitted.push((via, net.transfer(via, via as u8, nonce, recipient, 1 + via as u64)));
        }
    }
    for (via, hash) in &submitted {
        let tx = net.wait_final(*via, hash);
        assert_eq!(tx["status"], "committed_ok", "{mode}, n = {n}: {tx}");
    }
    let after_txs = honest.iter().filter_map(|&i| net.height(i)).max().expect("an honest validator answers");
    let target = after_txs + MORE_BLOCKS;
    assert!(
        net.wait_height(&honest, target, LIMIT),
        "{mode}, n = {n}: honest validators did not reach height {target}"
    );
    assert_same_blocks(&net, &honest, target);
    let expected: u64 = honest.iter().map(|&i| TRANSFERS_EACH * (1 + i as u64)).sum();
    for &i in &honest {
        assert_eq!(balance(&net, i, &recipient), expected, "{mode}, n = {n}: validator {i}");
    }

    for &(i, _) in &byzantine {
        let log = net.log(i);
        assert!(log.contains(&format!("BYZANTINE MODE {mode}")), "validator {i} did not announce {mode}");
        assert!(log.contains("byzantine: "), "validator {i} never misbehaved in mode {mode}:\n{log}");
    }
    for &i in &honest {
        let executed = counter(&net, i, "committed_txs");
        assert_eq!(
            executed,
            submitted.len() as u64,
            "{mode}, n = {n}: validator {i} executed other transactions"
        );
    }
    let invalid: Vec<u64> = honest.iter().map(|&i| counter(&net, i, "batch_txs_invalid")).collect();
    if mode == ByzantineMode::BadBatches {
        assert!(
            invalid.iter().all(|&c| c > 0),
            "{mode}, n = {n}: forged transactions never reached {invalid:?}"
        );
    } else {
        assert!(
            invalid.iter().all(|&c| c == 0),
            "{mode}, n = {n}: invalid transactions counted: {invalid:?}"
        );
    }
    let timeouts: u64 = honest.iter().map(|&i| counter(&net, i, "round_timeouts")).sum();
    let abandoned: u64 = honest.iter().map(|&i| counter(&net, i, "batch_fetches_abandoned")).sum();
    let spoils_its_rounds =
        matches!(mode, ByzantineMode::Silent | ByzantineMode::BadSignatures | ByzantineMode::Equivocate);
    if spoils_its_rounds {
        assert!(timeouts > 0, "{mode}, n = {n}: the Byzantine leaders' rounds never timed out");
    }
    let height = honest.iter().filter_map(|&i| net.height(i)).min().unwrap_or(target);
    eprintln!(
        "BYZANTINE-E2E n={n} f={f} mode={mode} byzantine={:?} blocks_committed={height} blocks_checked={target} \
         txs_checked={} invalid_txs_left_out={invalid:?} round_timeouts_honest={timeouts} batch_fetches_abandoned={abandoned} ready_s={:.1} first_commit_s={:.1} total_s={:.1}",
        byzantine.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        submitted.len(),
        ready.as_secs_f64(),
        first_commit.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
}

#[test]
fn n4_one_equivocator() {
    run(4, ByzantineMode::Equivocate);
}

#[test]
fn n4_one_double_voter() {
    run(4, ByzantineMode::DoubleVote);
}

#[test]
fn n4_one_bad_signer() {
    run(4, ByzantineMode::BadSignatures);
}

#[test]
fn n4_one_silent() {
    run(4, ByzantineMode::Silent);
}

#[test]
fn n4_one_stale() {
    run(4, ByzantineMode::Stale);
}

#[test]
fn n4_one_bad_batcher() {
    run(4, ByzantineMode::BadBatches);
}

#[test]
fn n7_two_equivocators() {
    run(7, ByzantineMode::Equivocate);
}

#[test]
fn n7_two_double_voters() {
    run(7, ByzantineMode::DoubleVote);
}

#[test]
fn n7_two_bad_signers() {
    run(7, ByzantineMode::BadSignatures);
}

#[test]
fn n7_two_silent() {
    run(7, ByzantineMode::Silent);
}

#[test]
fn n7_two_stale() {
    run(7, ByzantineMode::Stale);
}

#[test]
fn n7_two_bad_batchers() {
    run(7, ByzantineMode::BadBatches);
}
