//! Transaction rules at execution: nonces, expiry, fees, transfers, heights, genesis.

mod common;

use std::sync::Arc;

use bastion_ledger::fuel::{FUEL_PRICE, TRANSFER_FUEL};
use bastion_ledger::{
    Address, Executor, ExecutorConfig, Genesis, GenesisError, LedgerError, MemoryStore, ReceiptStatus,
};
use common::*;

fn rejected(status: &ReceiptStatus) -> &str {
    match status {
        ReceiptStatus::Rejected { reason } => reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn transfer_moves_funds_and_charges_the_fixed_fee() {
    let (alice, bob) = (key(1), key(2));
    let mut chain = Chain::funded(&[&alice]);
    let receipt = chain.run(builder(&alice, 0).transfer(address(&bob), 500).unwrap());
    assert_eq!(receipt.status, ReceiptStatus::Ok);
    assert_eq!(receipt.status.as_str(), "committed_ok");
    assert_eq!(receipt.fuel_used, TRANSFER_FUEL);
    assert_eq!(receipt.height, 1);
    assert_eq!(receipt.index, 0);
    let a = chain.account(&address(&alice));
    assert_eq!(a.balance, FUNDS - 500 - TRANSFER_FUEL * FUEL_PRICE);
    assert_eq!(a.nonce, 1);
    assert_eq!(chain.account(&address(&bob)).balance, 500);
}

#[test]
fn wrong_nonce_is_rejected_without_any_state_change() {
    let (alice, bob) = (key(1), key(2));
    let mut chain = Chain::funded(&[&alice]);
    let root = chain.exec.state_root();
    let gap = chain.run(builder(&alice, 1).transfer(address(&bob), 5).unwrap());
    assert_eq!(rejected(&gap.status), "bad nonce");
    assert_eq!(gap.status.as_str(), "rejected");
    assert_eq!(gap.fuel_used, 0);
    assert_eq!(chain.exec.state_root(), root, "a rejected transaction changes nothing");

    chain.run(builder(&alice, 0).transfer(address(&bob), 5).unwrap());
    let root = chain.exec.state_root();
    let replay = chain.run(builder(&alice, 0).transfer(address(&bob), 5).unwrap());
    assert_eq!(rejected(&replay.status), "bad nonce");
    assert_eq!(chain.exec.state_root(), root);
    assert_eq!(chain.account(&address(&bob)).balance, 5);
}

#[test]
fn duplicate_in_one_block_executes_once() {
    let (alice, bob) = (key(1), key(2));
    let mut chain = Chain::funded(&[&alice]);
    let tx = builder(&alice, 0).transfer(address(&bob), 7).unwrap();
    let outcome = chain.block(vec![tx.clone(), tx]);
    assert_eq!(outcome.receipts[0].status, ReceiptStatus::Ok);
    assert_eq!(rejected(&outcome.receipts[1].status), "bad nonce");
    assert_eq!(outcome.receipts[0].tx_hash, outcome.receipts[1].tx_hash);
    assert_eq!(outcome.receipts[1].index, 1);
    assert_eq!(chain.account(&address(&bob)).balance, 7);
}

#[test]
fn consecutive_nonces_in_one_block_all_execute() {
    let (alice, bob) = (key(1), key(2));
    let mut chain = Chain::funded(&[&alice]);
    let txs = (0..5).map(|n| builder(&alice, n).transfer(address(&bob), 1).unwrap()).collect();
    let outcome = chain.block(txs);
    assert!(outcome.receipts.iter().all(|r| r.status.is_ok()));
    assert_eq!(chain.account(&address(&bob)).balance, 5);
    assert_eq!(chain.account(&address(&alice)).nonce, 5);
}

#[test]
fn expiry_is_inclusive_of_the_expiry_height() {
    let (alice, bob) = (key(1), key(2));
    let mut chain = Chain::funded(&[&alice]);
    chain.block(vec![]); // height 1
    let expired = chain.run(builder(&alice, 0).expiry_height(1).transfer(address(&bob), 1).unwrap());
    assert_eq!(expired.height, 2);
    assert_eq!(rejected(&expired.status), "expired");
    let last_chance = chain.run(builder(&alice, 0).expiry_height(3).transfer(address(&bob), 1).unwrap());
    assert_eq!(last_chance.height, 3);
    assert_eq!(last_chance.status, ReceiptStatus::Ok);
}

#[test]
fn sender_who_cannot_pay_the_maximum_fee_is_rejected() {
    let (poor, bob) = (key(3), key(2));
    let mut chain = Chain::new(&[(address(&poor), 5_000)]);
    let root = chain.exec.state_root();
    let too_costly = chain.run(builder(&poor, 0).fuel_limit(5_001).transfer(address(&bob), 1).unwrap());
    assert_eq!(rejected(&too_costly.status), "insufficient balance for fees");
    let unknown = chain.run(builder(&bob, 0).fuel_limit(TRANSFER_FUEL).transfer(address(&poor), 1).unwrap());
    assert_eq!(
        rejected(&unknown.status),
        "insufficient balance for fees",
        "an unfunded account pays nothing"
    );
    assert_eq!(chain.exec.state_root(), root);

    // Exactly affordable: the fee is reserved first, so the amount must fit after it.
    let overspend = chain.run(builder(&poor, 0).fuel_limit(5_000).transfer(address(&bob), 1).unwrap());
    assert_eq!(overspend.status, ReceiptStatus::Failed { reason: "insufficient balance".into() });
    assert_eq!(chain.account(&address(&poor)).balance, 5_000 - TRANSFER_FUEL);
    assert_eq!(chain.account(&address(&poor)).nonce, 1);
    assert_eq!(chain.account(&address(&bob)).balance, 0);
}

#[test]
fn unused_fuel_is_refunded() {
    let (alice, bob) = (key(1), key(2));
    let mut chain = Chain::funded(&[&alice]);
    chain.run(builder(&alice, 0).fuel_limit(1_000_000).transfer(address(&bob), 10).unwrap());
    assert_eq!(chain.account(&address(&alice)).balance, FUNDS - 10 - TRANSFER_FUEL * FUEL_PRICE);
}

#[test]
fn heights_must_be_consecutive() {
    let mut chain = Chain::funded(&[]);
    let err = chain.exec.apply_block(2, &[]).unwrap_err();
    assert_eq!(err, LedgerError::HeightMismatch { expected: 1, actual: 2 });
    chain.exec.apply_block(1, &[]).unwrap();
    let err = chain.exec.apply_block(1, &[]).unwrap_err();
    assert_eq!(err, LedgerError::HeightMismatch { expected: 2, actual: 1 });
}

#[test]
fn executor_reopens_where_it_stopped() {
    let (alice, bob) = (key(1), key(2));
    let store = Arc::new(MemoryStore::new());
    let genesis = genesis(&[(address(&alice), FUNDS)]);
    let mut exec = Executor::genesis(store.clone(), &genesis, ExecutorConfig::default()).unwrap();
    assert_eq!(exec.state_root(), genesis.state_root().unwrap(), "genesis root is computable offline");
    let tx = verified(builder(&alice, 0).transfer(address(&bob), 3).unwrap());
    let outcome = exec.apply_block(1, &[tx]).unwrap();
    drop(exec);

    let reopened = Executor::open(store.clone(), ExecutorConfig::default()).unwrap();
    assert_eq!(reopened.height(), 1);
    assert_eq!(reopened.state_root(), outcome.state_root);
    let again = Executor::genesis(store, &genesis, ExecutorConfig::default());
    assert!(matches!(again, Err(LedgerError::AlreadyInitialized)));
    let empty = Executor::open(Arc::new(MemoryStore::new()), ExecutorConfig::default());
    assert!(matches!(empty, Err(LedgerError::NotInitialized)));
}

#[test]
fn genesis_root_ignores_account_order_and_validates() {
    let a = (Address([1; 32]), 10);
    let b = (Address([2; 32]), 20);
    assert_eq!(genesis(&[a, b]).state_root().unwrap(), genesis(&[b, a]).state_root().unwrap());
    assert_ne!(genesis(&[a, b]).state_root().unwrap(), genesis(&[a]).state_root().unwrap());
    assert_ne!(genesis(&[a, b]).hash().unwrap(), genesis(&[b, a]).hash().unwrap());

    assert_eq!(genesis(&[a, a]).validate(), Err(GenesisError::DuplicateAccount(a.0.to_hex())));
    let overflow = genesis(&[(Address([1; 32]), u64::MAX), (Address([2; 32]), 1)]);
    assert_eq!(overflow.validate(), Err(GenesisError::SupplyOverflow));
    let no_validators = Genesis { validators: vec![], ..genesis(&[a]) };
    assert_eq!(no_validators.validate(), Err(GenesisError::NoValidators));
    let store = Arc::new(MemoryStore::new());
    assert!(Executor::genesis(store, &overflow, ExecutorConfig::default()).is_err());
}

#[test]
fn execute_then_commit_equals_apply() {
    let (alice, bob) = (key(1), key(2));
    let mut split = Chain::funded(&[&alice]);
    let mut whole = Chain::funded(&[&alice]);
    let tx = verified(builder(&alice, 0).transfer(address(&bob), 3).unwrap());
    let executed = split.exec.execute_block(1, std::slice::from_ref(&tx)).unwrap();
    assert_eq!(split.exec.height(), 0, "execute_block writes nothing");
    let outcome = split.exec.commit(executed).unwrap();
    assert_eq!(outcome, whole.exec.apply_block(1, &[tx]).unwrap());
}
