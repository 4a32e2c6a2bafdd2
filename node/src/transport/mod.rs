//! Validator-to-validator transport over QUIC.
//!
//! [`Transport::start`] opens one QUIC endpoint per validator and keeps one long-lived,
//! mutually authenticated connection to every other committee member. What it guarantees:
//!
//! * **Authentication** ([`identity`], [`pinning`]): a validator's TLS certificate carries
//!   its ed25519 validator key; a connection is accepted only if the peer's key is a
//!   committee key (exactly the dialled validator's key when we dial) and the peer proved
//!   it holds that key in the handshake. Every inbound message is tagged with the index of
//!   the validator that key belongs to, so no peer can speak for another.
//! * **One connection per pair, with reconnects** (`peer.rs`): the lower index dials, the
//!   higher accepts; lost connections are redialled with exponential back-off.
//! * **Order**: one long-lived unidirectional stream per connection, so messages from one
//!   validator to another are delivered in the order they were sent (messages in flight
//!   when a connection dies may be lost; consensus retransmits on timeouts).
//! * **Never blocking senders**: [`TransportHandle::send`] and [`TransportHandle::broadcast`]
//!   put an encoded frame on each destination's bounded queue or drop it and say so
//!   ([`SendError::QueueFull`], counted in [`TransportStats::dropped_full`]). A slow or
//!   dead peer never delays the others. A broadcast is encoded once and shared.
//! * **Bounded, checked input** ([`frame`], `inbound.rs`): frames are
//!   `u32 LE length || version || bincode`, the length is checked against
//!   `max_frame_bytes` before anything is read, malformed frames are dropped and counted,
//!   and decoded messages go to one bounded channel whose back-pressure reaches the
//!   sending peer through QUIC flow control.
//!
//! Dropping the last [`TransportHandle`] (or calling [`TransportHandle::shutdown`]) closes
//! every connection and stops every task.

mod config;
pub mod endpoint;
mod error;
pub mod frame;
pub mod identity;
mod inbound;
mod peer;
pub mod pinning;
mod stats;

use std::marker::PhantomData;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use quinn::Endpoint;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use config::{TransportConfig, DEFAULT_INBOUND_QUEUE_LEN, DEFAULT_SEND_QUEUE_LEN};
pub use endpoint::SERVER_NAME;
pub use error::{SendError, TransportError};
pub use frame::{DEFAULT_MAX_FRAME_BYTES, PROTOCOL_VERSION};
pub use pinning::ALPN;
pub use stats::TransportStats;

use endpoint::close_code;
use frame::FrameError;
use identity::TlsIdentity;
use inbound::{accept_loop, Handoffs, InboundContext};
use peer::{Backoff, ConnectionSource, PeerLink};
use stats::Counters;

/// Fires once, when the transport shuts down or its handle is dropped.
#[derive(Clone)]
pub(crate) struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Resolves once shutdown has begun; cancel-safe.
    pub(crate) async fn wait(&mut self) {
        while !*self.0.borrow_and_update() {
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }
}

/// The receiving end of the transport: `(sender index, message)` in arrival order.
pub type Inbound<M> = mpsc::Receiver<(u16, M)>;

/// Starts transports; see the module documentation.
pub struct Transport<M>(PhantomData<fn(M)>);

impl<M: Serialize + DeserializeOwned + Send + 'static> Transport<M> {
    /// Binds `config.listen` and starts the transport. Must be called within a Tokio runtime.
    pub fn start(config: TransportConfig) -> Result<(TransportHandle<M>, Inbound<M>), TransportError> {
        config.validate()?;
        let socket = UdpSocket::bind(config.listen)
            .map_err(|source| TransportError::Bind { addr: config.listen, source })?;
        Self::start_on(config, socket)
    }

    /// Starts the transport on an already bound UDP socket (useful to learn every
    /// validator's address before any of them starts, e.g. with port 0 in tests).
    pub fn start_on(
        config: TransportConfig,
        socket: UdpSocket,
    ) -> Result<(TransportHandle<M>, Inbound<M>), TransportError> {
        let committee = config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| TransportError::NoRuntime)?;
        let local_addr =
            socket.local_addr().map_err(|source| TransportError::Bind { addr: config.listen, source })?;
        let identity = TlsIdentity::new(&config.key)?;
        let endpoint =
            endpoint::open_endpoint(&config.key, &identity, committee.clone(), socket, local_addr)?;

        let stats = Arc::new(Counters::default());
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shutdown = Shutdown(shutdown_rx);
        let (inbound_tx, inbound_rx) = mpsc::channel(config.inbound_queue_len);
        let inbound = InboundContext {
            tx: inbound_tx,
            stats: stats.clone(),
            committee: committee.clone(),
            max_frame_bytes: config.max_frame_bytes,
            shutdown: shutdown.clone(),
        };

        let mut peers = Vec::with_capacity(config.committee.len());
        let mut handoffs = Vec::with_capacity(config.committee.len());
        let mut tasks = Vec::with_capacity(config.committee.len());
        for (peer, (peer_key, peer_addr)) in (0u16..).zip(&config.committee) {
            if peer == config.me {
                peers.push(None);
                handoffs.push(None);
                continue;
            }
            let source = if config.me < peer {
                handoffs.push(None);
                ConnectionSource::Dial {
                    endpoint: endpoint.clone(),
                    addr: *peer_addr,
                    config: endpoint::client_config(&identity, *peer_key)?,
                    backoff: Backoff::new(),
                }
            } else {
                let (handoff_tx, handoff) = watch::channel(None);
                handoffs.push(Some(handoff_tx));
                ConnectionSource::Accept { handoff }
            };
            let (queue_tx, queue) = mpsc::channel(config.send_queue_len);
            let connected = Arc::new(AtomicBool::new(false));
            let link = PeerLink {
                peer,
                source,
                queue,
                connected: connected.clone(),
                inbound: inbound.clone(),
                shutdown: shutdown.clone(),
            };
            tasks.push(runtime.spawn(link.run()));
            peers.push(Some(PeerSlot { queue: queue_tx, connected }));
        }
        let handoffs: Handoffs = handoffs.into();
        tasks.push(runtime.spawn(accept_loop(
            endpoint.clone(),
            config.me,
            committee,
            handoffs,
            stats.clone(),
            shutdown,
        )));

        let inner = Inner {
            me: config.me,
            local_addr,
            max_frame_bytes: config.max_frame_bytes,
            peers,
            stats,
            shutdown: shutdown_tx,
            endpoint: Mutex::new(Some(endpoint)),
            tasks: Mutex::new(tasks),
        };
        Ok((TransportHandle { inner: Arc::new(inner), _msg: PhantomData }, inbound_rx))
    }
}

