//! The outbound half of one peer: its send queue, its connection and the reconnect policy.
//!
//! Each peer has one task ([`PeerLink::run`]) that owns the receiving end of the peer's
//! bounded send queue and the peer's current connection. Guarantees:
//! * **One connection per pair.** The validator with the lower index dials; the higher one
//!   only accepts (the accept loop hands it the connection). An accepted connection from
//!   the same peer replaces the current one, so a peer that restarted is picked up at once.
//! * **Reconnect with back-off.** A dialer redials a lost or refused connection after
//!   100 ms, doubling up to 5 s; the back-off starts over once a connection has stayed up
//!   for [`STABLE_CONNECTION`] (a peer that completes handshakes and then drops us at once
//!   — e.g. because it rejects our certificate after the TLS 1.3 client has finished —
//!   is still redialled ever more slowly).
//! * **Order.** Frames go out on one long-lived unidirectional stream per connection, in
//!   queue order, so messages from one validator to another arrive in the order they were
//!   sent. Frames written to a connection that then dies may be lost; none is duplicated.
//! * **Isolation.** A slow or dead peer only fills its own queue (the caller then sees
//!   [`SendError::QueueFull`](super::SendError)); no other peer waits on it. While
//!   disconnected, up to `send_queue_len` messages wait for the next connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quinn::{Connection, Endpoint, SendStream};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

use super::endpoint::{authenticated_peer, close_code, SERVER_NAME};
use super::inbound::{read_connection, InboundContext};
use super::stats::Counters;
use super::Shutdown;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A connection that lasted this long resets the back-off.
pub(crate) const STABLE_CONNECTION: Duration = Duration::from_secs(1);

/// Where a peer's connections come from.
pub(crate) enum ConnectionSource {
    /// We have the lower index: dial `addr`, checking the peer's key with `config`.
    Dial { endpoint: Endpoint, addr: SocketAddr, config: quinn::ClientConfig, backoff: Backoff },
    /// We have the higher index: the accept loop hands us the peer's newest connection.
    Accept { handoff: watch::Receiver<Option<Connection>> },
}

/// Exponential back-off between dial attempts.
pub(crate) struct Backoff {
    delay: Duration,
    wait_before_next: bool,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff { delay: BACKOFF_MIN, wait_before_next: false }
    }

    /// The pause before the next attempt, if any; each pause doubles the next one.
    fn next_pause(&mut self) -> Option<Duration> {
        if !std::mem::replace(&mut self.wait_before_next, true) {
            return None;
        }
        let pause = self.delay;
        self.delay = (self.delay * 2).min(BACKOFF_MAX);
        Some(pause)
    }

    /// A connection ended after `lifetime`: if it was stable, the next redial starts over.
    fn connection_ended(&mut self, lifetime: Duration) {
        if lifetime >= STABLE_CONNECTION {
            self.delay = BACKOFF_MIN;
        }
    }
}

enum Ended {
    /// The transport is shutting down.
    Shutdown,
    /// The connection failed or was closed.
    Lost,
    /// The peer connected again; this connection supersedes the served one.
    Replaced(Connection),
}

pub(crate) struct PeerLink<M> {
    pub(crate) peer: u16,
    pub(crate) source: ConnectionSource,
    pub(crate) queue: mpsc::Receiver<Bytes>,
    pub(crate) connected: Arc<AtomicBool>,
    pub(crate) inbound: InboundContext<M>,
    pub(crate) shutdown: Shutdown,
}

