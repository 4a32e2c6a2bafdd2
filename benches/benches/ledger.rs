//! Ledger hot paths: how fast the executor applies a block of 1000 transactions over an
//! in-memory store (no consensus, no network, no disk).
//!
//! * `ledger/transfers`: native transfers among 100 funded accounts (few distinct keys).
//! * `ledger/counter_increment`: calls of the example counter contract (one storage key).
//! * `ledger/state_root`: 1000 transfers from 1000 senders to 1000 fresh recipients, so the
//!   block writes ~2000 distinct keys and the Jellyfish tree update dominates.
//!
//! Signing and admission happen once, outside the timing; each iteration starts from a
//! fresh executor (genesis, plus the deploy for the counter) built in untimed setup, so
//! every iteration applies the same block to the same state.

use std::sync::Arc;

use bastion_crypto::{DigestBuilder, KeyPair};
use bastion_ledger::{
    admit, compile_wat, Address, Executor, ExecutorConfig, Genesis, MemoryStore, SignedTransaction,
    TransactionBuilder, VerifiedTransaction,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const CHAIN: &str = "bench";
const FUNDS: u64 = 1_000_000_000_000;
const BLOCK: usize = 1000;
const COUNTER_WAT: &str = include_str!("../../examples/contracts/counter.wat");

fn keys(label: &str, n: usize) -> Vec<KeyPair> {
    (0..n).map(|i| KeyPair::from_seed(DigestBuilder::new(label).u64(i as u64).finish().0)).collect()
}

fn address(key: &KeyPair) -> Address {
    Address::from_public_key(&key.public())
}

fn builder(key: &KeyPair, nonce: u64) -> TransactionBuilder {
    TransactionBuilder::new(CHAIN, key.clone()).nonce(nonce)
}

/// Admits through the same byte path the node uses for submitted transactions.
fn admitted(signed: SignedTransaction) -> VerifiedTransaction {
    admit(&signed.to_bytes().expect("encodes"), CHAIN).expect("bench transactions are well formed")
}

fn executor(funded: &[KeyPair]) -> Executor<MemoryStore> {
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        accounts: funded.iter().map(|k| (address(k), FUNDS)).collect(),
        validators: vec![keys("bench/validator", 1)[0].public()],
    };
    Executor::genesis(Arc::new(MemoryStore::new()), &genesis, ExecutorConfig::default()).expect("genesis")
}

/// Applies `txs` as block 1 of a fresh chain and checks every transaction succeeded, so
/// the bench cannot silently measure rejections.
fn assert_all_ok(funded: &[KeyPair], prefix: &[VerifiedTransaction], txs: &[VerifiedTransaction]) {
    let mut exec = executor(funded);
    if !prefix.is_empty() {
        exec.apply_block(1, prefix).expect("prefix applies");
    }
    let outcome = exec.apply_block(exec.height() + 1, txs).expect("block applies");
    assert!(outcome.receipts.iter().all(|r| r.status.is_ok()), "a bench transaction failed");
}

fn transfers(c: &mut Criterion) {
    let senders = keys("bench/sender", 100);
    let addresses: Vec<Address> = senders.iter().map(address).collect();
    let per_sender = (BLOCK / senders.len()) as u64;
    let txs: Vec<VerifiedTransaction> = (0..per_sender)
        .flat_map(|nonce| {
            let (senders, addresses) = (&senders, &addresses);
            senders.iter().enumerate().map(move |(i, key)| {
                let to = addresses[(i + 1) % addresses.len()];
                admitted(builder(key, nonce).transfer(to, 1).expect("builds"))
            })
        })
        .collect();
    assert_all_ok(&senders, &[], &txs);

    bench_block(c, "transfers", &senders, &txs, txs.len() as u64);
}

/// Times `apply_block` of `txs` at height 1 on a fresh state funding `senders`, per block;
/// `elements` is what one block counts as (transactions, or keys written).
fn bench_block(
    c: &mut Criterion,
    name: &str,
    senders: &[KeyPair],
    txs: &[VerifiedTransaction],
    elements: u64,
) {
    let mut group = c.benchmark_group("ledger");
    group.sample_size(10);
    group.throughput(Throughput::Elements(elements));
    group.bench_function(name, |b| {
        b.iter_batched(
            || (executor(senders), txs.to_vec()),
            |(mut exec, txs)| {
                let outcome = exec.apply_block(1, &txs).expect("block applies");
                (exec, outcome)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn counter_increments(c: &mut Criterion) {
    let callers = keys("bench/caller", 100);
    let deployer = keys("bench/deployer", 1).remove(0);
    let mut funded = callers.clone();
    funded.push(deployer.clone());
    let deploy = builder(&deployer, 0);
    let counter = deploy.contract_address();
    let code = compile_wat(COUNTER_WAT).expect("counter.wat compiles");
    let deploy = vec![admitted(deploy.deploy(code, Vec::new()).expect("builds"))];
    let per_caller = (BLOCK / callers.len()) as u64;
    let calls: Vec<VerifiedTransaction> = (0..per_caller)
        .flat_map(|nonce| {
            let callers = &callers;
            callers.iter().map(move |key| {
                admitted(builder(key, nonce).call(counter, "increment", Vec::new()).expect("builds"))
            })
        })
        .collect();
    assert_all_ok(&funded, &deploy, &calls);

    let mut group = c.benchmark_group("ledger");
    group.sample_size(10);
    group.throughput(Throughput::Elements(calls.len() as u64));
    group.bench_function("counter_increment", |b| {
        b.iter_batched(
            || {
                let mut exec = executor(&funded);
                exec.apply_block(1, &deploy).expect("deploy applies");
                (exec, calls.clone())
            },
            |(mut exec, calls)| {
                let outcome = exec.apply_block(2, &calls).expect("block applies");
                (exec, outcome)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn state_root(c: &mut Criterion) {
    let senders = keys("bench/root-sender", BLOCK);
    let recipients = keys("bench/root-recipient", BLOCK);
    let txs: Vec<VerifiedTransaction> = senders
        .iter()
        .zip(&recipients)
        .map(|(from, to)| admitted(builder(from, 0).transfer(address(to), 1).expect("builds")))
        .collect();
    assert_all_ok(&senders, &[], &txs);

    // One element per distinct key written: each sender's account and each new recipient.
    bench_block(c, "state_root", &senders, &txs, 2 * txs.len() as u64);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = transfers, counter_increments, state_root
}
criterion_main!(benches);
