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
    let secrets = endpoint_secrets(key);
    let cid_key = secrets.cid_key;
    let mut endpoint_config = EndpointConfig::new(Arc::new(secrets.reset_key));
    endpoint_config.cid_generator(move || Box::new(HashedConnectionIdGenerator::from_key(cid_key)));
    Endpoint::new(
        endpoint_config,
        Some(server_config(identity, committee)?),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|source| TransportError::Bind { addr, source })
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
