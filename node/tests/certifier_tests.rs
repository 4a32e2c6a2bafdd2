//! The state-root certifier against a real `NodeState` of validator 0 in a committee of 4:
//! quorums certify, a quorum for another root halts the validator (whether it arrives before
//! or after this validator executes the height), and bad or repeated votes never count.
//!
//! Peers are never started: their addresses are bound-but-unread UDP sockets, so the
//! certifier's broadcasts just queue or drop.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bastion_client::certificate::{sign_state_root, StateCertificate};
use bastion_crypto::{Digest, Signature};
use bastion_node::certifier::Certifier;
use bastion_node::state::NodeState;
use common::{key, validator_zero, TestValidator};

const CHAIN: &str = "bastion-certifier-test";
const N: u8 = 4;

fn root(byte: u8) -> Digest {
    Digest([byte; 32])
}

/// Validator 0's state and certifier, plus what must outlive them.
struct Fixture {
    state: Arc<NodeState>,
    certifier: Certifier,
    _validator: TestValidator,
}

impl Fixture {
    /// Must be called inside a Tokio runtime (the transport spawns its tasks).
    fn new() -> Self {
        let validator = validator_zero(CHAIN, N, Vec::new(), false);
        let state = validator.state.clone();
        let certifier = Certifier::new(state.clone());
        Fixture { state, certifier, _validator: validator }
    }

    /// A valid vote of validator `i`, sent by `i`.
    fn vote(&self, i: u8, height: u64, state_root: Digest) {
        let signature = sign_state_root(&key(i), CHAIN, height, &state_root);
        self.certifier.on_vote(u16::from(i), height, state_root, u16::from(i), signature);
    }

    fn sig(&self, i: u8, height: u64, state_root: Digest) -> Signature {
        sign_state_root(&key(i), CHAIN, height, &state_root)
    }

    fn certified_height(&self) -> u64 {
        self.state.certified_height.load(Ordering::SeqCst)
    }
}

fn assert_halted_for_divergence(fx: &Fixture, height: u64) {
    let reason = fx.state.halt_reason().expect("the validator halted");
    assert!(reason.contains("divergence"), "{reason}");
    assert!(reason.contains(&format!("height {height}")), "{reason}");
    let readiness = fx.state.readiness().expect_err("a halted validator is not ready");
    assert!(readiness.contains("divergence"), "{readiness}");
}

#[tokio::test]
async fn a_quorum_of_matching_roots_certifies_the_height() {
    assert_eq!(StateCertificate::quorum(usize::from(N)), 3);
    let fx = Fixture::new();
    let r = root(0xaa);
    fx.certifier.executed(5, r);
    fx.vote(1, 5, r);
    assert!(fx.state.latest_certificate().is_none(), "2 of 4 is not a quorum");
    fx.vote(2, 5, r);

    let cert = fx.state.latest_certificate().expect("certified");
    assert_eq!(cert.height, 5);
    assert_eq!(cert.state_root, r);
    assert_eq!(cert.chain_id, CHAIN);
    assert_eq!(cert.signers, vec![0, 1, 2]);
    assert_eq!(cert.signatures.len(), 3);
    cert.verify(CHAIN, &fx.state.committee).expect("the certificate verifies");
    assert_eq!(fx.certified_height(), 5);
    assert!(fx.state.halt_reason().is_none());
    fx.state.readiness().expect("still ready");
    assert_eq!(fx.certifier.pending_heights(), 0);

    // A late fourth vote changes nothing.
    fx.vote(3, 5, r);
    assert_eq!(fx.state.latest_certificate().expect("certified").signers, vec![0, 1, 2]);
}

