//! Contracts end to end: deploy, call, view, failure and revert semantics, deploy checks.

mod common;

use bastion_ledger::fuel::FUEL_PRICE;
use bastion_ledger::{Address, AdmissionError, LedgerError, ReceiptStatus};
use common::*;

fn u64_le(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

fn failed_reason(status: &ReceiptStatus) -> String {
    match status {
        ReceiptStatus::Failed { reason } => reason.clone(),
        other => panic!("expected a failed receipt, got {other:?}"),
    }
}

/// Deploys `wat` from `key` at `nonce` and returns the contract address.
fn deploy(chain: &mut Chain, key: &bastion_crypto::KeyPair, nonce: u64, wat: &str, init: Vec<u8>) -> Address {
    let b = builder(key, nonce);
    let receipt = chain.run(b.deploy(wasm(wat), init).unwrap());
    assert_eq!(receipt.status, ReceiptStatus::Ok, "deploy failed: {receipt:?}");
    assert_eq!(receipt.contract, Some(b.contract_address()));
    b.contract_address()
}

#[test]
fn counter_increments_three_times() {
    let alice = key(1);
    let mut chain = Chain::funded(&[&alice]);
    let counter = deploy(&mut chain, &alice, 0, COUNTER_WAT, vec![]);
    assert_eq!(chain.view(&counter, "get", &[]), 0u64.to_le_bytes());

    for nonce in 1..=3 {
        let receipt = chain.run(builder(&alice, nonce).call(counter, "increment", vec![]).unwrap());
        assert_eq!(receipt.status, ReceiptStatus::Ok);
    }
    assert_eq!(chain.view(&counter, "get", &[]), 3u64.to_le_bytes());
    assert_eq!(chain.account(&address(&alice)).nonce, 4);

    let receipt = chain.run(builder(&alice, 4).call(counter, "get", vec![]).unwrap());
    assert_eq!(receipt.return_data, 3u64.to_le_bytes(), "a call returns data in its receipt");
}

#[test]
fn views_at_older_heights_see_older_state() {
    let alice = key(1);
    let mut chain = Chain::funded(&[&alice]);
    let counter = deploy(&mut chain, &alice, 0, COUNTER_WAT, vec![]);
    let before = chain.exec.height();
    chain.run(builder(&alice, 1).call(counter, "increment", vec![]).unwrap());
    let query = chain.exec.query();
    assert_eq!(query.view(&counter, "get", &[], before).unwrap().return_data, 0u64.to_le_bytes());
    assert_eq!(query.view(&counter, "get", &[], before + 1).unwrap().return_data, 1u64.to_le_bytes());
}

#[test]
fn view_cannot_write_and_leaves_state_alone() {
    let alice = key(1);
    let mut chain = Chain::funded(&[&alice]);
    let counter = deploy(&mut chain, &alice, 0, COUNTER_WAT, vec![]);
    let err = chain.exec.query().view(&counter, "increment", &[], chain.exec.height()).unwrap_err();
    assert!(
        matches!(&err, LedgerError::ViewFailed(reason) if reason.contains("view cannot modify")),
        "{err}"
    );
    assert_eq!(chain.view(&counter, "get", &[]), 0u64.to_le_bytes());
    let missing = chain.exec.query().view(&Address([9; 32]), "get", &[], chain.exec.height()).unwrap_err();
    assert!(matches!(missing, LedgerError::NoContract(_)));
}

fn token_transfer_args(to: &Address, amount: u64) -> Vec<u8> {
    let mut args = to.0.to_vec();
    args.extend_from_slice(&amount.to_le_bytes());
    args
}

#[test]
fn token_mints_transfers_and_reports_balances() {
    let (alice, bob) = (key(1), key(2));
    let mut chain = Chain::funded(&[&alice, &bob]);
    let token = deploy(&mut chain, &alice, 0, TOKEN_WAT, 1_000u64.to_le_bytes().to_vec());
    let balance = |chain: &Chain, who: &Address| u64_le(&chain.view(&token, "balance_of", &who.0));
    assert_eq!(balance(&chain, &address(&alice)), 1_000);
    assert_eq!(balance(&chain, &address(&bob)), 0);
    assert_eq!(u64_le(&chain.view(&token, "total_supply", &[])), 1_000);

    let args = token_transfer_args(&address(&bob), 250);
    let receipt = chain.run(builder(&alice, 1).call(token, "transfer", args).unwrap());
    assert_eq!(receipt.status, ReceiptStatus::Ok);
    assert_eq!(receipt.events.len(), 1);
    let event = &receipt.events[0];
    assert_eq!(event.contract, token);
    assert_eq!(event.topic, b"transfer");
    let mut data = address(&alice).0.to_vec();
    data.extend_from_slice(&token_transfer_args(&address(&bob), 250));
    assert_eq!(event.data, data);
    assert_eq!(balance(&chain, &address(&alice)), 750);
    assert_eq!(balance(&chain, &address(&bob)), 250);

    // Bob sends some back, so the token works for any holder, not just the deployer.
    let receipt = chain
        .run(builder(&bob, 0).call(token, "transfer", token_transfer_args(&address(&alice), 50)).unwrap());
    assert_eq!(receipt.status, ReceiptStatus::Ok);
    assert_eq!(balance(&chain, &address(&alice)), 800);
    assert_eq!(balance(&chain, &address(&bob)), 200);
}

#[test]
fn token_insufficient_balance_aborts_with_message_and_reverts() {
    let (alice, bob) = (key(1), key(2));
    let mut chain = Chain::funded(&[&alice, &bob]);
    let token = deploy(&mut chain, &alice, 0, TOKEN_WAT, 100u64.to_le_bytes().to_vec());
    let root_before = chain.exec.state_root();
    let bob_native = chain.account(&address(&bob)).balance;

    let receipt = chain
        .run(builder(&bob, 0).call(token, "transfer", token_transfer_args(&address(&alice), 1)).unwrap());
    assert_eq!(failed_reason(&receipt.status), "aborted: insufficient balance");
    assert!(receipt.events.is_empty(), "a failed call's events are dropped");
    assert!(receipt.fuel_used > 0);
    let bob_after = chain.account(&address(&bob));
    assert_eq!(bob_after.balance, bob_native - receipt.fuel_used * FUEL_PRICE, "fee charged");
    assert_eq!(bob_after.nonce, 1, "nonce advanced");
    assert_eq!(u64_le(&chain.view(&token, "balance_of", &address(&alice).0)), 100);
    assert_eq!(u64_le(&chain.view(&token, "balance_of", &address(&bob).0)), 0);
    assert_ne!(chain.exec.state_root(), root_before, "fee and nonce changed the state");
}

#[test]
fn infinite_loop_runs_out_of_fuel_and_pays_for_all_of_it() {
    let alice = key(1);
    let mut chain = Chain::funded(&[&alice]);
    let looping = deploy(
        &mut chain,
        &alice,
        0,
        r#"(module (memory (export "memory") 1) (func (export "spin") (loop $l (br $l))))"#,
        vec![],
    );
    let before = chain.account(&address(&alice));
    let fuel_limit = 200_000;
    let receipt = chain.run(builder(&alice, 1).fuel_limit(fuel_limit).call(looping, "spin", vec![]).unwrap());
    assert_eq!(failed_reason(&receipt.status), "out of fuel");
    assert_eq!(receipt.fuel_used, fuel_limit);
    let after = chain.account(&address(&alice));
    assert_eq!(after.balance, before.balance - fuel_limit * FUEL_PRICE);
    assert_eq!(after.nonce, before.nonce + 1);
}

#[test]
fn trapping_contract_fails_and_reverts_its_writes() {
    let alice = key(1);
    let mut chain = Chain::funded(&[&alice]);
    let wat = r#"(module
        (import "env" "storage_set" (func $set (param i32 i32 i32 i32)))
        (memory (export "memory") 1)
        (func (export "boom")
            (call $set (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1))
            unreachable))"#;
    let contract = deploy(&mut chain, &alice, 0, wat, vec![]);
    let receipt = chain.run(builder(&alice, 1).call(contract, "boom", vec![]).unwrap());
    let reason = failed_reason(&receipt.status);
    assert!(reason.starts_with("trap: ") && reason.contains("unreachable"), "{reason}");
    assert!(receipt.fuel_used > 0 && receipt.fuel_used < bastion_ledger::fuel::DEFAULT_FUEL_LIMIT);
    let stored = chain.exec.query().storage(&contract, &[0], chain.exec.height()).unwrap();
    assert_eq!(stored, None, "the write before the trap was reverted");
}

