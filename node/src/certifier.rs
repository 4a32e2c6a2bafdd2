//! Certifying state roots: gathering `2f+1` validator signatures over each height's root.
//!
//! After executing a height, a validator signs its state root and broadcasts the signature.
//! When a quorum of validators signed the same root, that root is certified and clients can
//! check query answers against it with the committee's keys alone. If the quorum certifies a
//! root different from the one this validator computed, execution diverged: that is a bug,
//! never tolerated: the validator halts (stops voting) and says why.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bastion_client::certificate::{sign_state_root, state_root_digest, StateCertificate, STATE_ROOT_DOMAIN};
use bastion_crypto::{verify, Digest, Signature};

use crate::state::NodeState;
use crate::wire::NetMessage;

/// Heights ahead of our own execution for which votes are kept (a lagging validator still
/// certifies what it executes later).
const HEIGHT_WINDOW: u64 = 10_000;
const KEEP_OWN_ROOTS: usize = 1_024;

#[derive(Default)]
struct Votes {
    /// Per height: each signer's root (first vote wins) and signature.
    by_height: BTreeMap<u64, BTreeMap<u16, (Digest, Signature)>>,
    own_roots: BTreeMap<u64, Digest>,
    certified: BTreeMap<u64, Digest>,
}

pub struct Certifier {
    state: Arc<NodeState>,
    votes: Mutex<Votes>,
}

impl Certifier {
    pub fn new(state: Arc<NodeState>) -> Self {
        Certifier { state, votes: Mutex::new(Votes::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Votes> {
        self.votes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This validator executed `height` with `root`: sign it, share it, count it.
    pub fn executed(&self, height: u64, root: Digest) {
        if self.state.halt_reason().is_some() {
            // A halted validator no longer vouches for anything.
            return;
        }
        let signature = sign_state_root(&self.state.key, &self.state.chain_id, height, &root);
        let message = NetMessage::StateVote { height, state_root: root, signer: self.state.me, signature };
        let _ = self.state.transport.broadcast(&message);
        {
            let mut votes = self.lock();
            votes.own_roots.insert(height, root);
            while votes.own_roots.len() > KEEP_OWN_ROOTS {
                votes.own_roots.pop_first();
            }
            if let Some(certified) = votes.certified.get(&height).copied() {
                drop(votes);
                self.check_agreement(height, certified, root);
            }
        }
        self.add(height, root, self.state.me, signature);
    }

    /// A peer's signed state root.
    pub fn on_vote(&self, from: u16, height: u64, root: Digest, signer: u16, signature: Signature) {
        if from != signer || usize::from(signer) >= self.state.committee.len() {
            return;
        }
        // Above the window: too far ahead to hold. At or below the certified height: a newer
        // root is already certified, so these votes could only rebuild an incomplete set.
        let certified = self.state.certified_height.load(std::sync::atomic::Ordering::SeqCst);
        if height > self.state.executed() + HEIGHT_WINDOW || (certified > 0 && height <= certified) {
            return;
        }
        let Some(key) = self.state.committee.get(usize::from(signer)) else { return };
        let digest = state_root_digest(&self.state.chain_id, height, &root);
        if verify(STATE_ROOT_DOMAIN, digest.as_bytes(), key, &signature).is_err() {
            tracing::warn!(signer, height, "invalid state-root signature");
            return;
        }
        self.add(height, root, signer, signature);
    }

    fn add(&self, height: u64, root: Digest, signer: u16, signature: Signature) {
        let quorum = StateCertificate::quorum(self.state.committee.len());
        let mut votes = self.lock();
        if votes.certified.contains_key(&height) {
            return;
        }
        let at_height = votes.by_height.entry(height).or_default();
        at_height.entry(signer).or_insert((root, signature));
        let matching: Vec<(u16, Signature)> =
            at_height.iter().filter(|(_, (r, _))| *r == root).map(|(s, (_, sig))| (*s, *sig)).collect();
        if matching.len() < quorum {
            return;
        }
        votes.certified.insert(height, root);
        votes.by_height.remove(&height);
        // Keep a bounded history of which heights are done.
        while votes.certified.len() > KEEP_OWN_ROOTS {
            votes.certified.pop_first();
        }
        let stale: Vec<u64> = votes.by_height.range(..height).map(|(h, _)| *h).collect();
        for h in stale {
            votes.by_height.remove(&h);
        }
        let own = votes.own_roots.get(&height).copied();
        drop(votes);
        let certificate = StateCertificate {
            chain_id: self.state.chain_id.clone(),
            height,
            state_root: root,
            signers: matching.iter().map(|(s, _)| *s).collect(),
            signatures: matching.iter().map(|(_, sig)| *sig).collect(),
        };
        if let Some(own) = own {
            self.check_agreement(height, root, own);
        }
        self.state.add_certificate(certificate);
    }

    fn check_agreement(&self, height: u64, certified: Digest, own: Digest) {
        if certified != own {
            self.state.halt(format!(
                "state divergence at height {height}: a quorum certified root {certified}, this validator computed {own}"
            ));
        }
    }

    /// Heights with votes pending (for tests and metrics).
    pub fn pending_heights(&self) -> usize {
        self.lock().by_height.len()
    }
}
