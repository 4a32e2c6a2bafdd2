//! The QUIC endpoint of a validator and the identity of its connections.
//!
//! One endpoint per validator serves both directions: it accepts committee members and
//! dials peers with a client configuration pinned to the dialled validator's key. This
//! module owns the QUIC parameters (keep-alive, idle timeout, stream limits), the
//! restart-stable endpoint secrets (stateless-reset and connection-ID keys derived from the
//! validator key), and `authenticated_peer`, the one place that turns a handshake into a
//! validator index.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use bastion_crypto::{KeyPair, PublicKey};
use quinn::crypto::rustls::{HandshakeData, QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, EndpointConfig, IdleTimeout, VarInt};
use quinn_proto::HashedConnectionIdGenerator;
use rustls::pki_types::CertificateDer;

use super::identity::{certified_key, endpoint_secrets, TlsIdentity};
use super::pinning::{client_tls_config, server_tls_config, ALPN};
use super::TransportError;

/// The TLS server name used when dialling; pinning ignores names, QUIC needs one.
pub const SERVER_NAME: &str = "bastion-validator";

/// A dead peer is noticed after this long without packets…
const IDLE_TIMEOUT_MS: u32 = 10_000;
/// …and keep-alives make sure a live, idle one never reaches it.
const KEEP_ALIVE: Duration = Duration::from_secs(2);
/// Streams a peer may have open towards us at once (we use one; a few allow overlap
/// around reconnects).
const MAX_INBOUND_STREAMS: u32 = 8;

/// Kernel buffer asked for on each side of the QUIC socket. Linux's default (208 KiB) is
/// less than one round of batch traffic at 50,000 tx/s: datagrams that arrive while it is
/// full are dropped, and QUIC answers the loss by halving its congestion window. Measured on
/// a local testnet at 50,000 opaque tx/s: 3 % of the datagrams dropped with the default.
/// The kernel caps the request at `net.core.rmem_max` / `wmem_max`.
pub const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// Largest datagram payload we probe for and accept. Path MTU discovery settles on what the
/// path carries (1,452 on a plain Ethernet link, this on loopback or jumbo frames); fewer,
/// larger packets cut QUIC's per-packet work (encryption setup, acknowledgements, system
/// calls). The bound: quinn hands the kernel up to 10 datagrams in one segmentation-offload
/// send, and Linux refuses a send of more than 64 KiB, so 10 × 8,952 (a jumbo frame) failed
/// every full send and stalled the connections under load.
pub const MAX_UDP_PAYLOAD: u16 = 6_500;
/// Datagrams quinn 0.11 puts in one segmentation-offload send (its `MAX_TRANSMIT_SEGMENTS`).
const QUINN_SEGMENTS_PER_SEND: usize = 10;
/// The largest UDP payload Linux sends in one call (IPv4: 65,535 less the IP and UDP headers).
const LARGEST_SEND: usize = 65_507;
const _: () = assert!(MAX_UDP_PAYLOAD as usize * QUINN_SEGMENTS_PER_SEND <= LARGEST_SEND);

/// Application error codes of CONNECTION_CLOSE frames we send.
pub(crate) mod close_code {
    use quinn::VarInt;

    pub const SHUTDOWN: VarInt = VarInt::from_u32(0);
    pub const REPLACED: VarInt = VarInt::from_u32(1);
    pub const WRONG_DIRECTION: VarInt = VarInt::from_u32(2);
    pub const FRAME_TOO_LARGE: VarInt = VarInt::from_u32(3);
    pub const NOT_AUTHENTICATED: VarInt = VarInt::from_u32(4);
}

fn transport_params() -> Arc<quinn::TransportConfig> {
    let mut params = quinn::TransportConfig::default();
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(MAX_UDP_PAYLOAD);
    params.mtu_discovery_config(Some(mtu));
    params
        .max_concurrent_bidi_streams(VarInt::from_u32(0))
        .max_concurrent_uni_streams(VarInt::from_u32(MAX_INBOUND_STREAMS))
        .keep_alive_interval(Some(KEEP_ALIVE))
        .max_idle_timeout(Some(IdleTimeout::from(VarInt::from_u32(IDLE_TIMEOUT_MS))));
    Arc::new(params)
}

