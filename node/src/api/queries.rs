//! Read-only state queries: accounts, contract storage, contract views and blocks.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use bastion_client::api::{AccountResponse, BlockResponse, StorageResponse, ViewRequest, ViewResponse};
use serde::Deserialize;

use super::error::HttpError;
use super::extract::{
    parse_address, parse_hex, parse_storage_key, read_json, ApiPath, ApiQuery, MAX_JSON_BODY_BYTES,
};
use super::service::NodeApi;
use super::ApiState;

#[derive(Debug, Default, Deserialize)]
pub struct ProofQuery {
    #[serde(default)]
    proof: bool,
}

pub async fn account<S: NodeApi>(
    State(state): State<ApiState<S>>,
    ApiPath(addr): ApiPath<String>,
    ApiQuery(query): ApiQuery<ProofQuery>,
) -> Result<Json<AccountResponse>, HttpError> {
    let address = parse_address("account address", &addr)?;
    Ok(Json(state.node.account(&address, query.proof)?))
}

pub async fn storage<S: NodeApi>(
    State(state): State<ApiState<S>>,
    ApiPath((addr, key_hex)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<ProofQuery>,
) -> Result<Json<StorageResponse>, HttpError> {
    let contract = parse_address("contract address", &addr)?;
    let key = parse_storage_key(&key_hex)?;
    Ok(Json(state.node.storage(&contract, &key, query.proof)?))
}

pub async fn view<S: NodeApi>(
    State(state): State<ApiState<S>>,
    ApiPath(addr): ApiPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ViewResponse>, HttpError> {
    let contract = parse_address("contract address", &addr)?;
    let request: ViewRequest = read_json(&headers, body, MAX_JSON_BODY_BYTES).await?;
    if request.method.is_empty() {
        return Err(HttpError::bad_request("method must not be empty"));
    }
    let args = parse_hex("args_hex", &request.args_hex)?;
    Ok(Json(state.node.view(&contract, &request.method, &args, request.proof)?))
}

/// `GET /v1/blocks/{height|latest}`.
pub async fn block<S: NodeApi>(
    State(state): State<ApiState<S>>,
    ApiPath(which): ApiPath<String>,
) -> Result<Json<BlockResponse>, HttpError> {
    let height = match which.as_str() {
        "latest" => None,
        digits => Some(digits.parse::<u64>().map_err(|_| {
            HttpError::bad_request(format!("block must be a height or \"latest\", got {digits:?}"))
        })?),
    };
    match state.node.block(height)? {
        Some(block) => Ok(Json(block)),
        None => Err(HttpError::not_found(match height {
            Some(height) => format!("no committed block at height {height}"),
            None => "no block has been committed yet".to_string(),
        })),
    }
}
