//! Proof verification against real ledger state (MemoryStore + Executor) and real
//! certificates signed by a test committee: valid answers pass; a tampered value, a wrong
//! root, too few signers, a bad signature, another chain, a mismatched height or subject
//! are each rejected with the matching error.

use std::sync::Arc;

use bastion_client::api::{AccountResponse, CertifiedProof, StorageResponse};
use bastion_client::certificate::{sign_state_root, CertificateError, StateCertificate};
use bastion_client::{verify_account, verify_storage, VerifyError};
use bastion_crypto::{Digest, KeyPair, PublicKey};
use bastion_ledger::{
    admit, compile_wat, Address, Executor, ExecutorConfig, Genesis, MemoryStore, StateQuery,
    TransactionBuilder,
};

const CHAIN: &str = "verify-test";
const COUNTER: &str = include_str!("../../examples/contracts/counter.wat");

struct World {
    committee: Vec<KeyPair>,
    query: StateQuery<MemoryStore>,
    root: Digest,
    height: u64,
    user: KeyPair,
    contract: Address,
}

fn committee_keys(world: &World) -> Vec<PublicKey> {
    world.committee.iter().map(KeyPair::public).collect()
}

/// Genesis funds `user`; block 1 deploys the counter and increments it once.
fn world() -> World {
    let committee: Vec<KeyPair> = (1..=4u8).map(|i| KeyPair::from_seed([i; 32])).collect();
    let user = KeyPair::from_seed([42; 32]);
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        accounts: vec![(Address::from_public_key(&user.public()), 1_000_000_000)],
        validators: committee.iter().map(KeyPair::public).collect(),
    };
    let mut executor =
        Executor::genesis(Arc::new(MemoryStore::new()), &genesis, ExecutorConfig::default()).unwrap();
    let builder = TransactionBuilder::new(CHAIN, user.clone());
    let contract = builder.contract_address();
    let deploy = builder.deploy(compile_wat(COUNTER).unwrap(), vec![]).unwrap();
    let increment = builder.clone().nonce(1).call(contract, "increment", vec![]).unwrap();
    let txs: Vec<_> =
        [deploy, increment].iter().map(|tx| admit(&tx.to_bytes().unwrap(), CHAIN).unwrap()).collect();
    let outcome = executor.apply_block(1, &txs).unwrap();
    assert!(outcome.receipts.iter().all(|r| r.status.is_ok()), "{:?}", outcome.receipts);
    World { committee, query: executor.query(), root: outcome.state_root, height: 1, user, contract }
}

fn certificate(world: &World, signers: &[u16], root: Digest) -> StateCertificate {
    StateCertificate {
        chain_id: CHAIN.into(),
        height: world.height,
        state_root: root,
        signers: signers.to_vec(),
        signatures: signers
            .iter()
            .map(|i| sign_state_root(&world.committee[usize::from(*i)], CHAIN, world.height, &root))
            .collect(),
    }
}

fn account_answer(world: &World, address: Address, certificate: StateCertificate) -> AccountResponse {
    let proof = world.query.account_proof(&address, world.height).unwrap();
    let account = proof.account.clone().unwrap_or_default();
    AccountResponse {
        address,
        balance: account.balance,
        nonce: account.nonce,
        pending_nonce: account.nonce,
        is_contract: account.is_contract(),
        height: world.height,
        proof: Some(CertifiedProof { proof, certificate }),
    }
}

fn storage_answer(world: &World, key: &[u8], certificate: StateCertificate) -> StorageResponse {
    let proof = world.query.storage_proof(&world.contract, key, world.height).unwrap();
    StorageResponse {
        contract: world.contract,
        key_hex: hex::encode(key),
        value_hex: proof.value.as_ref().map(hex::encode),
        height: world.height,
        proof: Some(CertifiedProof { proof, certificate }),
    }
}