/// QUIC server configuration accepting any committee member (mutual TLS, pinned keys).
pub fn server_config(
    identity: &TlsIdentity,
    committee: Arc<[PublicKey]>,
) -> Result<quinn::ServerConfig, TransportError> {
    let tls = QuicServerConfig::try_from(server_tls_config(identity, committee)?)
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(tls));
    config.transport_config(transport_params());
    Ok(config)
}

/// QUIC client configuration for dialling the validator whose key is `peer`.
pub fn client_config(identity: &TlsIdentity, peer: PublicKey) -> Result<quinn::ClientConfig, TransportError> {
    let tls = QuicClientConfig::try_from(client_tls_config(identity, peer)?)
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(tls));
    config.transport_config(transport_params());
    Ok(config)
}

/// Builds the endpoint on an already bound socket.
pub(crate) fn open_endpoint(
    key: &KeyPair,
    identity: &TlsIdentity,
    committee: Arc<[PublicKey]>,
    socket: UdpSocket,
    addr: SocketAddr,
) -> Result<Endpoint, TransportError> {
    size_socket_buffers(&socket);
    let secrets = endpoint_secrets(key);
    let cid_key = secrets.cid_key;
    let mut endpoint_config = EndpointConfig::new(Arc::new(secrets.reset_key));
    endpoint_config
        .max_udp_payload_size(MAX_UDP_PAYLOAD)
        .map_err(|_| TransportError::InvalidConfig("the maximum UDP payload is outside 1,200..=65,527"))?;
    endpoint_config.cid_generator(move || Box::new(HashedConnectionIdGenerator::from_key(cid_key)));
    Endpoint::new(
        endpoint_config,
        Some(server_config(identity, committee)?),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|source| TransportError::Bind { addr, source })
}

/// Asks for [`SOCKET_BUFFER_BYTES`] on both sides of `socket`, and says so when the kernel
/// granted less (the node still runs, with more loss under load).
fn size_socket_buffers(socket: &UdpSocket) {
    let socket = socket2::SockRef::from(socket);
    // Linux reports twice the size it granted (it counts its bookkeeping too).
    let granted = |reported: usize| if cfg!(target_os = "linux") { reported / 2 } else { reported };
    let receive = socket
        .set_recv_buffer_size(SOCKET_BUFFER_BYTES)
        .and_then(|()| socket.recv_buffer_size())
        .map(granted);
    let send = socket
        .set_send_buffer_size(SOCKET_BUFFER_BYTES)
        .and_then(|()| socket.send_buffer_size())
        .map(granted);
    match (receive, send) {
        (Ok(receive), Ok(send)) if receive >= SOCKET_BUFFER_BYTES && send >= SOCKET_BUFFER_BYTES => {
            tracing::debug!(receive, send, "QUIC socket buffers sized");
        }
        (receive, send) => tracing::warn!(
            wanted = SOCKET_BUFFER_BYTES,
            receive = ?receive,
            send = ?send,
            "the QUIC socket's buffers are smaller than asked: expect dropped datagrams under load \
             (raise net.core.rmem_max and net.core.wmem_max)"
        ),
    }
}

/// The committee index of the peer on an established connection: the negotiated ALPN must
/// be ours and the (already verified) certificate's key must be a committee key.
pub(crate) fn authenticated_peer(conn: &Connection, committee: &[PublicKey]) -> Option<u16> {
    let handshake = conn.handshake_data()?.downcast::<HandshakeData>().ok()?;
    if handshake.protocol.as_deref() != Some(ALPN) {
        return None;
    }
    let chain = conn.peer_identity()?.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    let key = certified_key(chain.first()?)?;
    let index = committee.iter().position(|k| *k == key)?;
    u16::try_from(index).ok()
}
