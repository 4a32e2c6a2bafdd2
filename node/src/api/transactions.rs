//! `POST /v1/transactions` and `GET /v1/transactions/{hash}`.
//!
//! Once the node has admitted a transaction the client always gets its hash back: waiting
//! for it (`?wait=commit`) can end with it still `pending` (HTTP 202), never with an error
//! that hides the hash, and never with a made-up final status.
//!
//! `POST /v1/transactions/batch` admits up to [`MAX_SUBMIT_BATCH`] transactions in one
//! request (signatures checked as one batch) and answers one outcome per transaction; the
//! request itself fails only if its body is unreadable or the node is not ready (503).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bastion_client::api::{
    frame_ranges, SubmitBatchRequest, SubmitBatchResponse, SubmitOutcome, SubmitRequest, TxResponse, TxStage,
    TxStatus, MAX_SUBMIT_BATCH, MAX_SUBMIT_BATCH_BYTES,
};
use bastion_crypto::Digest;
use bytes::Bytes;
use serde::Deserialize;

use super::error::HttpError;
use super::extract::{
    body_kind, parse_digest, parse_hex, parse_json, read_body, ApiPath, ApiQuery, BodyKind,
};
use super::service::NodeApi;
use super::ApiState;

/// How long `?wait=commit` waits without `timeout_ms`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// The longest `?wait=commit` may wait, whatever `timeout_ms` asks.
pub const MAX_WAIT: Duration = Duration::from_secs(120);
/// Slack given to the node's own bounded wait before the API stops waiting for it.
const WAIT_GRACE: Duration = Duration::from_secs(2);

/// Body limit for a submission: hex doubles the transaction, plus room for the JSON around it.
pub fn max_submit_body(max_tx_bytes: usize) -> usize {
    max_tx_bytes.saturating_mul(2).saturating_add(1024)
}

#[derive(Debug, Deserialize)]
pub struct SubmitQuery {
    wait: Option<String>,
    timeout_ms: Option<u64>,
}

impl SubmitQuery {
    /// `None` without `wait`; the bounded wait with `wait=commit`.
    fn wait(&self) -> Result<Option<Duration>, HttpError> {
        match self.wait.as_deref() {
            None => Ok(None),
            Some("commit") => {
                let asked = self.timeout_ms.map(Duration::from_millis).unwrap_or(DEFAULT_WAIT);
                Ok(Some(asked.min(MAX_WAIT)))
            }
            Some(other) => {
                Err(HttpError::bad_request(format!("unknown wait mode {other:?}; use wait=commit")))
            }
        }
    }
}

pub async fn submit<S: NodeApi>(
    State(state): State<ApiState<S>>,
    ApiQuery(query): ApiQuery<SubmitQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let wait = query.wait()?;
    let node = &state.node;
    let kind = body_kind(&headers, &[BodyKind::Json, BodyKind::Binary])?;
    let bytes = read_body(&headers, body, max_submit_body(node.max_tx_bytes())).await?;
    let tx = match kind {
        BodyKind::Binary => bytes,
        BodyKind::Json => {
            let request: SubmitRequest = parse_json(&bytes)?;
            let raw = parse_hex("tx", &request.tx).map_err(|e| HttpError::bad_encoding(e.message))?;
            Bytes::from(raw)
        }
    };
    let hash = {
        // Held for the admission only, not while waiting for the commit.
        let _permit = admission_permit(&state).await?;
        node.submit(tx)?
    };
    let answer = match wait {
        None => known_or_received(node.as_ref(), hash),
        Some(timeout) => wait_for_final(&state, hash, timeout).await,
    };
    Ok(tx_reply(answer))
}

