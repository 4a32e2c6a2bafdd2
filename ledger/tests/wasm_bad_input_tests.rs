//! Malformed and hostile WebAssembly: every module is refused at deploy with a failed
//! receipt, or deploys and then fails its calls cleanly — never a panic, never a stuck
//! validator. Complements `contract_tests` (floats, imports, shapes, code size, 17 pages)
//! and `host_tests` (plain recursion, memory growth) with forged section lengths, huge
//! local counts, deep nesting, memory64, oversized tables, indirect recursion, and a fuzz
//! target over mutated modules (`fuzz_wasm_deploy`; see `fuzz/harness.rs`).

#[path = "../../fuzz/harness.rs"]
mod harness;

mod common;

use std::cell::RefCell;

use bastion_ledger::{Address, Receipt, ReceiptStatus};
use common::*;

const HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

/// A module with one `() -> ()` function whose body declares `locals` (LEB128 bytes) of
/// type i64, and an exported memory of one page.
fn module_with_locals(locals_leb: &[u8]) -> Vec<u8> {
    let mut body = vec![0x01];
    body.extend_from_slice(locals_leb);
    body.extend_from_slice(&[0x7e, 0x0b]);
    let mut code = vec![0x01, body.len() as u8];
    code.extend_from_slice(&body);
    let mut module = HEADER.to_vec();
    module.extend_from_slice(&[0x01, 0x04, 0x01, 0x60, 0x00, 0x00]); // type: () -> ()
    module.extend_from_slice(&[0x03, 0x02, 0x01, 0x00]); // one function of type 0
    module.extend_from_slice(&[0x05, 0x03, 0x01, 0x00, 0x01]); // memory, min 1 page
    module.extend_from_slice(&[0x07, 0x0a, 0x01, 0x06]);
    module.extend_from_slice(b"memory");
    module.extend_from_slice(&[0x02, 0x00]);
    module.push(0x0a);
    module.push(code.len() as u8);
    module.extend_from_slice(&code);
    module
}

fn status_reason(receipt: &Receipt) -> Option<&str> {
    match &receipt.status {
        ReceiptStatus::Ok => None,
        ReceiptStatus::Failed { reason } => Some(reason),
        other => panic!("unexpected receipt status {other:?}"),
    }
}

/// Deploys `code` on a fresh chain: the receipt and the contract address.
fn deploy(code: Vec<u8>) -> (Chain, Receipt, Address) {
    let alice = key(1);
    let mut chain = Chain::funded(&[&alice]);
    let b = builder(&alice, 0);
    let receipt = chain.run(b.deploy(code, vec![]).expect("deploy tx"));
    (chain, receipt, b.contract_address())
}

fn refused(code: Vec<u8>) -> String {
    let (chain, receipt, contract) = deploy(code);
    assert!(receipt.contract.is_none() && !chain.account(&contract).is_contract(), "{receipt:?}");
    status_reason(&receipt).expect("the deploy fails").to_string()
}

#[test]
fn forged_section_lengths_and_local_counts_are_refused() {
    let mut huge_section = HEADER.to_vec();
    huge_section.extend_from_slice(&[0x01, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    let (reason, peak) = harness::largest_allocation(|| refused(huge_section));
    assert!(reason.starts_with("invalid contract"), "{reason}");
    assert!(peak < 64 << 20, "a 4 GiB section claim allocated {peak} bytes");

    // The builder itself is sound: a function with one local deploys.
    let (_, receipt, _) = deploy(module_with_locals(&[0x01]));
    assert_eq!(receipt.status, ReceiptStatus::Ok, "{receipt:?}");
    for locals in [&[0xff, 0xff, 0xff, 0xff, 0x0f][..], &[0x80, 0x80, 0x80, 0x80, 0x04]] {
        let (reason, peak) = harness::largest_allocation(|| refused(module_with_locals(locals)));
        assert!(reason.starts_with("invalid contract"), "{reason}");
        assert!(peak < 64 << 20, "a forged local count allocated {peak} bytes");
    }
    let truncated = wasm(COUNTER_WAT);
    let reason = refused(truncated[..truncated.len() / 2].to_vec());
    assert!(reason.starts_with("invalid contract"), "{reason}");
}

/// Found by `fuzz_wasm_deploy`: wasmi 2.0 divided a code section's size by its function
/// count of 0 and panicked, which inside the executor would have stopped every validator
/// on the same committed deploy.
#[test]
fn an_empty_code_section_with_trailing_bytes_is_refused_not_a_panic() {
    let mut module = HEADER.to_vec();
    let size: u16 = 2_000;
    module.push(10);
    module.extend_from_slice(&[0x80 | (size & 0x7f) as u8, (size >> 7) as u8]);
    module.push(0); // no function bodies...
    module.extend(std::iter::repeat_n(0u8, usize::from(size) - 1)); // ...but bytes
    let reason = refused(module);
    assert!(reason.contains("no function bodies"), "{reason}");

    let found = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/corpus/wasm_modules/regression-empty-code-section-with-bytes"
    ))
    .expect("the fuzzer's regression seed is checked in");
    let reason = refused(found);
    assert!(reason.starts_with("invalid contract"), "{reason}");
}

