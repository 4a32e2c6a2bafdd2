//! Transport counters.
//!
//! Every drop the transport makes on purpose is counted here, so a slow peer or a peer
//! sending garbage is visible in metrics instead of silent. Counters only grow; they are
//! relaxed atomics (each is an independent tally, nothing is ordered against them).

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters shared by every task of one transport.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) frames_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) dropped_full: AtomicU64,
    pub(crate) send_failures: AtomicU64,
    pub(crate) frames_too_large: AtomicU64,
    pub(crate) frames_bad_version: AtomicU64,
    pub(crate) frames_undecodable: AtomicU64,
    pub(crate) connections_established: AtomicU64,
    pub(crate) connections_rejected: AtomicU64,
    pub(crate) dial_failures: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> TransportStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TransportStats {
            frames_sent: get(&self.frames_sent),
            messages_received: get(&self.messages_received),
            dropped_full: get(&self.dropped_full),
            send_failures: get(&self.send_failures),
            frames_too_large: get(&self.frames_too_large),
            frames_bad_version: get(&self.frames_bad_version),
            frames_undecodable: get(&self.frames_undecodable),
            connections_established: get(&self.connections_established),
            connections_rejected: get(&self.connections_rejected),
            dial_failures: get(&self.dial_failures),
        }
    }
}

/// A point-in-time copy of the transport's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Frames written to a peer's stream.
    pub frames_sent: u64,
    /// Messages decoded from peers' frames (each is then handed to the inbound channel).
    pub messages_received: u64,
    /// Messages not queued because the destination's send queue was full.
    pub dropped_full: u64,
    /// Frames lost because the connection failed while writing them.
    pub send_failures: u64,
    /// Inbound frames whose length prefix exceeded `max_frame_bytes` (connection closed).
    pub frames_too_large: u64,
    /// Inbound frames with an unknown protocol version byte (dropped).
    pub frames_bad_version: u64,
    /// Inbound frames that were empty or did not decode as a message (dropped).
    pub frames_undecodable: u64,
    /// Authenticated connections that became a peer's current connection.
    pub connections_established: u64,
    /// Incoming connections refused (handshake failed, wrong dial direction, bad ALPN).
    pub connections_rejected: u64,
    /// Outgoing connection attempts that failed (peer down, or it failed our pinning).
    pub dial_failures: u64,
}
