//! Authenticated state: inclusion and absence proofs, tampering, serialization, pruning.

mod common;

use bastion_ledger::store::StateStore;
use bastion_ledger::{
    codec, verify_view, Account, AccountProof, Address, ExecutorConfig, LedgerError, MerkleProof, ProofError,
    StateKey, StorageProof, ViewWitness,
};
use common::*;

/// A chain where alice paid bob and deployed a counter that was incremented once.
fn chain_with_state() -> (Chain, Address) {
    let (alice, bob) = (key(1), key(2));
    let mut chain = Chain::funded(&[&alice]);
    chain.run(builder(&alice, 0).transfer(address(&bob), 77).unwrap());
    let b = builder(&alice, 1);
    chain.run(b.deploy(wasm(COUNTER_WAT), vec![]).unwrap());
    chain.run(builder(&alice, 2).call(b.contract_address(), "increment", vec![]).unwrap());
    (chain, b.contract_address())
}

#[test]
fn account_inclusion_and_absence_proofs_verify_against_the_root() {
    let (chain, _) = chain_with_state();
    let height = chain.exec.height();
    let root = chain.exec.state_root();
    let query = chain.exec.query();
    assert_eq!(query.state_root(height).unwrap(), root);

    let bob = address(&key(2));
    let proof = query.account_proof(&bob, height).unwrap();
    let account = proof.verify(root, &bob).unwrap().expect("bob exists");
    assert_eq!(account, Account { balance: 77, nonce: 0, code_hash: None });

    let nobody = Address([0x55; 32]);
    let absent = query.account_proof(&nobody, height).unwrap();
    assert_eq!(absent.account, None);
    assert_eq!(absent.verify(root, &nobody).unwrap(), None);
}

#[test]
fn tampered_account_proofs_fail() {
    let (chain, _) = chain_with_state();
    let (height, root) = (chain.exec.height(), chain.exec.state_root());
    let bob = address(&key(2));
    let proof = chain.exec.query().account_proof(&bob, height).unwrap();

    let mut richer = proof.clone();
    richer.account = Some(Account { balance: 1_000_000, ..proof.account.clone().unwrap() });
    assert!(matches!(richer.verify(root, &bob), Err(ProofError::Invalid(_))));

    let mut erased = proof.clone();
    erased.account = None;
    assert!(matches!(erased.verify(root, &bob), Err(ProofError::Invalid(_))), "inclusion is not absence");

    let alice = address(&key(1));
    assert_eq!(proof.verify(root, &alice), Err(ProofError::KeyMismatch));
    let mut relabeled = proof.clone();
    relabeled.address = alice;
    assert!(matches!(relabeled.verify(root, &alice), Err(ProofError::Invalid(_))), "another key's proof");

    let mut wrong_root = root;
    wrong_root.0[0] ^= 1;
    assert!(matches!(proof.verify(wrong_root, &bob), Err(ProofError::Invalid(_))));
    let old_root = chain.exec.query().state_root(height - 1).unwrap();
    assert!(proof.verify(old_root, &bob).is_err(), "a proof binds to one root");

    // The absence proof of a key does not prove absence of a key that exists.
    let absent = chain.exec.query().account_proof(&Address([0x55; 32]), height).unwrap();
    let mut claimed = absent.clone();
    claimed.address = bob;
    assert!(claimed.verify(root, &bob).is_err());
}

#[test]
fn storage_proofs_cover_contract_state() {
    let (chain, counter) = chain_with_state();
    let (height, root) = (chain.exec.height(), chain.exec.state_root());
    let query = chain.exec.query();

    let proof = query.storage_proof(&counter, b"count", height).unwrap();
    assert_eq!(proof.verify(root, &counter, b"count").unwrap(), Some(1u64.to_le_bytes().to_vec()));
    let absent = query.storage_proof(&counter, b"missing", height).unwrap();
    assert_eq!(absent.verify(root, &counter, b"missing").unwrap(), None);

    let mut forged = proof.clone();
    forged.value = Some(2u64.to_le_bytes().to_vec());
    assert!(matches!(forged.verify(root, &counter, b"count"), Err(ProofError::Invalid(_))));
    assert_eq!(proof.verify(root, &counter, b"other"), Err(ProofError::KeyMismatch));
    assert_eq!(proof.verify(root, &Address([1; 32]), b"count"), Err(ProofError::KeyMismatch));

    // Code is authenticated too.
    let code = query.code(&counter, height).unwrap().unwrap();
    let account = query.account_proof(&counter, height).unwrap().verify(root, &counter).unwrap().unwrap();
    assert_eq!(account.code_hash, Some(bastion_crypto::sha256(&code)));
}

