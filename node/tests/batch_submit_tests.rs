//! Batch admission (`NodeApi::submit_many`) on a real validator: RocksDB storage, ledger
//! state at genesis with funded accounts, the real mempool and batch signature checks.
//!
//! What a batch must guarantee: one verdict per transaction, in input order, each the one
//! `submit` would give that transaction alone; the mempool holds exactly the admitted ones;
//! resubmissions keep their hashes; a full mempool refuses without admitting anything.

mod common;

use bastion_crypto::{sha256, Digest, KeyPair};
use bastion_ledger::{admit, Address, Receipt, ReceiptStatus, SignedTransaction, TransactionBuilder};
use bastion_node::api::{ApiError, NodeApi};
use bastion_node::mempool::TxLocation;
use bastion_testnet::config::{GenesisAccount, MempoolSettings};
use bytes::Bytes;
use common::{key, validator_zero, validator_zero_with, TestValidator};

const CHAIN: &str = "bastion-batch-submit";
const RECIPIENT: Address = Address([9; 32]);

fn funded() -> KeyPair {
    key(42)
}

fn also_funded() -> KeyPair {
    key(44)
}

fn unfunded() -> KeyPair {
    key(43)
}

fn accounts() -> Vec<GenesisAccount> {
    [funded(), also_funded()]
        .iter()
        .map(|k| GenesisAccount { address: Address::from_public_key(&k.public()), balance: 1 << 50 })
        .collect()
}

/// Validator 0 of 4 at genesis with `funded()` and `also_funded()` holding funds.
fn validator() -> TestValidator {
    validator_zero(CHAIN, 4, accounts(), true)
}

/// The same, with a mempool of at most `capacity` waiting transactions and `per_sender`
/// pending ones per sender.
fn validator_with_pool(capacity: usize, per_sender: usize) -> TestValidator {
    let mempool = MempoolSettings { capacity, per_sender, ..MempoolSettings::default() };
    validator_zero_with(CHAIN, 4, accounts(), true, mempool)
}

fn signed_transfer(chain: &str, key: KeyPair, nonce: u64) -> SignedTransaction {
    TransactionBuilder::new(chain, key).nonce(nonce).transfer(RECIPIENT, 1 + nonce).expect("transfer signs")
}

/// A transfer's canonical bytes.
fn transfer(chain: &str, key: KeyPair, nonce: u64) -> Bytes {
    Bytes::from(signed_transfer(chain, key, nonce).to_bytes().expect("encodes"))
}

/// `funded()`'s transfers with these nonces.
fn transfers(nonces: std::ops::Range<u64>) -> Vec<Bytes> {
    nonces.map(|nonce| transfer(CHAIN, funded(), nonce)).collect()
}

/// A well-formed transaction whose signature has one byte changed.
fn bad_signature(nonce: u64) -> Bytes {
    let mut signed = signed_transfer(CHAIN, funded(), nonce);
    signed.signature.0[3] ^= 0x40;
    Bytes::from(signed.to_bytes().expect("encodes"))
}

fn wrong_chain(nonce: u64) -> Bytes {
    transfer("another-chain", funded(), nonce)
}

fn wrong_chain_error() -> ApiError {
    ApiError::WrongChain { got: "another-chain".into(), expected: CHAIN.into() }
}

fn is_mempool_full(verdict: &Result<Digest, ApiError>) -> bool {
    matches!(verdict, Err(ApiError::MempoolFull(_)))
}

#[tokio::test]
async fn a_batch_admits_the_valid_transactions_and_refuses_the_others_in_order() {
    let node = validator();
    let valid = transfers(0..20);
    let mut batch = valid.clone();
    batch.insert(10, bad_signature(20));
    batch.insert(16, wrong_chain(21));
    assert_eq!(batch.len(), 22);

    let verdicts = node.state.submit_many(batch.clone());

    let expected: Vec<Result<Digest, ApiError>> = batch
        .iter()
        .enumerate()
        .map(|(i, tx)| match i {
            10 => Err(ApiError::BadSignature),
            16 => Err(wrong_chain_error()),
            _ => Ok(sha256(tx)),
        })
        .collect();
    assert_eq!(verdicts, expected);
    // The hash given back is the transaction's own: the one admission computes alone.
    for (tx, verdict) in valid.iter().zip(verdicts.iter().filter(|v| v.is_ok())) {
        assert_eq!(verdict, &Ok(admit(tx, CHAIN).expect("valid").hash()));
    }
    // The mempool holds exactly the valid ones.
    let pool = &node.state.mempool;
    assert_eq!(pool.queued(), valid.len());
    for tx in &valid {
        assert_eq!(pool.location(&sha256(tx)), Some(TxLocation::Queued));
    }
    assert_eq!(pool.location(&sha256(&batch[10])), None);
    assert_eq!(pool.location(&sha256(&batch[16])), None);
    let sender = Address::from_public_key(&funded().public());
    assert_eq!(pool.pending_next_nonce(&sender), Some(20));
}