impl<M: DeserializeOwned + Send + 'static> PeerLink<M> {
    pub(crate) async fn run(mut self) {
        let mut next = None;
        loop {
            let conn = match next.take() {
                Some(conn) => conn,
                None => match self.next_connection().await {
                    Some(conn) => conn,
                    None => return,
                },
            };
            Counters::bump(&self.stats().connections_established);
            info!(peer = self.peer, remote = %conn.remote_address(), "connected to validator");
            self.connected.store(true, Ordering::Relaxed);
            tokio::spawn(read_connection(conn.clone(), self.peer, self.inbound.clone()));
            let since = Instant::now();
            let ended = self.serve(&conn).await;
            self.connected.store(false, Ordering::Relaxed);
            if let ConnectionSource::Dial { backoff, .. } = &mut self.source {
                backoff.connection_ended(since.elapsed());
            }
            match ended {
                Ended::Shutdown => {
                    conn.close(close_code::SHUTDOWN, b"shutdown");
                    return;
                }
                Ended::Lost => {
                    info!(peer = self.peer, reason = ?conn.close_reason(), "lost validator");
                }
                Ended::Replaced(newer) => {
                    conn.close(close_code::REPLACED, b"replaced by a newer connection");
                    next = Some(newer);
                }
            }
        }
    }

    fn stats(&self) -> &Counters {
        &self.inbound.stats
    }

    /// Waits for the next usable connection; `None` once shutting down.
    async fn next_connection(&mut self) -> Option<Connection> {
        match &mut self.source {
            ConnectionSource::Dial { endpoint, addr, config, backoff } => loop {
                if let Some(pause) = backoff.next_pause() {
                    tokio::select! {
                        _ = self.shutdown.wait() => return None,
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
                let connecting = match endpoint.connect_with(config.clone(), *addr, SERVER_NAME) {
                    Ok(connecting) => connecting,
                    Err(e) => {
                        debug!(peer = self.peer, error = %e, "cannot dial");
                        Counters::bump(&self.inbound.stats.dial_failures);
                        continue;
                    }
                };
                let result = tokio::select! {
                    _ = self.shutdown.wait() => return None,
                    result = connecting => result,
                };
                match result {
                    Ok(conn) if authenticated_peer(&conn, &self.inbound.committee) == Some(self.peer) => {
                        return Some(conn);
                    }
                    Ok(conn) => {
                        conn.close(close_code::NOT_AUTHENTICATED, b"unexpected peer identity");
                        Counters::bump(&self.inbound.stats.dial_failures);
                    }
                    Err(e) => {
                        debug!(peer = self.peer, error = %e, "dial failed");
                        Counters::bump(&self.inbound.stats.dial_failures);
                    }
                }
            },
            ConnectionSource::Accept { handoff } => loop {
                tokio::select! {
                    _ = self.shutdown.wait() => return None,
                    changed = handoff.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                    }
                }
                if let Some(conn) = handoff.borrow_and_update().clone() {
                    if conn.close_reason().is_none() {
                        return Some(conn);
                    }
                }
            },
        }
    }

    /// Sends queued frames on `conn` until it ends, is replaced, or we shut down.
    async fn serve(&mut self, conn: &Connection) -> Ended {
        let opened = tokio::select! {
            _ = self.shutdown.wait() => return Ended::Shutdown,
            newer = replacement(&mut self.source) => return Ended::Replaced(newer),
            opened = conn.open_uni() => opened,
        };
        let Ok(mut stream) = opened else { return Ended::Lost };
        loop {
            let frame = tokio::select! {
                _ = self.shutdown.wait() => return finish(stream, Ended::Shutdown),
                newer = replacement(&mut self.source) => return Ended::Replaced(newer),
                _ = conn.closed() => return Ended::Lost,
                frame = self.queue.recv() => frame,
            };
            // Every sender is gone: the transport handle was dropped.
            let Some(frame) = frame else { return finish(stream, Ended::Shutdown) };
            let written = tokio::select! {
                _ = self.shutdown.wait() => return Ended::Shutdown,
                newer = replacement(&mut self.source) => return Ended::Replaced(newer),
                written = stream.write_chunk(frame) => written,
            };
            match written {
                Ok(()) => Counters::bump(&self.inbound.stats.frames_sent),
                Err(e) => {
                    debug!(peer = self.peer, error = %e, "write failed");
                    Counters::bump(&self.inbound.stats.send_failures);
                    return Ended::Lost;
                }
            }
        }
    }
}

/// Resolves with a newer connection from the same peer; never resolves for a dialer.
async fn replacement(source: &mut ConnectionSource) -> Connection {
    if let ConnectionSource::Accept { handoff } = source {
        while handoff.changed().await.is_ok() {
            if let Some(conn) = handoff.borrow_and_update().clone() {
                return conn;
            }
        }
    }
    std::future::pending().await
}

fn finish(mut stream: SendStream, ended: Ended) -> Ended {
    // Best effort: tells the reader the stream ended on a frame boundary.
    let _ = stream.finish();
    ended
}
