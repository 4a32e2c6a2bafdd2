//! [`ClientError`]: everything that can go wrong talking to a validator, classified so a
//! caller (and the CLI's exit code) can tell "the node said no" from "no node answered".

use std::time::Duration;

use thiserror::Error;

use crate::api::ErrorBody;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("invalid node URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// No answer: connection refused, DNS, reset, or a timeout.
    #[error("cannot reach the node at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The node answered with an error ([`ErrorBody`]) and an HTTP status.
    #[error("{url}: {} ({}, HTTP {status})", body.message, body.code)]
    Api { url: String, status: u16, body: ErrorBody, retry_after: Option<Duration> },
    /// The node answered something that is not the documented JSON.
    #[error("{url}: unexpected answer (HTTP {status}): {reason}")]
    Decode { url: String, status: u16, reason: String },
    /// The transaction could not be encoded or signed locally.
    #[error("cannot encode the transaction: {0}")]
    Encode(String),
    /// The event stream ended or broke and could not be resumed.
    #[error("event stream from {url}: {reason}")]
    Stream { url: String, reason: String },
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's error code (`nonce_too_low`, `mempool_full`, ...), for API errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { body, .. } => Some(&body.code),
            _ => None,
        }
    }

    /// True when no node answered (or it answered 503 "not ready"): trying again later, or
    /// another node, may help.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. } | ClientError::Stream { .. })
            || self.status() == Some(503)
    }

    /// True for a 4xx answer: the request itself was refused.
    pub fn is_rejection(&self) -> bool {
        self.status().is_some_and(|s| (400..500).contains(&s))
    }
}
