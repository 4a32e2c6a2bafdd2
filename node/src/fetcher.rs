//! Fetching payload batches this validator is missing.
//!
//! A batch is first asked of the validator that referenced it (the proposer holds it);
//! if it has not arrived after a while, the request moves on to the next validator, and so
//! on, so one silent or crashed peer cannot make a batch unobtainable.
//!
//! After every peer has been asked [`ASK_EACH_PEER`] times the want is dropped: a batch no
//! honest validator holds can only come from a Byzantine proposal that will never commit,
//! and must not cost requests for ever. A committed block's batches are always held by
//! `f + 1` honest validators, and execution asks for them again until they arrive.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bastion_crypto::Digest;

use crate::state::NodeState;
use crate::wire::{NetMessage, MAX_BATCH_REQUEST};

const RETRY_AFTER: Duration = Duration::from_millis(400);
/// How many times each peer is asked for a batch before the want is dropped.
const ASK_EACH_PEER: u32 = 3;

struct Want {
    peer: u16,
    asked: Instant,
    /// Requests sent so far.
    tries: u32,
}

pub struct BatchFetcher {
    state: Arc<NodeState>,
    wanted: Mutex<HashMap<Digest, Want>>,
}

impl BatchFetcher {
    pub fn new(state: Arc<NodeState>) -> Self {
        BatchFetcher { state, wanted: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Want>> {
        self.wanted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks `from` for the digests not already being fetched.
    pub fn want(&self, digests: &[Digest], from: u16) {
        let peer = if from == self.state.me { self.next_peer(from) } else { from };
        let fresh: Vec<Digest> = {
            let mut wanted = self.lock();
            let mut fresh = Vec::new();
            for digest in digests {
                if !wanted.contains_key(digest) {
                    wanted.insert(*digest, Want { peer, asked: Instant::now(), tries: 1 });
                    fresh.push(*digest);
                }
            }
            fresh
        };
        self.request(peer, fresh);
    }

    pub fn is_wanted(&self, digest: &Digest) -> bool {
        self.lock().contains_key(digest)
    }

    /// The batch arrived (or is no longer needed).
    pub fn arrived(&self, digest: &Digest) {
        self.lock().remove(digest);
    }

    /// Re-asks overdue batches of the next validator, and drops the wants every peer was
    /// asked for too often (see the module docs); call periodically.
    pub fn retry_overdue(&self) {
        let now = Instant::now();
        let max_tries = ASK_EACH_PEER * (self.state.committee.len().saturating_sub(1) as u32).max(1);
        let mut by_peer: HashMap<u16, Vec<Digest>> = HashMap::new();
        {
            let mut wanted = self.lock();
            wanted.retain(|digest, want| {
                if now.duration_since(want.asked) < RETRY_AFTER {
                    return true;
                }
                if want.tries >= max_tries {
                    tracing::debug!(%digest, tries = want.tries, "no peer has this batch; giving up");
                    self.state.metrics.batch_fetches_abandoned.inc();
                    return false;
                }
                want.peer = self.next_peer(want.peer);
                want.asked = now;
                want.tries += 1;
                by_peer.entry(want.peer).or_default().push(*digest);
                true
            });
        }
        for (peer, digests) in by_peer {
            self.request(peer, digests);
        }
    }

    fn next_peer(&self, after: u16) -> u16 {
        let n = self.state.committee.len() as u16;
        let mut peer = (after + 1) % n;
        if peer == self.state.me {
            peer = (peer + 1) % n;
        }
        peer
    }

    fn request(&self, peer: u16, digests: Vec<Digest>) {
        for chunk in digests.chunks(MAX_BATCH_REQUEST) {
            let _ = self.state.transport.send(peer, &NetMessage::BatchRequest(chunk.to_vec()));
        }
    }
}