#[test]
fn bad_guest_pointer_traps_instead_of_reading_outside_memory() {
    let alice = key(1);
    let mut chain = Chain::funded(&[&alice]);
    let wat = r#"(module
        (import "env" "return_data" (func $ret (param i32 i32)))
        (memory (export "memory") 1)
        (func (export "peek") (call $ret (i32.const 65530) (i32.const 100))))"#;
    let contract = deploy(&mut chain, &alice, 0, wat, vec![]);
    let receipt = chain.run(builder(&alice, 1).call(contract, "peek", vec![]).unwrap());
    assert_eq!(failed_reason(&receipt.status), "memory access out of bounds");
}

#[test]
fn failing_call_leaves_other_contracts_untouched() {
    let alice = key(1);
    let mut chain = Chain::funded(&[&alice]);
    let counter = deploy(&mut chain, &alice, 0, COUNTER_WAT, vec![]);
    let token = deploy(&mut chain, &alice, 1, TOKEN_WAT, 10u64.to_le_bytes().to_vec());
    chain.run(builder(&alice, 2).call(counter, "increment", vec![]).unwrap());

    // In one block: a successful increment, then a failing token transfer.
    let outcome = chain.block(vec![
        builder(&alice, 3).call(counter, "increment", vec![]).unwrap(),
        builder(&alice, 4).call(token, "transfer", token_transfer_args(&Address([5; 32]), 11)).unwrap(),
    ]);
    assert_eq!(outcome.receipts[0].status, ReceiptStatus::Ok);
    assert_eq!(failed_reason(&outcome.receipts[1].status), "aborted: insufficient balance");
    assert_eq!(chain.view(&counter, "get", &[]), 2u64.to_le_bytes());
    assert_eq!(u64_le(&chain.view(&token, "balance_of", &address(&alice).0)), 10);
}