#[test]
fn a_valid_account_answer_verifies() {
    let w = world();
    let user = Address::from_public_key(&w.user.public());
    let answer = account_answer(&w, user, certificate(&w, &[0, 1, 3], w.root));
    let verified = verify_account(&answer, CHAIN, &committee_keys(&w)).unwrap();
    assert_eq!((verified.height, verified.signers, verified.validators), (1, 3, 4));
    let account = verified.account.unwrap();
    assert_eq!(account.nonce, 2);
    assert!(account.balance < 1_000_000_000, "fees were charged");

    // The contract account, and an address with no account at all.
    let answer = account_answer(&w, w.contract, certificate(&w, &[0, 1, 2, 3], w.root));
    assert!(verify_account(&answer, CHAIN, &committee_keys(&w)).unwrap().account.unwrap().is_contract());
    let nobody = Address([7; 32]);
    let answer = account_answer(&w, nobody, certificate(&w, &[1, 2, 3], w.root));
    assert_eq!(answer.balance, 0);
    assert_eq!(verify_account(&answer, CHAIN, &committee_keys(&w)).unwrap().account, None);
}

#[test]
fn a_tampered_account_answer_is_rejected() {
    let w = world();
    let keys = committee_keys(&w);
    let user = Address::from_public_key(&w.user.public());
    let good = account_answer(&w, user, certificate(&w, &[0, 1, 2], w.root));

    // The plain field lies.
    let mut lie = good.clone();
    lie.balance += 1;
    assert!(matches!(
        verify_account(&lie, CHAIN, &keys),
        Err(VerifyError::ValueMismatch { field: "balance", .. })
    ));
    let mut lie = good.clone();
    lie.nonce = 0;
    assert!(matches!(
        verify_account(&lie, CHAIN, &keys),
        Err(VerifyError::ValueMismatch { field: "nonce", .. })
    ));

    // The proven value lies too (consistently with the plain field): the proof breaks.
    let mut lie = good.clone();
    lie.balance += 1_000;
    if let Some(p) = lie.proof.as_mut() {
        if let Some(a) = p.proof.account.as_mut() {
            a.balance += 1_000;
        }
    }
    assert!(matches!(verify_account(&lie, CHAIN, &keys), Err(VerifyError::Proof(_))));

    // Claiming an absent account for an existing one.
    let mut lie = good.clone();
    (lie.balance, lie.nonce) = (0, 0);
    if let Some(p) = lie.proof.as_mut() {
        p.proof.account = None;
    }
    assert!(matches!(verify_account(&lie, CHAIN, &keys), Err(VerifyError::Proof(_))));

    // The proof is about another address than the answer.
    let mut lie = good.clone();
    lie.address = w.contract;
    assert!(matches!(verify_account(&lie, CHAIN, &keys), Err(VerifyError::SubjectMismatch { .. })));

    // No proof at all.
    let mut lie = good;
    lie.proof = None;
    assert_eq!(verify_account(&lie, CHAIN, &keys), Err(VerifyError::NoProof));
}

