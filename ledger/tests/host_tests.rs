//! The host functions and limits, through a contract that imports every one of them.

mod common;

use bastion_ledger::{Address, ReceiptStatus};
use common::*;

const PROBE_WAT: &str = r#"(module
  (import "env" "input_len" (func $input_len (result i32)))
  (import "env" "input_read" (func $input_read (param i32)))
  (import "env" "storage_get" (func $get (param i32 i32 i32) (result i32)))
  (import "env" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "env" "storage_remove" (func $remove (param i32 i32)))
  (import "env" "caller" (func $caller (param i32)))
  (import "env" "self_address" (func $self (param i32)))
  (import "env" "block_height" (func $height (result i64)))
  (import "env" "emit_event" (func $emit (param i32 i32 i32 i32)))
  (import "env" "transfer" (func $transfer (param i32 i64) (result i32)))
  (import "env" "return_data" (func $ret (param i32 i32)))
  (import "env" "abort" (func $abort (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "echo")
    (call $input_read (i32.const 0))
    (call $ret (i32.const 0) (call $input_len)))
  (func (export "whoami")
    (call $caller (i32.const 0))
    (call $self (i32.const 32))
    (i64.store (i32.const 64) (call $height))
    (call $ret (i32.const 0) (i32.const 72)))
  (func (export "put")
    (call $input_read (i32.const 0))
    (call $set (i32.const 0) (i32.const 1) (i32.const 1) (i32.sub (call $input_len) (i32.const 1))))
  (func (export "del")
    (call $input_read (i32.const 0))
    (call $remove (i32.const 0) (i32.const 1)))
  (func (export "probe")
    (call $input_read (i32.const 0))
    (i32.store (i32.const 100) (call $get (i32.const 0) (i32.const 1) (i32.const 200)))
    (call $ret (i32.const 100) (i32.const 4)))
  (func (export "long_key")
    (call $set (i32.const 0) (i32.const 257) (i32.const 0) (i32.const 1)))
  (func (export "many_events") (local $i i32)
    (loop $l
      (call $emit (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 65)))))
  (func $recurse (export "recurse") (call $recurse))
  (func (export "grow")
    (i32.store (i32.const 0) (memory.grow (i32.const 16)))
    (call $ret (i32.const 0) (i32.const 4))))"#;

fn setup() -> (Chain, Address) {
    let alice = key(1);
    let mut chain = Chain::funded(&[&alice]);
    let b = builder(&alice, 0);
    let receipt = chain.run(b.deploy(wasm(PROBE_WAT), vec![]).unwrap());
    assert_eq!(receipt.status, ReceiptStatus::Ok, "{receipt:?}");
    (chain, b.contract_address())
}

fn call(chain: &mut Chain, contract: Address, method: &str, args: Vec<u8>) -> bastion_ledger::Receipt {
    let alice = key(1);
    let nonce = chain.account(&address(&alice)).nonce;
    chain.run(builder(&alice, nonce).call(contract, method, args).unwrap())
}

fn failure(receipt: &bastion_ledger::Receipt) -> &str {
    match &receipt.status {
        ReceiptStatus::Failed { reason } => reason,
        other => panic!("expected failure, got {other:?}"),
    }
}

#[test]
fn input_round_trips_through_the_contract() {
    let (mut chain, contract) = setup();
    let args: Vec<u8> = (0..=255).collect();
    assert_eq!(call(&mut chain, contract, "echo", args.clone()).return_data, args);
    assert_eq!(chain.view(&contract, "echo", b"view input"), b"view input");
}

#[test]
fn caller_self_and_height_are_what_the_transaction_says() {
    let (mut chain, contract) = setup();
    let receipt = call(&mut chain, contract, "whoami", vec![]);
    let data = receipt.return_data;
    assert_eq!(&data[..32], &address(&key(1)).0);
    assert_eq!(&data[32..64], &contract.0);
    assert_eq!(u64::from_le_bytes(data[64..].try_into().unwrap()), receipt.height);

    let view = chain.exec.query().view(&contract, "whoami", &[], 1).unwrap();
    assert_eq!(&view.return_data[..32], &Address::ZERO.0, "a view has no caller");
    assert_eq!(u64::from_le_bytes(view.return_data[64..].try_into().unwrap()), 1);
}

#[test]
fn storage_set_get_remove() {
    let (mut chain, contract) = setup();
    let probe = |chain: &Chain| i32::from_le_bytes(chain.view(&contract, "probe", b"k").try_into().unwrap());
    assert_eq!(probe(&chain), -1);
    call(&mut chain, contract, "put", b"kvalue".to_vec());
    assert_eq!(probe(&chain), 5);
    assert_eq!(
        chain.exec.query().storage(&contract, b"k", chain.exec.height()).unwrap(),
        Some(b"value".to_vec())
    );
    call(&mut chain, contract, "del", b"k".to_vec());
    assert_eq!(probe(&chain), -1);
    assert_eq!(chain.exec.query().storage(&contract, b"k", chain.exec.height()).unwrap(), None);
}

#[test]
fn limits_fail_the_call_deterministically() {
    let (mut chain, contract) = setup();
    assert_eq!(
        failure(&call(&mut chain, contract, "long_key", vec![])),
        "storage key is longer than 256 bytes"
    );
    assert_eq!(failure(&call(&mut chain, contract, "many_events", vec![])), "more than 64 events");
    assert_eq!(failure(&call(&mut chain, contract, "recurse", vec![])), "trap: call stack exhausted");
    let grown = call(&mut chain, contract, "grow", vec![]);
    assert_eq!(grown.return_data, (-1i32).to_le_bytes(), "memory cannot grow past 16 pages");
}

#[test]
fn fuel_use_is_reproducible_and_counts_host_work() {
    let (mut chain, contract) = setup();
    let small = call(&mut chain, contract, "echo", vec![0; 10]).fuel_used;
    let again = call(&mut chain, contract, "echo", vec![0; 10]).fuel_used;
    let large = call(&mut chain, contract, "echo", vec![0; 10_000]).fuel_used;
    assert_eq!(small, again, "the same call costs the same fuel (module cache or not)");
    assert!(large > small + 10_000, "copying bytes costs fuel: {small} vs {large}");
}
