//! Transport configuration and its validation.
//!
//! [`TransportConfig::validate`] rejects, before any socket is touched, a configuration
//! the transport could not run safely with: an empty or oversized committee, an index
//! outside it, a key that is not the committee's key for our index, two validators sharing
//! a key (connections could not be attributed), or unusable limits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bastion_crypto::{KeyPair, PublicKey};

use super::frame::DEFAULT_MAX_FRAME_BYTES;
use super::TransportError;

/// Default capacity of each peer's send queue.
pub const DEFAULT_SEND_QUEUE_LEN: usize = 1024;
/// Default capacity of the inbound message channel.
pub const DEFAULT_INBOUND_QUEUE_LEN: usize = 4096;

/// Everything a validator needs to join the committee's network.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Our index in `committee`.
    pub me: u16,
    /// Our validator key; must be `committee[me].0`.
    pub key: KeyPair,
    /// Every validator's public key and QUIC address, in committee order (ours included).
    pub committee: Vec<(PublicKey, SocketAddr)>,
    /// Where to listen ([`Transport::start`](super::Transport::start); ignored by [`Transport::start_on`](super::Transport::start_on)).
    pub listen: SocketAddr,
    /// Bound on a frame's length field (version byte + payload), both directions.
    pub max_frame_bytes: usize,
    /// Messages waiting for one peer before further ones are dropped.
    pub send_queue_len: usize,
    /// Capacity of the inbound channel returned by `start`.
    pub inbound_queue_len: usize,
}

impl TransportConfig {
    /// A configuration with default limits.
    pub fn new(me: u16, key: KeyPair, committee: Vec<(PublicKey, SocketAddr)>, listen: SocketAddr) -> Self {
        TransportConfig {
            me,
            key,
            committee,
            listen,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            send_queue_len: DEFAULT_SEND_QUEUE_LEN,
            inbound_queue_len: DEFAULT_INBOUND_QUEUE_LEN,
        }
    }

    pub(crate) fn validate(&self) -> Result<Arc<[PublicKey]>, TransportError> {
        let size = self.committee.len();
        if size == 0 || size > usize::from(u16::MAX) {
            return Err(TransportError::InvalidCommitteeSize(size));
        }
        let (expected, _) = self
            .committee
            .get(usize::from(self.me))
            .ok_or(TransportError::NotInCommittee { me: self.me, size })?;
        if *expected != self.key.public() {
            return Err(TransportError::KeyMismatch {
                me: self.me,
                ours: self.key.public().to_hex(),
                expected: expected.to_hex(),
            });
        }
        let mut seen = HashMap::with_capacity(size);
        for (index, (key, _)) in (0u16..).zip(&self.committee) {
            if let Some(first) = seen.insert(*key, index) {
                return Err(TransportError::DuplicateKey { first, second: index });
            }
        }
        if self.max_frame_bytes < 2 || u32::try_from(self.max_frame_bytes).is_err() {
            return Err(TransportError::InvalidConfig("max_frame_bytes must be in 2..=u32::MAX"));
        }
        if self.send_queue_len == 0 || self.inbound_queue_len == 0 {
            return Err(TransportError::InvalidConfig("queue lengths must be at least 1"));
        }
        Ok(self.committee.iter().map(|(key, _)| *key).collect())
    }
}
