//! Turning untrusted request parts into typed values, or into an [`HttpError`].
//!
//! axum's own extractors reject with plain text; the wrappers here ([`ApiPath`],
//! [`ApiQuery`]) re-shape those rejections into the API's JSON errors, and bodies are read by
//! [`read_body`], which stops at a byte limit instead of buffering whatever a client sends.
//! Hex parsers accept an optional `0x` prefix and never panic.

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use bastion_crypto::Digest;
use bastion_ledger::{Address, MAX_STORAGE_KEY_BYTES};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::de::DeserializeOwned;

use super::error::HttpError;

/// Limit for JSON bodies other than transactions.
pub const MAX_JSON_BODY_BYTES: usize = 64 * 1024;

/// Path parameters, with rejections as JSON `bad_request`.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(HttpError::bad_request(format!("bad path: {}", rejection.body_text()))),
        }
    }
}

/// Query parameters, with rejections as JSON `bad_request`.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(HttpError::bad_request(rejection.body_text())),
        }
    }
}

/// The body encodings the API accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Binary,
}

/// Which of `allowed` the request's `Content-Type` is; 415 for anything else, including a
/// missing header.
pub fn body_kind(headers: &HeaderMap, allowed: &[BodyKind]) -> Result<BodyKind, HttpError> {
    let raw = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    let essence = raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let kind = match essence.as_str() {
        "application/json" => Some(BodyKind::Json),
        "application/octet-stream" => Some(BodyKind::Binary),
        _ => None,
    };
    match kind {
        Some(kind) if allowed.contains(&kind) => Ok(kind),
        _ => {
            let accepted: Vec<&str> = allowed
                .iter()
                .map(|kind| match kind {
                    BodyKind::Json => "application/json",
                    BodyKind::Binary => "application/octet-stream",
                })
                .collect();
            let got =
                if raw.is_empty() { "no Content-Type".to_string() } else { format!("Content-Type {raw:?}") };
            Err(HttpError::unsupported_media_type(format!("{got}; expected {}", accepted.join(" or "))))
        }
    }
}

/// Reads the whole body, failing with 413 as soon as it is known to exceed `limit`: at once
/// from `Content-Length`, otherwise when the bytes received pass it.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, HttpError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if let Some(declared) = declared {
        if declared > limit as u64 {
            return Err(too_large(limit));
        }
    }
    let mut buffer = BytesMut::new();
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| HttpError::bad_request(format!("could not read the body: {e}")))?;
        if buffer.len().saturating_add(chunk.len()) > limit {
            return Err(too_large(limit));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

fn too_large(limit: usize) -> HttpError {
    HttpError::too_large(format!("request body exceeds the limit of {limit} bytes"))
}

/// A JSON body: `Content-Type: application/json`, at most `limit` bytes, and valid for `T`.
pub async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, HttpError> {
    body_kind(headers, &[BodyKind::Json])?;
    let bytes = read_body(headers, body, limit).await?;
    parse_json(&bytes)
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    serde_json::from_slice(bytes).map_err(|e| HttpError::bad_request(format!("invalid JSON body: {e}")))
}

fn strip_0x(s: &str) -> &str {
    s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s)
}

/// Exactly 32 bytes as 64 hex digits.
fn hex32(what: &str, s: &str) -> Result<[u8; 32], HttpError> {
    let digits = strip_0x(s);
    if digits.len() != 64 {
        return Err(HttpError::bad_request(format!(
            "{what} must be 64 hex digits (optionally 0x-prefixed), got {} characters",
            digits.len()
        )));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(digits, &mut out)
        .map_err(|e| HttpError::bad_request(format!("{what} is not valid hex: {e}")))?;
    Ok(out)
}

pub fn parse_digest(what: &str, s: &str) -> Result<Digest, HttpError> {
    hex32(what, s).map(Digest)
}

pub fn parse_address(what: &str, s: &str) -> Result<Address, HttpError> {
    hex32(what, s).map(Address)
}

/// Any even number of hex digits; errors are `bad_request`.
pub fn parse_hex(what: &str, s: &str) -> Result<Vec<u8>, HttpError> {
    hex::decode(strip_0x(s)).map_err(|e| HttpError::bad_request(format!("{what} is not valid hex: {e}")))
}

/// A contract storage key: hex of at most [`MAX_STORAGE_KEY_BYTES`] bytes.
pub fn parse_storage_key(s: &str) -> Result<Vec<u8>, HttpError> {
    let digits = strip_0x(s);
    if digits.len() > 2 * MAX_STORAGE_KEY_BYTES {
        return Err(HttpError::bad_request(format!(
            "storage key is longer than {MAX_STORAGE_KEY_BYTES} bytes"
        )));
    }
    parse_hex("storage key", digits)
}