#[tokio::test]
async fn a_quorum_for_a_different_root_halts_the_validator() {
    let fx = Fixture::new();
    let (mine, other) = (root(1), root(2));
    fx.certifier.executed(6, mine);
    fx.vote(1, 6, other);
    fx.vote(2, 6, other);
    assert!(fx.state.halt_reason().is_none(), "no quorum yet");
    fx.vote(3, 6, other);

    assert_halted_for_divergence(&fx, 6);
    // The quorum's certificate is still genuine.
    let cert = fx.state.latest_certificate().expect("the quorum certified its root");
    assert_eq!((cert.height, cert.state_root), (6, other));
    assert_eq!(cert.signers, vec![1, 2, 3]);
    cert.verify(CHAIN, &fx.state.committee).expect("verifies");
}

#[tokio::test]
async fn a_quorum_before_execution_for_a_different_root_halts_the_validator() {
    let fx = Fixture::new();
    let (mine, other) = (root(3), root(4));
    fx.vote(1, 7, other);
    fx.vote(2, 7, other);
    fx.vote(3, 7, other);
    assert_eq!(fx.certified_height(), 7);
    assert!(fx.state.halt_reason().is_none(), "nothing to disagree with yet");

    fx.certifier.executed(7, mine);
    assert_halted_for_divergence(&fx, 7);
}

#[tokio::test]
async fn a_quorum_before_execution_for_the_same_root_does_not_halt() {
    let fx = Fixture::new();
    let r = root(5);
    for i in 1..N {
        fx.vote(i, 8, r);
    }
    fx.certifier.executed(8, r);
    assert!(fx.state.halt_reason().is_none());
    assert_eq!(fx.state.latest_certificate().expect("certified").signers, vec![1, 2, 3]);
}

#[tokio::test]
async fn invalid_misattributed_and_unknown_votes_are_ignored() {
    let fx = Fixture::new();
    let (h, r) = (9, root(6));
    fx.certifier.executed(h, r);

    // Validator 1's "vote" signed over another root: bad signature.
    fx.certifier.on_vote(1, h, r, 1, fx.sig(1, h, root(7)));
    // Validator 1's signature, but relayed by 2 claiming to be signer 1.
    fx.certifier.on_vote(2, h, r, 1, fx.sig(1, h, r));
    // Index 9 is not in the committee (signed by a key of seed 9).
    fx.certifier.on_vote(9, h, r, 9, fx.sig(9, h, r));
    // One good vote.
    fx.vote(3, h, r);

    assert!(fx.state.latest_certificate().is_none(), "only 2 valid votes");
    assert_eq!(fx.certified_height(), 0);
    assert_eq!(fx.certifier.pending_heights(), 1);

    // The rejected vote did not occupy validator 1's slot: its genuine vote completes the quorum.
    fx.vote(1, h, r);
    let cert = fx.state.latest_certificate().expect("certified");
    assert_eq!(cert.signers, vec![0, 1, 3]);
    cert.verify(CHAIN, &fx.state.committee).expect("verifies");
    assert!(fx.state.halt_reason().is_none());
}

#[tokio::test]
async fn two_votes_from_the_same_signer_count_once() {
    let fx = Fixture::new();
    let (h, r) = (10, root(8));
    fx.certifier.executed(h, r);
    fx.vote(1, h, r);
    fx.vote(1, h, r);
    assert!(fx.state.latest_certificate().is_none(), "0 and 1 are two signers, not three");
    // Re-announcing our own root does not count twice either.
    fx.certifier.executed(h, r);
    assert!(fx.state.latest_certificate().is_none());

    // Nor do two other peers' votes for a root when one of them is repeated.
    let other = root(9);
    fx.vote(2, 11, other);
    fx.vote(2, 11, other);
    fx.vote(3, 11, other);
    assert!(fx.state.latest_certificate().is_none());

    fx.vote(2, h, r);
    let cert = fx.state.latest_certificate().expect("certified");
    assert_eq!((cert.height, cert.signers.clone()), (h, vec![0, 1, 2]));
    cert.verify(CHAIN, &fx.state.committee).expect("verifies");
}
