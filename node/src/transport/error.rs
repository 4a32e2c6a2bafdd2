//! Typed errors of the transport.
//!
//! [`TransportError`] is what can go wrong while starting a transport (configuration, TLS
//! identity, socket). [`SendError`] is the per-call result of queueing a message: sends
//! never block, so a full queue is reported, not waited on.

use std::io;
use std::net::SocketAddr;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TransportError {
    #[error("the committee is empty or has more than 65535 validators ({0})")]
    InvalidCommitteeSize(usize),
    #[error("validator index {me} is not in the committee of {size}")]
    NotInCommittee { me: u16, size: usize },
    #[error("our key {ours} is not the committee's key {expected} for validator {me}")]
    KeyMismatch { me: u16, ours: String, expected: String },
    #[error("validators {first} and {second} have the same public key")]
    DuplicateKey { first: u16, second: u16 },
    #[error("invalid transport configuration: {0}")]
    InvalidConfig(&'static str),
    #[error("cannot bind the QUIC socket to {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot build the TLS identity: {0}")]
    Identity(String),
    #[error("cannot configure TLS: {0}")]
    Tls(String),
    #[error("the transport must be started from within a Tokio runtime")]
    NoRuntime,
}

impl From<rustls::Error> for TransportError {
    fn from(e: rustls::Error) -> Self {
        TransportError::Tls(e.to_string())
    }
}

/// Why a message was not queued. Only [`SendError::Encode`] and [`SendError::TooLarge`] say
/// something about the message itself; the others are about the destination.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    #[error("validator {0} is not a peer (unknown index or ourselves)")]
    UnknownPeer(u16),
    #[error("the send queue to validator {0} is full; message dropped")]
    QueueFull(u16),
    #[error("the transport is shut down")]
    Closed,
    #[error("cannot encode the message: {0}")]
    Encode(String),
    #[error("encoded frame of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
}
