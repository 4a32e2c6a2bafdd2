//! Verification of peers' batches behind consensus (`bastion_node::verifier`) on a real
//! validator's state: batches verified together must each get back exactly their own
//! transactions, a forged transaction is left out of its batch only (and counted), and the
//! background task caches every queued batch's verified form before it stops marking it
//! as being verified, which is what execution waits on. Storing never waits for the
//! verifier: a batch it has no room for is stored, announced and left for execution.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bastion_crypto::Digest;
use bastion_ledger::{Address, TransactionBuilder};
use bastion_node::batch::Batch;
use bastion_node::byzantine::forged_transaction;
use bastion_node::driver::DriverInput;
use bastion_node::fetcher::BatchFetcher;
use bastion_node::inbound::store_batches;
use bastion_node::state::{CheckedBatch, NodeState};
use bastion_node::verifier::{check, verify_batches, Unverified};
use bytes::Bytes;
use common::{key, validator_zero};
use tokio::sync::mpsc;

const CHAIN: &str = "bastion-verifier";

/// Batch `seq` by validator 1: `valid` transfers from its own sender, then the forged ones.
fn batch(seq: u64, valid: u64, forged: u64) -> Unverified {
    let sender = key(50 + seq as u8);
    let mut txs: Vec<Bytes> = (0..valid)
        .map(|nonce| {
            let tx = TransactionBuilder::new(CHAIN, sender.clone())
                .nonce(nonce)
                .transfer(Address([7; 32]), 1)
                .expect("transfer signs");
            Bytes::from(tx.to_bytes().expect("encodes"))
        })
        .collect();
    txs.extend((0..forged).map(|i| forged_transaction(&key(1), CHAIN, seq * 100 + i).expect("forges")));
    let batch = Batch { author: 1, seq, txs };
    let (digest, tx_hashes) = batch.hashes();
    Unverified { digest, batch, tx_hashes }
}

fn verified_hashes(checked: &CheckedBatch) -> Vec<Digest> {
    match checked {
        CheckedBatch::Verified(txs) => txs.iter().map(|tx| tx.hash()).collect(),
        CheckedBatch::Opaque(_) => panic!("a signed batch came back opaque"),
    }
}

fn invalid_count(state: &NodeState) -> u64 {
    state.metrics.batch_txs_invalid.get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_checked_together_each_keep_their_own_valid_transactions() {
    let v = validator_zero(CHAIN, 4, Vec::new(), false);
    let group = vec![batch(1, 5, 0), batch(2, 3, 2), batch(3, 7, 0)];
    let checked = check(&v.state, &group);
    assert_eq!(checked.len(), 3);
    // Batch 2's forged transactions are its last two: only they are left out.
    let expected: [&[Digest]; 3] = [&group[0].tx_hashes, &group[1].tx_hashes[..3], &group[2].tx_hashes];
    for (i, (checked, expected)) in checked.iter().zip(expected).enumerate() {
        assert_eq!(verified_hashes(checked), expected, "batch {i}");
    }
    assert_eq!(invalid_count(&v.state), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_only_forged_transactions_verifies_to_nothing() {
    let v = validator_zero(CHAIN, 4, Vec::new(), false);
    let checked = check(&v.state, &[batch(4, 0, 3)]);
    assert_eq!(checked.len(), 1);
    assert!(verified_hashes(&checked[0]).is_empty());
    assert_eq!(invalid_count(&v.state), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verifier_caches_each_queued_batch_before_it_stops_marking_it() {
    let v = validator_zero(CHAIN, 4, Vec::new(), false);
    let (queue, receiver) = mpsc::channel(16);
    // Queued before the task starts, so it finds them waiting and verifies them together.
    let batches: Vec<Unverified> = (10..14).map(|seq| batch(seq, 4, seq % 2)).collect();
    let expected: Vec<(Digest, Vec<Digest>)> =
        batches.iter().map(|b| (b.digest, b.tx_hashes[..4].to_vec())).collect();
    for b in batches {
        v.state.begin_verification(b.digest);
        queue.send(b).await.expect("queue open");
    }
    let task = tokio::spawn(verify_batches(v.state.clone(), receiver));
    for (digest, hashes) in &expected {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while v.state.is_verifying(digest) {
            assert!(tokio::time::Instant::now() < deadline, "batch {digest} still being verified");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let cached = v.state.take_cached_batch(digest).expect("verified form cached before the mark goes");
        assert_eq!(&verified_hashes(&cached), hashes);
    }
    assert_eq!(invalid_count(&v.state), 2);
    drop(queue);
    task.await.expect("verifier ends when its queue closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_the_verifier_has_no_room_for_are_stored_announced_and_left_for_execution() {
    let v = validator_zero(CHAIN, 4, Vec::new(), false);
    let fetcher = Arc::new(BatchFetcher::new(v.state.clone()));
    let (driver, mut announced) = mpsc::channel(16);
    // Room for one batch, and nobody verifying: the rest must not wait for room.
    let (verifier, mut queued) = mpsc::channel(1);
    let (incoming, batches) = mpsc::channel(16);
    tokio::spawn(store_batches(v.state.clone(), fetcher, driver, verifier, batches));
    let sent: Vec<Unverified> = (20..23).map(|seq| batch(seq, 2, 0)).collect();
    for b in &sent {
        incoming.send((1, b.batch.clone())).await.expect("store task running");
    }
    for b in &sent {
        let input = tokio::time::timeout(Duration::from_secs(30), announced.recv())
            .await
            .expect("every batch announced without waiting for the verifier")
            .expect("store task running");
        assert!(matches!(input, DriverInput::PayloadAvailable(d) if d == b.digest));
        assert!(v.state.storage.has_batch(&b.digest).expect("reads"), "batch {} stored", b.digest);
    }
    let first = queued.try_recv().expect("the first batch queued for verification");
    assert_eq!(first.digest, sent[0].digest);
    assert!(v.state.is_verifying(&sent[0].digest));
    for b in &sent[1..] {
        assert!(
            !v.state.is_verifying(&b.digest),
            "a deferred batch stays marked: execution would wait for ever"
        );
    }
    assert_eq!(v.state.metrics.batches_verify_deferred.get(), 2);
}
