//! Node-level endpoints: `/health` for load balancers and orchestration, `/status` for
//! people and the CLI, `/metrics` for Prometheus.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bastion_client::api::{HealthResponse, StatusResponse};

use super::service::NodeApi;
use super::ApiState;

/// The Prometheus text exposition format's content type.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// 200 when the node is ready to serve, 503 with the reason otherwise.
pub async fn health<S: NodeApi>(State(state): State<ApiState<S>>) -> Response {
    let status = state.node.status();
    if status.ready {
        return (StatusCode::OK, Json(HealthResponse { ready: true, reason: None })).into_response();
    }
    let reason = match &status.halted {
        Some(halted) => format!("halted: {halted}"),
        None => format!(
            "not ready: committed height {}, executed height {}, {} peer(s) connected",
            status.committed_height, status.executed_height, status.peers_connected
        ),
    };
    (StatusCode::SERVICE_UNAVAILABLE, Json(HealthResponse { ready: false, reason: Some(reason) }))
        .into_response()
}

pub async fn status<S: NodeApi>(State(state): State<ApiState<S>>) -> Json<StatusResponse> {
    Json(state.node.status())
}

pub async fn metrics<S: NodeApi>(State(state): State<ApiState<S>>) -> Response {
    ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], state.node.metrics()).into_response()
}