struct PeerSlot {
    queue: mpsc::Sender<Bytes>,
    connected: Arc<AtomicBool>,
}

struct Inner {
    me: u16,
    local_addr: SocketAddr,
    max_frame_bytes: usize,
    peers: Vec<Option<PeerSlot>>,
    stats: Arc<Counters>,
    shutdown: watch::Sender<bool>,
    endpoint: Mutex<Option<Endpoint>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Inner {
    /// Signals every task and closes every connection; returns the endpoint if this call
    /// was the first to close it.
    fn close(&self) -> Option<Endpoint> {
        self.shutdown.send_replace(true);
        let endpoint = self.endpoint.lock().ok()?.take()?;
        endpoint.close(close_code::SHUTDOWN, b"shutdown");
        Some(endpoint)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close();
    }
}

/// The outcome of a broadcast: which peers the message could not be queued for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastOutcome {
    /// Peers whose queue accepted the message.
    pub queued: usize,
    /// Peers whose queue was full (or that are shut down); the message was dropped for them.
    pub dropped: Vec<u16>,
}

/// Sends messages to the committee. Cheap to clone; the transport stops when the last
/// clone is dropped or [`TransportHandle::shutdown`] is called.
pub struct TransportHandle<M> {
    inner: Arc<Inner>,
    _msg: PhantomData<fn(M)>,
}

impl<M> std::fmt::Debug for TransportHandle<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportHandle")
            .field("me", &self.inner.me)
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

impl<M> Clone for TransportHandle<M> {
    fn clone(&self) -> Self {
        TransportHandle { inner: self.inner.clone(), _msg: PhantomData }
    }
}

impl<M: Serialize> TransportHandle<M> {
    /// Queues `msg` for validator `to` without blocking.
    pub fn send(&self, to: u16, msg: &M) -> Result<(), SendError> {
        let frame = self.encode(msg)?;
        self.send_frame(to, frame)
    }

    /// Queues `msg` for every other validator without blocking; encoded once.
    pub fn broadcast(&self, msg: &M) -> Result<BroadcastOutcome, SendError> {
        let frame = self.encode(msg)?;
        let mut outcome = BroadcastOutcome::default();
        for to in self.peers() {
            match self.send_frame(to, frame.clone()) {
                Ok(()) => outcome.queued += 1,
                Err(_) => outcome.dropped.push(to),
            }
        }
        Ok(outcome)
    }

    fn encode(&self, msg: &M) -> Result<Bytes, SendError> {
        frame::encode(msg, self.inner.max_frame_bytes).map_err(|e| match e {
            FrameError::TooLarge { len, max } => SendError::TooLarge { size: len, max },
            other => SendError::Encode(other.to_string()),
        })
    }

    fn send_frame(&self, to: u16, frame: Bytes) -> Result<(), SendError> {
        let slot = self
            .inner
            .peers
            .get(usize::from(to))
            .and_then(Option::as_ref)
            .ok_or(SendError::UnknownPeer(to))?;
        slot.queue.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                Counters::bump(&self.inner.stats.dropped_full);
                SendError::QueueFull(to)
            }
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        })
    }
}

impl<M> TransportHandle<M> {
    /// Our committee index.
    pub fn me(&self) -> u16 {
        self.inner.me
    }

    /// The address the endpoint is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Indices of every other validator.
    pub fn peers(&self) -> impl Iterator<Item = u16> + '_ {
        (0u16..).zip(&self.inner.peers).filter_map(|(i, slot)| slot.as_ref().map(|_| i))
    }

    /// Whether we currently have an authenticated connection to `peer`.
    pub fn is_connected(&self, peer: u16) -> bool {
        self.inner
            .peers
            .get(usize::from(peer))
            .and_then(Option::as_ref)
            .is_some_and(|slot| slot.connected.load(Ordering::Relaxed))
    }

    pub fn stats(&self) -> TransportStats {
        self.inner.stats.snapshot()
    }

    /// Closes every connection, waits (briefly) for the peers to be told, and stops every
    /// task. Later sends fail with [`SendError::Closed`]. Idempotent.
    pub async fn shutdown(&self) {
        let endpoint = self.inner.close();
        let tasks = match self.inner.tasks.lock() {
            Ok(mut tasks) => std::mem::take(&mut *tasks),
            Err(_) => Vec::new(),
        };
        for task in tasks {
            let _ = task.await;
        }
        if let Some(endpoint) = endpoint {
            let drained = tokio::time::timeout(SHUTDOWN_DRAIN, endpoint.wait_idle()).await;
            if drained.is_err() {
                tracing::debug!("connections still draining at shutdown");
            }
        }
    }
}

/// How long [`TransportHandle::shutdown`] waits for CONNECTION_CLOSE to be delivered.
const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(1);