#[tokio::test]
async fn resubmitting_a_batch_returns_the_same_hashes_and_adds_nothing() {
    let node = validator();
    let mut batch = transfers(0..8);
    batch.push(bad_signature(8));
    let first = node.state.submit_many(batch.clone());
    assert_eq!(first.iter().filter(|v| v.is_ok()).count(), 8);
    assert_eq!(node.state.mempool.queued(), 8);

    let second = node.state.submit_many(batch.clone());
    assert_eq!(second, first);
    assert_eq!(node.state.mempool.queued(), 8);

    // A transaction twice in one batch (and known already) keeps its hash both times; one
    // new transaction among them is admitted once.
    let repeated =
        vec![batch[2].clone(), transfer(CHAIN, funded(), 8), batch[2].clone(), transfer(CHAIN, funded(), 8)];
    let hash = sha256(&repeated[1]);
    assert_eq!(
        node.state.submit_many(repeated),
        vec![first[2].clone(), Ok(hash), first[2].clone(), Ok(hash)]
    );
    assert_eq!(node.state.mempool.queued(), 9);
    // And alone, too.
    assert_eq!(node.state.submit(batch[5].clone()), first[5]);
    assert_eq!(node.state.mempool.queued(), 9);
}

#[tokio::test]
async fn a_sender_without_funds_gets_insufficient_funds_for_each_transaction() {
    let node = validator();
    let batch: Vec<Bytes> = (0..3).map(|nonce| transfer(CHAIN, unfunded(), nonce)).collect();
    let verdicts = node.state.submit_many(batch);
    assert_eq!(verdicts.len(), 3);
    for verdict in &verdicts {
        assert!(
            matches!(verdict, Err(ApiError::InsufficientFunds { balance: 0, needed }) if *needed > 0),
            "{verdict:?}"
        );
    }
    assert_eq!(node.state.mempool.queued(), 0);
}

/// Each kind of transaction a client may send, and the verdict expected alone.
fn representative_set(max_tx_bytes: usize) -> Vec<(&'static str, Bytes)> {
    let expired = TransactionBuilder::new(CHAIN, also_funded())
        .expiry_height(0)
        .transfer(RECIPIENT, 1)
        .expect("signs")
        .to_bytes()
        .expect("encodes");
    let greedy = TransactionBuilder::new(CHAIN, also_funded())
        .nonce(1)
        .fuel_limit(u64::MAX)
        .transfer(RECIPIENT, 1)
        .expect("signs")
        .to_bytes()
        .expect("encodes");
    vec![
        ("valid", transfer(CHAIN, funded(), 0)),
        ("bad signature", bad_signature(1)),
        ("valid, next nonce", transfer(CHAIN, funded(), 1)),
        ("wrong chain", wrong_chain(2)),
        ("too large", Bytes::from(vec![0u8; max_tx_bytes + 1])),
        ("not a transaction", Bytes::from_static(b"not a transaction")),
        ("empty", Bytes::new()),
        ("unfunded sender", transfer(CHAIN, unfunded(), 0)),
        ("expired", Bytes::from(expired)),
        ("fuel limit too high", Bytes::from(greedy)),
        ("valid, nonce gap", transfer(CHAIN, funded(), 7)),
    ]
}

#[tokio::test]
async fn every_verdict_is_the_one_submit_gives_alone() {
    let batched = validator();
    let alone = validator();
    let cases = representative_set(batched.state.max_tx_bytes());
    let txs: Vec<Bytes> = cases.iter().map(|(_, tx)| tx.clone()).collect();

    let verdicts = batched.state.submit_many(txs.clone());
    assert_eq!(verdicts.len(), cases.len());
    for ((name, tx), verdict) in cases.iter().zip(&verdicts) {
        assert_eq!(verdict, &alone.state.submit(tx.clone()), "{name}");
        // The set covers what it claims to: each case fails (or not) the way its name says.
        let kind_ok = match *name {
            "bad signature" => verdict == &Err(ApiError::BadSignature),
            "wrong chain" => verdict == &Err(wrong_chain_error()),
            "too large" => matches!(verdict, Err(ApiError::TooLarge { .. })),
            "not a transaction" | "empty" => matches!(verdict, Err(ApiError::BadEncoding(_))),
            "unfunded sender" => matches!(verdict, Err(ApiError::InsufficientFunds { .. })),
            "expired" => matches!(verdict, Err(ApiError::Expired { .. })),
            "fuel limit too high" => matches!(verdict, Err(ApiError::BadRequest(_))),
            _ => verdict == &Ok(sha256(tx)),
        };
        assert!(kind_ok, "{name}: {verdict:?}");
    }
    assert_eq!(batched.state.mempool.queued(), 3);
    assert_eq!(alone.state.mempool.queued(), 3);
}