#[test]
fn proofs_survive_json_and_bincode() {
    let (chain, counter) = chain_with_state();
    let (height, root) = (chain.exec.height(), chain.exec.state_root());
    let bob = address(&key(2));
    let proof = chain.exec.query().account_proof(&bob, height).unwrap();

    let json = serde_json::to_string(&proof).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(value["proof"].is_string(), "the Merkle path is hex in JSON");
    let back: AccountProof = serde_json::from_str(&json).unwrap();
    assert_eq!(back.verify(root, &bob).unwrap(), proof.account);

    let bytes = codec::encode(&proof).unwrap();
    let back: AccountProof = codec::decode(&bytes).unwrap();
    assert_eq!(back, proof);

    let storage = chain.exec.query().storage_proof(&counter, b"count", height).unwrap();
    let back: StorageProof = serde_json::from_str(&serde_json::to_string(&storage).unwrap()).unwrap();
    assert_eq!(back.verify(root, &counter, b"count").unwrap(), storage.value);

    let garbage = serde_json::from_str::<MerkleProof>("\"00ff\"");
    assert!(garbage.is_err(), "a malformed proof is a decode error, not a panic");
}

#[test]
fn low_level_proof_checks_exact_values() {
    let (chain, _) = chain_with_state();
    let (height, root) = (chain.exec.height(), chain.exec.state_root());
    let bob = address(&key(2));
    let proof = chain.exec.query().account_proof(&bob, height).unwrap().proof;
    let value = codec::encode(&Account { balance: 77, nonce: 0, code_hash: None }).unwrap();
    proof.verify(root, &StateKey::Account(bob), Some(&value)).unwrap();
    assert!(proof.verify(root, &StateKey::Code(bob), Some(&value)).is_err());
    assert!(proof.verify(root, &StateKey::Account(bob), Some(b"77")).is_err());
}

#[test]
fn unknown_heights_are_refused() {
    let (chain, _) = chain_with_state();
    let next = chain.exec.height() + 1;
    let query = chain.exec.query();
    assert_eq!(query.state_root(next), Err(LedgerError::UnknownHeight(next)));
    assert!(matches!(query.account_proof(&Address([1; 32]), next), Err(LedgerError::UnknownHeight(_))));
    assert!(matches!(query.account(&Address([1; 32]), next), Err(LedgerError::UnknownHeight(_))));
}

#[test]
fn pruning_keeps_retained_heights_readable_and_provable() {
    let (alice, bob) = (key(1), key(2));
    let config = ExecutorConfig { retain_versions: Some(3), prune_every: 1 };
    let mut chain = Chain::with_config(&[(address(&alice), FUNDS)], config);
    let mut unpruned = Chain::new(&[(address(&alice), FUNDS)]);
    for nonce in 0..12 {
        let tx = builder(&alice, nonce).transfer(address(&bob), 1).unwrap();
        let pruned_outcome = chain.block(vec![tx.clone()]);
        assert_eq!(pruned_outcome, unpruned.block(vec![tx]), "pruning never changes results");
    }
    let latest = chain.exec.height();
    let query = chain.exec.query();
    for height in latest - 3..=latest {
        let root = query.state_root(height).unwrap();
        let account =
            query.account_proof(&address(&bob), height).unwrap().verify(root, &address(&bob)).unwrap();
        assert_eq!(account.unwrap().balance, height, "bob received 1 per block");
    }
    assert_eq!(query.state_root(latest - 5), Err(LedgerError::UnknownHeight(latest - 5)));
    assert!(chain.exec.store().node_count() < unpruned.exec.store().node_count(), "pruning reclaimed nodes");
    assert_eq!(chain.exec.store().latest_version().unwrap(), Some(latest));
}

