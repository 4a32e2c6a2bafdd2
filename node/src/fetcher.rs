//! Fetching payload batches this validator is missing.
//!
//! A batch is first asked of the validator that referenced it (the proposer holds it);
//! if it has not arrived after a while, the request moves on to the next validator, and so
//! on, so one silent or crashed peer cannot make a batch unobtainable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bastion_crypto::Digest;

use crate::state::NodeState;
use crate::wire::{NetMessage, MAX_BATCH_REQUEST};

const RETRY_AFTER: Duration = Duration::from_millis(400);

struct Want {
    peer: u16,
    asked: Instant,
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
                    wanted.insert(*digest, Want { peer, asked: Instant::now() });
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

    /// Re-asks overdue batches of the next validator; call periodically.
    pub fn retry_overdue(&self) {
        let now = Instant::now();
        let mut by_peer: HashMap<u16, Vec<Digest>> = HashMap::new();
        {
            let mut wanted = self.lock();
            for (digest, want) in wanted.iter_mut() {
                if now.duration_since(want.asked) >= RETRY_AFTER {
                    want.peer = self.next_peer(want.peer);
                    want.asked = now;
                    by_peer.entry(want.peer).or_default().push(*digest);
                }
            }
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