#[test]
fn deep_nesting_is_refused_or_runs_without_overflowing() {
    // ~40 000 nested blocks (3 bytes each) fit the code size limit.
    let depth = 40_000;
    let wat = format!(
        r#"(module (memory (export "memory") 1) (func (export "f") {} {}))"#,
        "(block ".repeat(depth),
        ")".repeat(depth)
    );
    let (chain, receipt, contract) = deploy(wasm(&wat));
    match status_reason(&receipt) {
        Some(reason) => assert!(reason.starts_with("invalid contract"), "{reason}"),
        None => {
            let view = chain.exec.query().view(&contract, "f", &[], chain.exec.height());
            assert!(view.is_ok(), "{view:?}");
        }
    }
}

#[test]
fn memory64_start_functions_and_huge_memories_are_refused() {
    let reason = refused(wasm(r#"(module (memory (export "memory") i64 1))"#));
    assert!(reason.starts_with("invalid contract"), "{reason}");
    let reason = refused(wasm(r#"(module (memory (export "memory") 1) (func $s) (start $s))"#));
    assert!(reason.starts_with("invalid contract"), "{reason}");
    let reason = refused(wasm(r#"(module (memory (export "memory") 65536))"#));
    assert!(reason.contains("65536 pages"), "{reason}");
}

#[test]
fn oversized_tables_fail_cleanly() {
    // Within wasmi's parse limits but over the contract table limit: the instance cannot be
    // created, so `init` fails and nothing is deployed.
    let reason = refused(wasm(
        r#"(module (memory (export "memory") 1) (table 100000 funcref) (func (export "init")))"#,
    ));
    assert!(!reason.is_empty(), "{reason}");
    // Without `init` the deploy may succeed; every call then fails.
    let (mut chain, receipt, contract) =
        deploy(wasm(r#"(module (memory (export "memory") 1) (table 100000 funcref) (func (export "f")))"#));
    if receipt.status == ReceiptStatus::Ok {
        let call = chain.run(builder(&key(1), 1).call(contract, "f", vec![]).expect("call"));
        assert!(status_reason(&call).is_some(), "a call on an oversized table ran: {call:?}");
    }
}

#[test]
fn indirect_recursion_exhausts_the_call_stack_cleanly() {
    let wat = r#"(module
        (memory (export "memory") 1)
        (type $t (func))
        (table 2 funcref)
        (elem (i32.const 0) $a $b)
        (func $a (local i64 i64 i64 i64 i64 i64 i64 i64) (call_indirect (type $t) (i32.const 1)))
        (func $b (call_indirect (type $t) (i32.const 0)))
        (func (export "go") (call $a)))"#;
    let (mut chain, receipt, contract) = deploy(wasm(wat));
    assert_eq!(receipt.status, ReceiptStatus::Ok, "{receipt:?}");
    let call = chain.run(builder(&key(1), 1).call(contract, "go", vec![]).expect("call"));
    assert_eq!(status_reason(&call), Some("trap: call stack exhausted"), "{call:?}");
    // The validator goes on: the next transaction executes.
    let next = chain.run(builder(&key(1), 2).transfer(Address([3; 32]), 1).expect("tx"));
    assert_eq!(next.status, ReceiptStatus::Ok);
}

fn wasm_seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("counter.wasm", wasm(COUNTER_WAT)),
        ("token.wasm", wasm(TOKEN_WAT)),
        ("locals.wasm", module_with_locals(&[0x04])),
        (
            "recursion.wasm",
            wasm(r#"(module (memory (export "memory") 1) (func $r (export "get") (call $r)))"#),
        ),
        (
            "grow.wasm",
            wasm(
                r#"(module (memory (export "memory") 1 65536)
                    (func (export "increment") (drop (memory.grow (i32.const 15))) (i32.store (i32.const 0) (i32.const 1))))"#,
            ),
        ),
    ]
}

#[test]
fn fuzz_wasm_deploy() {
    harness::ensure_seeds("wasm_modules", &wasm_seeds());
    let alice = key(1);
    let chain = RefCell::new((Chain::funded(&[&alice]), 0u64));
    harness::run("wasm_modules", 1_000, 512, |code| {
        let (chain, nonce) = &mut *chain.borrow_mut();
        let b = builder(&alice, *nonce);
        let signed = b.deploy(code.to_vec(), vec![]).map_err(|e| e.to_string())?;
        *nonce += 1;
        let receipt = chain.run(signed);
        let deployed = chain.account(&b.contract_address()).is_contract();
        match &receipt.status {
            ReceiptStatus::Ok if deployed => {}
            ReceiptStatus::Failed { .. } if !deployed => {}
            other => return Err(format!("deploy ended {other:?} with contract deployed: {deployed}")),
        }
        if deployed {
            for method in ["get", "increment", "init", "memory"] {
                // A view must answer (with a result or an error), whatever the module does.
                let _ =
                    chain.exec.query().view(&b.contract_address(), method, &[1, 2, 3], chain.exec.height());
            }
        }
        Ok(())
    });
}