#[tokio::test]
async fn a_full_mempool_refuses_the_overflow_then_every_transaction() {
    let node = validator_with_pool(5, 1_000);
    let batch = transfers(0..8);
    let verdicts = node.state.submit_many(batch.clone());
    let expected_admitted: Vec<Result<Digest, ApiError>> =
        batch[..5].iter().map(|tx| Ok(sha256(tx))).collect();
    assert_eq!(verdicts[..5], expected_admitted[..]);
    assert!(verdicts[5..].iter().all(is_mempool_full), "{verdicts:?}");
    assert_eq!(node.state.mempool.queued(), 5);

    // Full: new transactions, even ones that would fail their signature check, are refused
    // as mempool_full before anything is verified; only the size check comes first.
    let mut more = transfers(8..11);
    more.push(bad_signature(11));
    more.push(transfer(CHAIN, also_funded(), 0));
    more.push(Bytes::from(vec![0u8; node.state.max_tx_bytes() + 1]));
    let verdicts = node.state.submit_many(more.clone());
    assert!(verdicts[..5].iter().all(is_mempool_full), "{verdicts:?}");
    assert!(matches!(verdicts[5], Err(ApiError::TooLarge { .. })), "{:?}", verdicts[5]);
    assert_eq!(node.state.mempool.queued(), 5);
    for tx in &more {
        assert_eq!(node.state.mempool.location(&sha256(tx)), None);
    }
    // `submit` alone says the same.
    assert!(is_mempool_full(&node.state.submit(more[0].clone())));
}

#[tokio::test]
async fn a_senders_share_of_the_mempool_bounds_its_part_of_a_batch() {
    let node = validator_with_pool(100, 3);
    let mut batch = transfers(0..5);
    batch.push(transfer(CHAIN, also_funded(), 0));
    let verdicts = node.state.submit_many(batch.clone());
    assert_eq!(verdicts[..3], batch[..3].iter().map(|tx| Ok(sha256(tx))).collect::<Vec<_>>()[..]);
    assert!(verdicts[3..5].iter().all(is_mempool_full), "{verdicts:?}");
    // Another sender in the same batch is not held back.
    assert_eq!(verdicts[5], Ok(sha256(&batch[5])));
    assert_eq!(node.state.mempool.queued(), 4);
}

/// A transaction the node already holds keeps its hash even when the pool is full: the
/// client learns it is in, not that it should retry (the `submit` contract).
#[tokio::test]
async fn resubmitting_to_a_full_mempool_returns_the_known_hash() {
    let node = validator_with_pool(3, 1_000);
    let batch = transfers(0..3);
    let hashes: Vec<Result<Digest, ApiError>> = batch.iter().map(|tx| Ok(sha256(tx))).collect();
    assert_eq!(node.state.submit_many(batch.clone()), hashes);
    assert!(node.state.mempool.check_room().is_err(), "the pool should be full");

    let alone = node.state.submit(batch[1].clone());
    let mut again = batch.clone();
    again.push(transfer(CHAIN, funded(), 3));
    let verdicts = node.state.submit_many(again);
    assert_eq!(alone, hashes[1], "submit alone");
    assert_eq!(verdicts[..3], hashes[..], "submit_many");
    assert!(is_mempool_full(&verdicts[3]), "{:?}", verdicts[3]);
    assert_eq!(node.state.mempool.queued(), 3);
}

/// An executed transaction resubmitted to a full pool keeps its hash too. The refusal
/// reads the transaction index only for a nonce below the sender's executed one; a fresh
/// nonce is refused without it, and still 429, not admitted.
#[tokio::test]
async fn resubmitting_an_executed_transaction_to_a_full_mempool_returns_its_hash() {
    let node = validator_with_pool(3, 1_000);
    let executed = transfer(CHAIN, funded(), 0);
    let hash = sha256(&executed);
    assert_eq!(node.state.submit(executed.clone()), Ok(hash));
    // Nonce 0 executes at height 1: indexed, gone from the pool, the sender's nonce is 1.
    node.state.storage.record_execution(1, Digest::ZERO, &[], &[hash]).expect("recorded");
    let sender = Address::from_public_key(&funded().public());
    node.state.mempool.finalized(&[hash], &[(sender, 1)]);
    assert_eq!(node.state.mempool.location(&hash), None);
    assert_eq!(node.state.mempool.executed_nonce(&sender), Some(1));

    let pending = transfers(1..4);
    assert!(node.state.submit_many(pending.clone()).iter().all(Result::is_ok));
    assert!(node.state.mempool.check_room().is_err(), "the pool should be full");

    assert_eq!(node.state.submit(executed.clone()), Ok(hash), "submit alone");
    let verdicts = node.state.submit_many(vec![executed, pending[0].clone(), transfer(CHAIN, funded(), 4)]);
    assert_eq!(verdicts[..2], [Ok(hash), Ok(sha256(&pending[0]))], "{verdicts:?}");
    assert!(is_mempool_full(&verdicts[2]), "{:?}", verdicts[2]);
    assert_eq!(node.state.mempool.queued(), 3);
}