pub async fn submit_batch<S: NodeApi>(
    State(state): State<ApiState<S>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let kind = body_kind(&headers, &[BodyKind::Json, BodyKind::Binary])?;
    let limit = match kind {
        BodyKind::Binary => MAX_SUBMIT_BATCH_BYTES,
        BodyKind::Json => MAX_SUBMIT_BATCH_BYTES.saturating_mul(2).saturating_add(4 * MAX_SUBMIT_BATCH),
    };
    let bytes = read_body(&headers, body, limit).await?;
    let txs = match kind {
        BodyKind::Binary => {
            let ranges = frame_ranges(&bytes, MAX_SUBMIT_BATCH).map_err(HttpError::bad_encoding)?;
            ranges.into_iter().map(|range| bytes.slice(range)).collect()
        }
        BodyKind::Json => {
            let request: SubmitBatchRequest = parse_json(&bytes)?;
            if request.txs.len() > MAX_SUBMIT_BATCH {
                return Err(HttpError::too_large(format!(
                    "{} transactions in one batch; at most {MAX_SUBMIT_BATCH}",
                    request.txs.len()
                )));
            }
            let mut txs = Vec::with_capacity(request.txs.len());
            for (i, hex) in request.txs.iter().enumerate() {
                let raw = parse_hex("tx", hex)
                    .map_err(|e| HttpError::bad_encoding(format!("transaction {i}: {}", e.message)))?;
                txs.push(Bytes::from(raw));
            }
            txs
        }
    };
    let permit = admission_permit(&state).await?;
    let node = state.node.clone();
    let verdicts = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        node.submit_many(txs)
    })
    .await
    .map_err(|e| HttpError::from(super::ApiError::Internal(format!("batch admission failed: {e}"))))?;
    // A node that cannot admit anything (starting, catching up, halted) says so as a whole.
    if let Some(Err(e @ super::ApiError::NotReady(_))) = verdicts.first() {
        if verdicts.iter().all(|v| matches!(v, Err(super::ApiError::NotReady(_)))) {
            return Err(HttpError::from(e.clone()));
        }
    }
    let mut retry_after = None;
    let results: Vec<SubmitOutcome> = verdicts
        .into_iter()
        .map(|verdict| match verdict {
            Ok(hash) => SubmitOutcome { hash: Some(hash), error: None },
            Err(e) => {
                let http = HttpError::from(e);
                retry_after = retry_after.or(http.retry_after);
                SubmitOutcome { hash: None, error: Some(http.body()) }
            }
        })
        .collect();
    let accepted = results.iter().filter(|r| r.hash.is_some()).count();
    let mut response = (StatusCode::OK, Json(SubmitBatchResponse { accepted, results })).into_response();
    if let Some(secs) = retry_after {
        response.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
    }
    Ok(response)
}

/// A turn to admit one submission, or 429 if [`super::MAX_ADMISSIONS_IN_FLIGHT`] others
/// are being admitted and none finishes within [`super::ADMISSION_WAIT`].
async fn admission_permit<S>(state: &ApiState<S>) -> Result<tokio::sync::OwnedSemaphorePermit, HttpError> {
    let turn = Arc::clone(&state.admissions).acquire_owned();
    match tokio::time::timeout(super::ADMISSION_WAIT, turn).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(HttpError::from(super::ApiError::MempoolFull(format!(
            "node busy: {} submissions are being admitted; try again shortly",
            super::MAX_ADMISSIONS_IN_FLIGHT
        )))),
    }
}

/// What the node knows about a transaction it just admitted; `received` if nothing yet.
fn known_or_received<S: NodeApi>(node: &S, hash: Digest) -> TxResponse {
    match node.transaction(&hash) {
        Ok(Some(known)) => known,
        Ok(None) => received(hash),
        Err(e) => {
            tracing::warn!(%hash, error = %e, "could not look up a transaction just admitted");
            received(hash)
        }
    }
}

fn received(hash: Digest) -> TxResponse {
    TxResponse { hash, status: TxStatus::Pending, stage: TxStage::Received, receipt: None, reason: None }
}

/// Waits for the node to report the transaction final, for at most `timeout` (plus a little
/// slack for the node's own bound) or until the server shuts down.
async fn wait_for_final<S: NodeApi>(state: &ApiState<S>, hash: Digest, timeout: Duration) -> TxResponse {
    let node = &state.node;
    let waited = tokio::select! {
        result = tokio::time::timeout(timeout + WAIT_GRACE, node.wait_for_final(hash, timeout)) => result.ok(),
        () = state.shutdown.signalled() => None,
    };
    match waited {
        Some(Ok(answer)) => answer,
        Some(Err(e)) => {
            tracing::warn!(%hash, error = %e, "waiting for a transaction failed; reporting what is known");
            known_or_received(node.as_ref(), hash)
        }
        None => known_or_received(node.as_ref(), hash),
    }
}

/// 200 for a final transaction, 202 while it is still pending.
fn tx_reply(answer: TxResponse) -> Response {
    let status = if answer.status.is_final() { StatusCode::OK } else { StatusCode::ACCEPTED };
    (status, Json(answer)).into_response()
}

pub async fn get_transaction<S: NodeApi>(
    State(state): State<ApiState<S>>,
    ApiPath(hash): ApiPath<String>,
) -> Result<Json<TxResponse>, HttpError> {
    let hash = parse_digest("transaction hash", &hash)?;
    match state.node.transaction(&hash)? {
        Some(answer) => Ok(Json(answer)),
        None => Err(HttpError::not_found(format!("transaction {hash} is unknown to this node"))),
    }
}