#[test]
fn deploy_with_failing_init_creates_nothing() {
    let alice = key(1);
    let mut chain = Chain::funded(&[&alice]);
    let b = builder(&alice, 0);
    // token.wat's init aborts unless given exactly 8 bytes.
    let receipt = chain.run(b.deploy(wasm(TOKEN_WAT), vec![1, 2, 3]).unwrap());
    assert_eq!(failed_reason(&receipt.status), "aborted: bad input length");
    assert_eq!(receipt.contract, None);
    let contract = b.contract_address();
    assert!(!chain.account(&contract).is_contract());
    assert_eq!(chain.exec.query().code(&contract, chain.exec.height()).unwrap(), None);
}

fn deploy_failure(wat_or_code: Vec<u8>) -> String {
    let alice = key(1);
    let mut chain = Chain::funded(&[&alice]);
    let before = chain.account(&address(&alice));
    let receipt = chain.run(builder(&alice, 0).deploy(wat_or_code, vec![]).unwrap());
    let after = chain.account(&address(&alice));
    assert_eq!(after.nonce, 1, "a refused deploy still advances the nonce");
    assert_eq!(after.balance, before.balance - receipt.fuel_used * FUEL_PRICE);
    failed_reason(&receipt.status)
}

#[test]
fn deploy_rejects_float_instructions() {
    let reason = deploy_failure(wasm(
        r#"(module (memory (export "memory") 1)
            (func (export "f") (drop (f64.add (f64.const 1) (f64.const 2)))))"#,
    ));
    assert!(reason.starts_with("invalid contract: module does not validate"), "{reason}");
}

#[test]
fn deploy_rejects_forbidden_imports() {
    let wasi = deploy_failure(wasm(
        r#"(module (import "wasi" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1))"#,
    ));
    assert_eq!(wasi, "invalid contract: forbidden import wasi::fd_write");
    let unknown = deploy_failure(wasm(
        r#"(module (import "env" "clock" (func (result i64))) (memory (export "memory") 1))"#,
    ));
    assert_eq!(unknown, "invalid contract: forbidden import env::clock");
    let wrong_type = deploy_failure(wasm(
        r#"(module (import "env" "block_height" (func (result i32))) (memory (export "memory") 1))"#,
    ));
    assert_eq!(wrong_type, "invalid contract: import block_height has the wrong type");
}