/// A transaction a block rejected (its sender's nonce did not move) keeps its hash and its
/// receipt when it is sent again, to a pool with room and to a full one: it is not queued
/// a second time. Its nonce is not below the sender's, so this is answered from the
/// rejections, not the transaction index.
#[tokio::test]
async fn resubmitting_a_rejected_transaction_returns_its_hash_and_queues_nothing() {
    let node = validator_with_pool(3, 1_000);
    let rejected = transfer(CHAIN, funded(), 2);
    let hash = sha256(&rejected);
    assert_eq!(node.state.submit(rejected.clone()), Ok(hash));
    let receipt = Receipt {
        tx_hash: hash,
        status: ReceiptStatus::Rejected { reason: "bad nonce".into() },
        height: 1,
        index: 0,
        fuel_used: 0,
        events: Vec::new(),
        return_data: Vec::new(),
        contract: None,
    };
    node.state.storage.record_execution(1, Digest::ZERO, &[receipt], &[hash]).expect("recorded");
    node.state.mempool.finalized(&[hash], &[]);
    assert_eq!(node.state.mempool.location(&hash), None);

    assert_eq!(node.state.submit(rejected.clone()), Ok(hash), "submit alone");
    assert_eq!(node.state.submit_many(vec![rejected.clone()]), vec![Ok(hash)], "submit_many");
    assert_eq!(node.state.mempool.queued() + node.state.mempool.held(), 0, "queued again");

    let pending = transfers(0..2);
    assert!(node.state.submit_many(pending).iter().all(Result::is_ok));
    assert!(node.state.submit(transfer(CHAIN, also_funded(), 0)).is_ok());
    assert!(node.state.mempool.check_room().is_err(), "the pool should be full");
    assert_eq!(node.state.submit(rejected), Ok(hash), "to a full pool");
    assert_eq!(node.state.mempool.location(&hash), None);
}

/// A client at its sender limit, with later nonces held for a gap, resends the gap in one
/// request (what `bastion bench` does with transactions answered 429): the whole gap is
/// admitted, as it would be submitted one by one in order, and the held ones are released.
/// Screened against the pool as it stood, only the first nonce of the gap got in per request.
#[tokio::test]
async fn a_batch_resending_a_nonce_gap_at_the_sender_limit_is_admitted_whole() {
    let batched = validator_with_pool(100, 4);
    let alone = validator_with_pool(100, 4);
    // 0 and 1 wait to be batched, 5 and 6 are held: the sender's limit of 4.
    let pending: Vec<Bytes> = [0, 1, 5, 6].into_iter().map(|n| transfer(CHAIN, funded(), n)).collect();
    let gap = transfers(2..5);
    for node in [&batched, &alone] {
        let verdicts = node.state.submit_many(pending.clone());
        assert!(verdicts.iter().all(Result::is_ok), "{verdicts:?}");
        assert_eq!(node.state.mempool.held(), 2);
    }
    let mut request = gap.clone();
    request.push(transfer(CHAIN, funded(), 7));

    let verdicts = batched.state.submit_many(request.clone());
    let one_by_one: Vec<_> = request.iter().map(|tx| alone.state.submit(tx.clone())).collect();
    let admitted: Vec<Result<Digest, ApiError>> = gap.iter().map(|tx| Ok(sha256(tx))).collect();
    assert_eq!(verdicts[..3], admitted[..], "{verdicts:?}");
    assert_eq!(one_by_one[..3], admitted[..], "{one_by_one:?}");
    // Past the gap the limit applies (the batch's refusal says what it found before).
    assert!(is_mempool_full(&verdicts[3]) && is_mempool_full(&one_by_one[3]), "{verdicts:?}");
    assert_eq!(batched.state.mempool.held(), 0, "the gap is closed");
    assert_eq!(batched.state.mempool.queued(), 7);
}

/// A nonce further ahead than the sender's limit is answered 429 (mempool_full), not held:
/// held, it would take the room the nonces below it need.
#[tokio::test]
async fn a_nonce_further_ahead_than_the_sender_limit_is_refused_for_now() {
    let node = validator_with_pool(100, 4);
    let far = node.state.submit(transfer(CHAIN, funded(), 5));
    assert!(is_mempool_full(&far), "{far:?}");
    assert!(node.state.submit(transfer(CHAIN, funded(), 4)).is_ok(), "4 ahead is held");
    assert_eq!(node.state.mempool.held(), 1);
}
