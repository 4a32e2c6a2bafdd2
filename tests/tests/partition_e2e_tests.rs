//! End-to-end network faults over real `bastion-node` processes: every datagram between
//! validators passes through a UDP relay on 127.0.0.1 ([`bastion_testnet::relay`]) that
//! partitions, delays and drops traffic as the test says (this machine's kernel has no
//! `netem`, and the relay needs no root).
//!
//! They assert what a user would notice: a majority cut off from one validator keeps
//! committing while that validator stalls, and after the partition heals the validator
//! catches up to exactly the same blocks; with 50 ms round trips and lost datagrams,
//! transfers still commit. Timings (recovery time, commit rate, latency) are printed, not
//! asserted.

use std::time::{Duration, Instant};

use bastion_ledger::Address;
use bastion_testnet::faults::NetworkRules;
use bastion_tests::localnet::LocalNet;

const LIMIT: Duration = Duration::from_secs(60);
/// How long the partition lasts at least: longer than the transport's idle timeout.
const PARTITION_HOLD: Duration = Duration::from_secs(12);

/// Waits (polling every 10 ms, at most [`LIMIT`]) until the transaction is final; returns
/// its status and how long that took from `since`.
fn wait_final(net: &LocalNet, via: usize, hash: &str, since: Instant) -> (String, Duration) {
    while since.elapsed() < LIMIT {
        if let Ok((200, tx)) = net.get(via, &format!("/v1/transactions/{hash}")) {
            if tx["status"] != "pending" {
                return (tx["status"].as_str().unwrap_or_default().to_string(), since.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("transaction {hash} not final within {LIMIT:?}");
}

fn balance(net: &LocalNet, via: usize, address: &Address) -> u64 {
    let (status, account) = net.get(via, &format!("/v1/accounts/{address}")).expect("API answers");
    assert_eq!(status, 200, "{account}");
    account["balance"].as_u64().expect("balance")
}

fn height(net: &LocalNet, i: usize) -> u64 {
    net.height(i).unwrap_or_else(|| panic!("validator {i} does not answer /status"))
}

fn partition(groups: &[&[u16]]) -> NetworkRules {
    NetworkRules { groups: groups.iter().map(|g| g.to_vec()).collect(), ..Default::default() }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

#[test]
fn minority_partition_stalls_the_minority_and_it_catches_up_after_heal() {
    let net = LocalNet::start_with_faults(4, false);
    let recipient = Address([0x51; 32]);
    assert!(net.wait_height(&[0, 1, 2, 3], 2, LIMIT), "the net did not start committing");

    net.set_faults(partition(&[&[0, 1, 2], &[3]]));
    let cut = Instant::now();
    // Let what was in flight when the cut came settle.
    std::thread::sleep(Duration::from_secs(1));
    let minority_start = height(&net, 3);
    let majority_start = height(&net, 0);

    // The majority (3 of 4, a quorum) keeps committing, transfers included.
    for (via, nonce) in [(0, 0), (1, 1), (2, 2)] {
        let hash = net.transfer(via, 6, nonce, recipient, 100);
        let (status, _) = wait_final(&net, 0, &hash, Instant::now());
        assert_eq!(status, "committed_ok");
    }
    assert!(
        net.wait_height(&[0, 1, 2], majority_start + 5, LIMIT),
        "the majority stopped committing: {} -> {}; relay: {:?}",
        majority_start,
        height(&net, 0),
        net.relay_stats()
    );
    // Hold the cut past the QUIC idle timeout (10 s), so the heal also needs redials.
    std::thread::sleep(PARTITION_HOLD.saturating_sub(cut.elapsed()));
    // The minority (1 of 4) cannot form a quorum and hears nothing: it stalls.
    let minority_end = height(&net, 3);
    assert!(
        minority_end <= minority_start + 1,
        "the cut-off validator kept committing: {minority_start} -> {minority_end}"
    );
    assert_eq!(balance(&net, 3, &recipient), 0, "the cut-off validator saw partition-time transfers");
    let majority_end = height(&net, 0);
    println!(
        "during the partition ({:.1?}): majority {majority_start} -> {majority_end}, minority {minority_start} -> {minority_end}; relay: {}",
        cut.elapsed(),
        net.relay_stats().unwrap_or_default()
    );

    // Heal: the minority catches up to the height the majority had at the heal.
    net.set_faults(NetworkRules::default());
    let healed = Instant::now();
    let target = height(&net, 0);
    assert!(net.wait_height(&[3], target, LIMIT), "the healed validator did not catch up: {}", net.log(3));
    let recovery = healed.elapsed();
    println!(
        "recovery: validator 3 went from height {minority_end} to {target} in {recovery:?} after the heal"
    );

    for h in 1..=target {
        let hashes: Vec<Option<String>> = (0..4).map(|i| net.block_hash(i, h)).collect();
        assert!(hashes[0].is_some(), "validator 0 has no block {h}");
        assert!(hashes.iter().all(|x| *x == hashes[0]), "validators disagree at height {h}: {hashes:?}");
    }
    assert_eq!(balance(&net, 3, &recipient), 300, "the healed validator misses partition-time transfers");
    // And it takes part again: the net commits with all four.
    assert!(net.wait_height(&[0, 1, 2, 3], target + 3, LIMIT), "commits did not continue after the heal");
}

#[test]
fn transfers_commit_with_wan_latency_and_loss() {
    let net = LocalNet::start_with_faults(4, false);
    let recipient = Address([0x52; 32]);
    assert!(net.wait_height(&[0, 1, 2, 3], 2, LIMIT), "the net did not start committing");

    let phases = [
        ("no faults (the relay alone)", NetworkRules::default()),
        ("25 ms per hop (50 ms round trips)", NetworkRules { delay_ms: vec![25; 4], ..Default::default() }),
        (
            "25 ms per hop and 5% loss",
            NetworkRules { delay_ms: vec![25; 4], loss_percent: vec![5.0; 4], ..Default::default() },
        ),
    ];
    let mut nonce = 0;
    let mut last_hash = String::new();
    for (name, rules) in phases {
        net.set_faults(rules);
        let start_height = height(&net, 0);
        let started = Instant::now();
        let mut latencies = Vec::new();
        for k in 0..8 {
            let sent = Instant::now();
            let hash = net.transfer(k % 4, 7, nonce, recipient, 1);
            nonce += 1;
            let (status, latency) = wait_final(&net, k % 4, &hash, sent);
            assert_eq!(status, "committed_ok", "{name}");
            latencies.push(latency);
            last_hash = hash;
        }
        assert!(
            net.wait_height(&[0, 1, 2, 3], start_height + 3, LIMIT),
            "commits stalled with {name}; relay: {:?}",
            net.relay_stats()
        );
        let elapsed = started.elapsed();
        let blocks = height(&net, 0) - start_height;
        latencies.sort();
        println!(
            "{name}: {blocks} blocks in {elapsed:.1?} ({:.1} blocks/s); transfer submit->final p50 {:?}, max {:?}",
            blocks as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 50),
            latencies[latencies.len() - 1]
        );
    }
    println!("relay: {}", net.relay_stats().unwrap_or_default());
    // The last transfer was confirmed by one validator; each of the others executes it
    // when it catches up (it holds the sender's highest nonce, so all before it too).
    for i in 0..4 {
        let (status, _) = wait_final(&net, i, &last_hash, Instant::now());
        assert_eq!(status, "committed_ok", "validator {i} fell behind");
        assert_eq!(balance(&net, i, &recipient), nonce, "validator {i} sees another balance");
    }
}
