//! The validator's HTTP API (DESIGN §4): axum handlers over the [`NodeApi`] trait.
//!
//! Owns routing, request parsing and limits, the JSON error shape, the server-sent block
//! stream and the OpenAPI document. Guarantees: every error is JSON
//! `{"code","message"}` with the status its code documents; no input makes a handler panic
//! or buffer more than its endpoint's body limit; a server shutdown ends open event streams
//! and long polls so the server can stop.

pub mod error;
pub mod events;
pub mod extract;
pub mod openapi;
pub mod queries;
pub mod service;
pub mod status;
pub mod transactions;

use std::future::Future;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use error::HttpError;
pub use service::{ApiError, NodeApi};

/// Submissions (single or batch) being admitted at once, at most. One more waits for a
/// turn at most [`ADMISSION_WAIT`], then is answered 429 with `Retry-After`, instead of
/// waiting in line for seconds (and timing out at the client, which then cannot tell
/// whether it was admitted).
pub const MAX_ADMISSIONS_IN_FLIGHT: usize = 16;
/// How long a submission waits for one of the [`MAX_ADMISSIONS_IN_FLIGHT`] turns.
pub const ADMISSION_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// What every handler gets: the node, the server's shutdown signal, and the permits of
/// submissions being admitted.
pub struct ApiState<S> {
    pub node: Arc<S>,
    pub shutdown: Shutdown,
    pub admissions: Arc<tokio::sync::Semaphore>,
}

impl<S> Clone for ApiState<S> {
    fn clone(&self) -> Self {
        ApiState {
            node: Arc::clone(&self.node),
            shutdown: self.shutdown.clone(),
            admissions: Arc::clone(&self.admissions),
        }
    }
}

/// Tells long-lived responses (event streams, `wait=commit`) that the server is stopping.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A signal that never fires, for a router served by someone else.
    pub fn never() -> Self {
        Shutdown(watch::channel(false).1)
    }

    /// Completes once shutdown has begun; never, if it cannot begin any more.
    pub async fn signalled(&self) {
        let mut receiver = self.0.clone();
        if receiver.wait_for(|stopping| *stopping).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The API's routes over `node`. Open event streams end only when clients leave; use
/// [`serve`] to have them end on shutdown.
pub fn router<S: NodeApi>(node: Arc<S>) -> Router {
    router_with_shutdown(node, Shutdown::never())
}

fn router_with_shutdown<S: NodeApi>(node: Arc<S>, shutdown: Shutdown) -> Router {
    let openapi = openapi::document().to_json().map(Bytes::from).map_err(|e| e.to_string());
    Router::new()
        .route("/health", get(status::health::<S>))
        .route("/status", get(status::status::<S>))
        .route("/metrics", get(status::metrics::<S>))
        .route("/v1/transactions", post(transactions::submit::<S>))
        .route("/v1/transactions/batch", post(transactions::submit_batch::<S>))
        .route("/v1/transactions/{hash}", get(transactions::get_transaction::<S>))
        .route("/v1/accounts/{addr}", get(queries::account::<S>))
        .route("/v1/contracts/{addr}/storage/{key_hex}", get(queries::storage::<S>))
        .route("/v1/contracts/{addr}/view", post(queries::view::<S>))
        .route("/v1/blocks/{height}", get(queries::block::<S>))
        .route("/v1/events", get(events::events::<S>))
        .route("/openapi.json", get(move || openapi_reply(openapi.clone())))
        .fallback(error::unknown_route)
        .method_not_allowed_fallback(error::wrong_method)
        .layer(axum::middleware::map_response(error::ensure_json_errors))
        .with_state(ApiState {
            node,
            shutdown,
            admissions: Arc::new(tokio::sync::Semaphore::new(MAX_ADMISSIONS_IN_FLIGHT)),
        })
}

async fn openapi_reply(document: Result<Bytes, String>) -> Response {
    match document {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            bastion_client::api::codes::INTERNAL,
            format!("could not encode the OpenAPI document: {e}"),
        )
        .into_response(),
    }
}

/// Serves the API on `listener` until `shutdown` completes, then ends open event streams
/// and long polls, lets in-flight requests finish, and returns.
pub async fn serve<S: NodeApi>(
    node: Arc<S>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopping) = watch::channel(false);
    let app = router_with_shutdown(node, Shutdown(stopping));
    let signal = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    axum::serve(listener, app).with_graceful_shutdown(signal).await
}
