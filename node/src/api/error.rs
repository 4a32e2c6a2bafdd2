//! Every failure the HTTP API reports, as one JSON shape.
//!
//! [`HttpError`] is the only error type handlers return: a status, a machine-readable code
//! from [`codes`] and a message, served as [`ErrorBody`] (`{"code","message"}`). Node errors
//! ([`ApiError`]) map to it one to one; routing failures (unknown path, wrong method) and
//! malformed requests get the same shape, so a client never sees a plain-text error.

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bastion_client::api::{codes, ErrorBody};

use super::service::ApiError;

/// Code for a request whose path exists but not with that method.
pub const METHOD_NOT_ALLOWED: &str = codes::METHOD_NOT_ALLOWED;

/// Seconds a client should wait before resubmitting to a full mempool.
const MEMPOOL_RETRY_AFTER_SECS: u32 = 1;

/// A failed request: what the client gets back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// `Retry-After` header, in seconds.
    pub retry_after: Option<u32>,
}

impl HttpError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        HttpError { status, code, message: message.into(), retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }

    pub fn bad_encoding(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::BAD_ENCODING, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, codes::TOO_LARGE, message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, codes::UNSUPPORTED_MEDIA_TYPE, message)
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody { code: self.code.to_string(), message: self.message.clone() }
    }
}

impl From<ApiError> for HttpError {
    fn from(err: ApiError) -> Self {
        let message = err.to_string();
        let (status, code) = match &err {
            ApiError::BadEncoding(_) => (StatusCode::BAD_REQUEST, codes::BAD_ENCODING),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, codes::BAD_REQUEST),
            ApiError::BadSignature => (StatusCode::UNAUTHORIZED, codes::BAD_SIGNATURE),
            ApiError::WrongChain { .. } => (StatusCode::UNPROCESSABLE_ENTITY, codes::WRONG_CHAIN),
            ApiError::Expired { .. } => (StatusCode::UNPROCESSABLE_ENTITY, codes::EXPIRED),
            ApiError::InsufficientFunds { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, codes::INSUFFICIENT_FUNDS)
            }
            ApiError::NonceTooLow { .. } => (StatusCode::CONFLICT, codes::NONCE_TOO_LOW),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, codes::TOO_LARGE),
            ApiError::MempoolFull(_) => (StatusCode::TOO_MANY_REQUESTS, codes::MEMPOOL_FULL),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
            ApiError::UnknownContract(_) => (StatusCode::NOT_FOUND, codes::UNKNOWN_CONTRACT),
            ApiError::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, codes::NOT_READY),
            ApiError::Internal(detail) => {
                // The detail may name files or internal state: it goes to the operator's log,
                // the client gets a pointer there.
                tracing::error!(%detail, "API request failed with an internal error");
                let message = "internal error; details are in the node's log";
                return Self::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, message);
            }
        };
        let mut http = Self::new(status, code, message);
        if matches!(err, ApiError::MempoolFull(_)) {
            http.retry_after = Some(MEMPOOL_RETRY_AFTER_SECS);
        }
        http
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Fallback for paths no route matches.
pub async fn unknown_route(method: Method, uri: Uri) -> HttpError {
    HttpError::not_found(format!("no endpoint {method} {}", uri.path()))
}

/// Fallback for a known path with a method it does not serve (axum adds `Allow`).
pub async fn wrong_method(method: Method, uri: Uri) -> HttpError {
    HttpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        METHOD_NOT_ALLOWED,
        format!("{} does not accept {method}", uri.path()),
    )
}

/// Largest plain-text error body copied into a JSON error message.
const MAX_COPIED_MESSAGE: usize = 1024;

/// Safety net for error responses that did not come from [`HttpError`] (a framework
/// rejection added later, a layer's own error): rewrites them into the JSON error shape,
/// keeping status and headers.
pub async fn ensure_json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_COPIED_MESSAGE)
        .await
        .ok()
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .filter(|text| !text.is_empty());
    let message = text.unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    let error = HttpError::new(status, code_for_status(status), message);
    let Ok(json) = serde_json::to_vec(&error.body()) else {
        return Response::from_parts(parts, Body::empty());
    };
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(json))
}

fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => codes::NOT_FOUND,
        StatusCode::METHOD_NOT_ALLOWED => METHOD_NOT_ALLOWED,
        StatusCode::PAYLOAD_TOO_LARGE => codes::TOO_LARGE,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => codes::UNSUPPORTED_MEDIA_TYPE,
        StatusCode::TOO_MANY_REQUESTS => codes::MEMPOOL_FULL,
        StatusCode::SERVICE_UNAVAILABLE => codes::NOT_READY,
        status if status.is_server_error() => codes::INTERNAL,
        _ => codes::BAD_REQUEST,
    }
}
