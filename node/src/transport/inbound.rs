//! The inbound half: accepting connections and turning frames into messages.
//!
//! The accept loop completes handshakes (at most [`MAX_PENDING_HANDSHAKES`] at once;
//! more are refused), attributes each connection to the validator whose key the pinning
//! verifier matched, and hands it to that peer's task — only if the peer has a lower index
//! than ours, since by convention the lower index dials. Anything else is closed and
//! counted.
//!
//! Every connection gets a reader task that accepts the peer's unidirectional streams and
//! reads frames from each in order. Frames that are empty, carry an unknown version or do
//! not decode are dropped and counted; a frame longer than `max_frame_bytes` is counted and
//! closes the connection (the peer's dialer reconnects). Decoded messages go to the one
//! bounded inbound channel, tagged with the sender's index; when that channel is full the
//! reader waits, which stops reading the stream and lets QUIC flow control slow that peer.

use std::sync::Arc;

use bastion_crypto::PublicKey;
use quinn::{Connection, Endpoint, Incoming, RecvStream};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{debug, warn};

use super::endpoint::{authenticated_peer, close_code};
use super::frame::{self, FrameError};
use super::stats::Counters;
use super::Shutdown;

/// Handshakes in progress at once; an unauthenticated flood cannot queue more.
pub const MAX_PENDING_HANDSHAKES: usize = 64;

/// What readers need, shared by all connections of a transport.
pub(crate) struct InboundContext<M> {
    pub(crate) tx: mpsc::Sender<(u16, M)>,
    pub(crate) stats: Arc<Counters>,
    pub(crate) committee: Arc<[PublicKey]>,
    pub(crate) max_frame_bytes: usize,
    pub(crate) shutdown: Shutdown,
}

impl<M> Clone for InboundContext<M> {
    fn clone(&self) -> Self {
        InboundContext {
            tx: self.tx.clone(),
            stats: self.stats.clone(),
            committee: self.committee.clone(),
            max_frame_bytes: self.max_frame_bytes,
            shutdown: self.shutdown.clone(),
        }
    }
}

/// Per-peer slots through which accepted connections reach the peer tasks (`None` for
/// ourselves and for peers we dial).
pub(crate) type Handoffs = Arc<[Option<watch::Sender<Option<Connection>>>]>;

pub(crate) async fn accept_loop(
    endpoint: Endpoint,
    me: u16,
    committee: Arc<[PublicKey]>,
    handoffs: Handoffs,
    stats: Arc<Counters>,
    mut shutdown: Shutdown,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let incoming = tokio::select! {
            _ = shutdown.wait() => return,
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => incoming,
                None => return,
            },
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            Counters::bump(&stats.connections_rejected);
            incoming.refuse();
            continue;
        };
        let (committee, handoffs, stats) = (committee.clone(), handoffs.clone(), stats.clone());
        tokio::spawn(async move {
            admit(incoming, me, &committee, &handoffs, &stats).await;
            drop(permit);
        });
    }
}

async fn admit(incoming: Incoming, me: u16, committee: &[PublicKey], handoffs: &Handoffs, stats: &Counters) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(e) => {
            debug!(%remote, error = %e, "handshake failed");
            Counters::bump(&stats.connections_rejected);
            return;
        }
    };
    let Some(peer) = authenticated_peer(&conn, committee) else {
        Counters::bump(&stats.connections_rejected);
        conn.close(close_code::NOT_AUTHENTICATED, b"not authenticated");
        return;
    };
    let slot = handoffs.get(usize::from(peer)).and_then(Option::as_ref);
    match slot {
        Some(slot) if peer < me => {
            if let Some(old) = slot.send_replace(Some(conn)) {
                old.close(close_code::REPLACED, b"replaced by a newer connection");
            }
        }
        _ => {
            warn!(peer, %remote, "refusing a connection from a validator we dial ourselves");
            Counters::bump(&stats.connections_rejected);
            conn.close(close_code::WRONG_DIRECTION, b"the lower index dials");
        }
    }
}

/// Reads every stream the peer opens on `conn` until the connection ends.
pub(crate) async fn read_connection<M: DeserializeOwned + Send + 'static>(
    conn: Connection,
    peer: u16,
    ctx: InboundContext<M>,
) {
    let mut shutdown = ctx.shutdown.clone();
    loop {
        let stream = tokio::select! {
            _ = shutdown.wait() => return,
            stream = conn.accept_uni() => stream,
        };
        match stream {
            Ok(stream) => {
                tokio::spawn(read_stream(conn.clone(), stream, peer, ctx.clone()));
            }
            Err(_) => return,
        }
    }
}

async fn read_stream<M: DeserializeOwned + Send + 'static>(
    conn: Connection,
    mut stream: RecvStream,
    peer: u16,
    mut ctx: InboundContext<M>,
) {
    loop {
        let read = tokio::select! {
            _ = ctx.shutdown.wait() => return,
            read = frame::read_frame(&mut stream, ctx.max_frame_bytes) => read,
        };
        let payload = match read {
            Ok(Some(payload)) => payload,
            Ok(None) => return,
            Err(FrameError::TooLarge { len, max }) => {
                warn!(peer, len, max, "frame too large; closing the connection");
                Counters::bump(&ctx.stats.frames_too_large);
                conn.close(close_code::FRAME_TOO_LARGE, b"frame too large");
                return;
            }
            Err(FrameError::BadVersion(version)) => {
                debug!(peer, version, "dropping a frame with an unknown version");
                Counters::bump(&ctx.stats.frames_bad_version);
                continue;
            }
            Err(e) if !e.is_fatal() => {
                debug!(peer, error = %e, "dropping a malformed frame");
                Counters::bump(&ctx.stats.frames_undecodable);
                continue;
            }
            Err(e) => {
                debug!(peer, error = %e, "stream ended");
                return;
            }
        };
        let msg = match frame::decode::<M>(&payload) {
            Ok(msg) => msg,
            Err(e) => {
                debug!(peer, error = %e, "dropping an undecodable frame");
                Counters::bump(&ctx.stats.frames_undecodable);
                continue;
            }
        };
        Counters::bump(&ctx.stats.messages_received);
        let delivered = tokio::select! {
            _ = ctx.shutdown.wait() => return,
            delivered = ctx.tx.send((peer, msg)) => delivered,
        };
        if delivered.is_err() {
            return;
        }
    }
}