#[test]
fn oversized_code_is_refused_before_execution() {
    // A valid module padded with a custom section past the size limit.
    let mut big = wasm(r#"(module (memory (export "memory") 1))"#);
    let payload = vec![0u8; bastion_ledger::codec::MAX_CODE_BYTES];
    big.push(0); // custom section id
    let mut size = (payload.len() + 2) as u32; // name length byte + name + payload
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        big.push(if size == 0 { byte } else { byte | 0x80 });
        if size == 0 {
            break;
        }
    }
    big.extend_from_slice(&[1, b'x']);
    big.extend_from_slice(&payload);
    let size = big.len();
    let signed = builder(&key(1), 0).deploy(big, vec![]).unwrap();
    let err = bastion_ledger::admit_signed(signed, CHAIN).unwrap_err();
    assert_eq!(err, AdmissionError::CodeTooLarge { size, max: bastion_ledger::codec::MAX_CODE_BYTES });
    assert_eq!(err.code(), "too_large");
}

#[test]
fn deploy_rejects_bad_module_shapes() {
    assert_eq!(
        deploy_failure(b"(module)".to_vec()),
        "invalid contract: code is not a binary WebAssembly module"
    );
    assert_eq!(
        deploy_failure(wasm("(module)")),
        "invalid contract: module must export its memory as \"memory\""
    );
    let too_much_memory = deploy_failure(wasm(r#"(module (memory (export "memory") 17))"#));
    assert!(too_much_memory.contains("17 pages"), "{too_much_memory}");
    let params =
        deploy_failure(wasm(r#"(module (memory (export "memory") 1) (func (export "f") (param i32)))"#));
    assert!(params.contains("must take no parameters"), "{params}");
}

#[test]
fn calls_to_missing_methods_contracts_and_init_fail() {
    let alice = key(1);
    let mut chain = Chain::funded(&[&alice]);
    let counter = deploy(&mut chain, &alice, 0, COUNTER_WAT, vec![]);
    let missing = chain.run(builder(&alice, 1).call(counter, "nope", vec![]).unwrap());
    assert_eq!(failed_reason(&missing.status), "no method \"nope\"");
    let init = chain.run(builder(&alice, 2).call(counter, "init", vec![]).unwrap());
    assert_eq!(failed_reason(&init.status), "init runs only at deploy");
    let nobody = Address([7; 32]);
    let no_contract = chain.run(builder(&alice, 3).call(nobody, "get", vec![]).unwrap());
    assert_eq!(failed_reason(&no_contract.status), format!("no contract at {nobody}"));
    assert_eq!(chain.account(&address(&alice)).nonce, 4);
}

#[test]
fn contract_can_pay_out_its_native_balance() {
    let alice = key(1);
    let mut chain = Chain::funded(&[&alice]);
    let wat = r#"(module
        (import "env" "transfer" (func $transfer (param i32 i64) (result i32)))
        (import "env" "caller" (func $caller (param i32)))
        (import "env" "return_data" (func $ret (param i32 i32)))
        (memory (export "memory") 1)
        (func (export "pay")
            (call $caller (i32.const 0))
            (i32.store (i32.const 64) (call $transfer (i32.const 0) (i64.const 400)))
            (call $ret (i32.const 64) (i32.const 4))))"#;
    let contract = deploy(&mut chain, &alice, 0, wat, vec![]);
    chain.run(builder(&alice, 1).transfer(contract, 1_000).unwrap());
    let receipt = chain.run(builder(&alice, 2).call(contract, "pay", vec![]).unwrap());
    assert_eq!(receipt.return_data, 0u32.to_le_bytes());
    assert_eq!(chain.account(&contract).balance, 600);
    let receipt = chain.run(builder(&alice, 3).call(contract, "pay", vec![]).unwrap());
    assert_eq!(receipt.return_data, 0u32.to_le_bytes());
    let receipt = chain.run(builder(&alice, 4).call(contract, "pay", vec![]).unwrap());
    assert_eq!(receipt.return_data, 1u32.to_le_bytes(), "insufficient contract balance is reported");
    assert_eq!(chain.account(&contract).balance, 200);
    assert!(chain.exec.query().code(&contract, chain.exec.height()).unwrap().is_some());
}