#[test]
fn a_bad_certificate_is_rejected() {
    let w = world();
    let keys = committee_keys(&w);
    let user = Address::from_public_key(&w.user.public());

    // A well-signed certificate of another root: the proof does not hold under it.
    let wrong_root = account_answer(&w, user, certificate(&w, &[0, 1, 2], Digest([9; 32])));
    assert!(matches!(verify_account(&wrong_root, CHAIN, &keys), Err(VerifyError::Proof(_))));

    // Too few signers: 2 of 4 (quorum is 3).
    let few = account_answer(&w, user, certificate(&w, &[0, 2], w.root));
    assert_eq!(
        verify_account(&few, CHAIN, &keys),
        Err(VerifyError::Certificate(CertificateError::NoQuorum { got: 2, needed: 3, n: 4 }))
    );

    // A bad signature.
    let mut bad = certificate(&w, &[0, 1, 2], w.root);
    bad.signatures[1].0[5] ^= 1;
    let bad = account_answer(&w, user, bad);
    assert_eq!(
        verify_account(&bad, CHAIN, &keys),
        Err(VerifyError::Certificate(CertificateError::BadSignature))
    );

    // Signed by keys that are not the committee's (a node making up its own quorum).
    let impostors: Vec<PublicKey> = (10..=13u8).map(|i| KeyPair::from_seed([i; 32]).public()).collect();
    let good = account_answer(&w, user, certificate(&w, &[0, 1, 2], w.root));
    assert_eq!(
        verify_account(&good, CHAIN, &impostors),
        Err(VerifyError::Certificate(CertificateError::BadSignature))
    );

    // Another chain's certificate.
    assert!(matches!(
        verify_account(&good, "other-chain", &keys),
        Err(VerifyError::Certificate(CertificateError::WrongChain { .. }))
    ));

    // A repeated signer does not count twice; an unknown index is refused.
    let mut repeated = certificate(&w, &[0, 1, 2], w.root);
    repeated.signers = vec![0, 0, 1];
    let repeated = account_answer(&w, user, repeated);
    assert_eq!(
        verify_account(&repeated, CHAIN, &keys),
        Err(VerifyError::Certificate(CertificateError::Malformed))
    );
    let mut unknown = certificate(&w, &[0, 1, 2], w.root);
    unknown.signers = vec![0, 1, 9];
    let unknown = account_answer(&w, user, unknown);
    assert_eq!(
        verify_account(&unknown, CHAIN, &keys),
        Err(VerifyError::Certificate(CertificateError::UnknownSigner(9)))
    );

    // A proof for another height than the certificate's.
    let mut stale = account_answer(&w, user, certificate(&w, &[0, 1, 2], w.root));
    if let Some(p) = stale.proof.as_mut() {
        p.proof.height = 0;
    }
    assert_eq!(
        verify_account(&stale, CHAIN, &keys),
        Err(VerifyError::HeightMismatch { proof: 0, certificate: 1 })
    );
}

#[test]
fn storage_answers_verify_and_tampering_is_rejected() {
    let w = world();
    let keys = committee_keys(&w);
    let good = storage_answer(&w, b"count", certificate(&w, &[1, 2, 3], w.root));
    let verified = verify_storage(&good, CHAIN, &keys).unwrap();
    assert_eq!(verified.value, Some(1u64.to_le_bytes().to_vec()));
    assert_eq!((verified.height, verified.signers, verified.validators), (1, 3, 4));

    // An absent key verifies as absent.
    let absent = storage_answer(&w, b"missing", certificate(&w, &[1, 2, 3], w.root));
    assert_eq!(verify_storage(&absent, CHAIN, &keys).unwrap().value, None);

    let mut lie = good.clone();
    lie.value_hex = Some(hex::encode(2u64.to_le_bytes()));
    assert!(matches!(
        verify_storage(&lie, CHAIN, &keys),
        Err(VerifyError::ValueMismatch { field: "value", .. })
    ));
    let mut lie = good.clone();
    lie.value_hex = None;
    assert!(matches!(verify_storage(&lie, CHAIN, &keys), Err(VerifyError::ValueMismatch { .. })));
    let mut lie = good.clone();
    lie.value_hex = Some(hex::encode(2u64.to_le_bytes()));
    if let Some(p) = lie.proof.as_mut() {
        p.proof.value = Some(2u64.to_le_bytes().to_vec());
    }
    assert!(matches!(verify_storage(&lie, CHAIN, &keys), Err(VerifyError::Proof(_))));
    let mut lie = good.clone();
    lie.key_hex = hex::encode(b"other");
    assert!(matches!(verify_storage(&lie, CHAIN, &keys), Err(VerifyError::SubjectMismatch { .. })));
    let few = storage_answer(&w, b"count", certificate(&w, &[3], w.root));
    assert!(matches!(
        verify_storage(&few, CHAIN, &keys),
        Err(VerifyError::Certificate(CertificateError::NoQuorum { .. }))
    ));
}