/// A chain with a counter incremented once (from `chain_with_state`) and a token where
/// alice holds 1,000.
fn chain_with_token() -> (Chain, Address, Address) {
    let (mut chain, counter) = chain_with_state();
    let alice = key(1);
    let b = builder(&alice, 3);
    chain.run(b.deploy(wasm(TOKEN_WAT), 1_000u64.to_le_bytes().to_vec()).unwrap());
    (chain, counter, b.contract_address())
}

#[test]
fn a_view_re_runs_over_its_witness_alone_and_gives_the_same_answer() {
    let (chain, counter, token) = chain_with_token();
    let (height, root) = (chain.exec.height(), chain.exec.state_root());
    let query = chain.exec.query();
    let alice = address(&key(1));
    let nobody = Address([0x42; 32]);
    for (contract, method, args) in [
        (counter, "get", vec![]),
        (token, "balance_of", alice.0.to_vec()),
        (token, "balance_of", nobody.0.to_vec()),
    ] {
        let (outcome, witness) = query.view_with_witness(&contract, method, &args, height).unwrap();
        assert_eq!(outcome, query.view(&contract, method, &args, height).unwrap());
        assert_eq!(witness.height, height);
        let keys: Vec<_> = witness.reads.iter().map(|r| r.key.clone()).collect();
        assert!(keys.contains(&StateKey::Code(contract)), "{keys:?}");
        // Through JSON, as a client receives it.
        let witness: ViewWitness = serde_json::from_str(&serde_json::to_string(&witness).unwrap()).unwrap();
        assert_eq!(verify_view(root, &witness, &contract, method, &args).unwrap(), outcome);
    }
    let (counted, _) = query.view_with_witness(&counter, "get", &[], height).unwrap();
    assert_eq!(counted.return_data, 1u64.to_le_bytes());
    let (balance, witness) = query.view_with_witness(&token, "balance_of", &nobody.0, height).unwrap();
    assert_eq!(balance.return_data, 0u64.to_le_bytes());
    assert!(witness.reads.iter().any(|r| matches!(r.key, StateKey::Storage(..)) && r.value.is_none()));
}

#[test]
fn a_tampered_incomplete_or_misapplied_witness_is_rejected() {
    let (chain, _, token) = chain_with_token();
    let (height, root) = (chain.exec.height(), chain.exec.state_root());
    let query = chain.exec.query();
    let alice = address(&key(1));
    let (_, witness) = query.view_with_witness(&token, "balance_of", &alice.0, height).unwrap();
    let slot = witness.reads.iter().position(|r| matches!(r.key, StateKey::Storage(..))).unwrap();
    let is_witness_error = |result: Result<_, LedgerError>| matches!(result, Err(LedgerError::Witness(_)));

    // A lie about alice's balance does not verify.
    let mut lie = witness.clone();
    lie.reads[slot].value = Some(5_000u64.to_le_bytes().to_vec());
    assert!(is_witness_error(verify_view(root, &lie, &token, "balance_of", &alice.0)));
    // Leaving out the slot the view reads does not pass as "empty".
    let mut short = witness.clone();
    short.reads.remove(slot);
    assert!(is_witness_error(verify_view(root, &short, &token, "balance_of", &alice.0)));
    // Asking about someone else needs a slot the witness does not prove.
    let bob = address(&key(2));
    assert!(is_witness_error(verify_view(root, &witness, &token, "balance_of", &bob.0)));
    // Another root (an earlier height's) rejects the proofs.
    let earlier = query.state_root(height - 1).unwrap();
    assert!(is_witness_error(verify_view(earlier, &witness, &token, "balance_of", &alice.0)));
    // The honest witness still passes.
    let outcome = verify_view(root, &witness, &token, "balance_of", &alice.0).unwrap();
    assert_eq!(outcome.return_data, 1_000u64.to_le_bytes());
}
