//! The API's operations as OpenAPI path items: parameters, bodies and every response.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::{RequestBody, RequestBodyBuilder};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{Content, Paths, PathsBuilder, RefOr, Required, Response, ResponseBuilder};

use super::schemas::named;
use crate::api::status::PROMETHEUS_CONTENT_TYPE;

const JSON: &str = "application/json";

fn json_response(description: &str, schema: &str) -> Response {
    ResponseBuilder::new().description(description).content(JSON, Content::new(Some(named(schema)))).build()
}

fn error_response(description: &str) -> Response {
    json_response(description, "ErrorBody")
}

fn text_response(description: &str, content_type: &str) -> Response {
    let text = ObjectBuilder::new().schema_type(Type::String).build();
    ResponseBuilder::new().description(description).content(content_type, Content::new(Some(text))).build()
}

fn string_schema() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).into()
}

fn uint_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .into()
}

fn parameter(
    name: &str,
    place: ParameterIn,
    required: bool,
    schema: RefOr<Schema>,
    description: &str,
) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(place)
        .required(if required { Required::True } else { Required::False })
        .schema(Some(schema))
        .description(Some(description))
}

fn hex32_path(name: &str, description: &str) -> ParameterBuilder {
    parameter(name, ParameterIn::Path, true, named("Hex32"), description)
}

fn proof_query() -> ParameterBuilder {
    let schema = ObjectBuilder::new().schema_type(Type::Boolean).into();
    parameter(
        "proof",
        ParameterIn::Query,
        false,
        schema,
        "include a Merkle proof against the latest certified root",
    )
}

fn operation(id: &str, tag: &str, summary: &str) -> OperationBuilder {
    OperationBuilder::new().operation_id(Some(id)).tag(tag).summary(Some(summary))
}

/// The error responses every state query can give.
fn with_query_errors(op: OperationBuilder) -> OperationBuilder {
    op.response("400", error_response("malformed path or query (`bad_request`)"))
        .response("503", error_response("the node is not ready (`not_ready`)"))
        .response("500", error_response("internal error (`internal`)"))
}

fn get(op: OperationBuilder) -> PathItem {
    PathItem::new(HttpMethod::Get, op.build())
}

fn post(op: Operation) -> PathItem {
    PathItem::new(HttpMethod::Post, op)
}

/// A request body accepted as JSON (`json_schema`) or as raw bytes (`binary`, described).
fn json_or_binary_body(description: &str, json_schema: &str, binary: &str) -> RequestBody {
    let binary = ObjectBuilder::new()
        .schema_type(Type::String)
        .content_media_type("application/octet-stream")
        .description(Some(binary))
        .build();
    RequestBodyBuilder::new()
        .required(Some(Required::True))
        .description(Some(description))
        .content(JSON, Content::new(Some(named(json_schema))))
        .content("application/octet-stream", Content::new(Some(binary)))
        .build()
}

/// A JSON response that may carry `Retry-After` (seconds), described by `retry`.
fn with_retry_after(description: &str, schema: &str, retry: &str) -> Response {
    let retry_after = HeaderBuilder::new().schema(uint_schema()).description(Some(retry)).build();
    ResponseBuilder::new()
        .description(description)
        .content(JSON, Content::new(Some(named(schema))))
        .header("Retry-After", retry_after)
        .build()
}

fn submit() -> Operation {
    let wait = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["commit"])).into();
    let body = json_or_binary_body(
        "The signed transaction, as JSON (`{\"tx\": hex}`) or as raw bytes. Body limit: twice the \
         node's transaction size limit plus 1024 bytes.",
        "SubmitRequest",
        "the signed transaction's canonical bincode bytes",
    );
    let mempool_full = with_retry_after(
        "the mempool is full (`mempool_full`)",
        "ErrorBody",
        "seconds to wait before resubmitting",
    );
    operation("submit_transaction", "transactions", "Submit a signed transaction")
        .description(Some(
            "Admits the transaction and returns its hash. With `wait=commit`, waits until it is final \
             or the timeout passes; a transaction still pending then is answered with 202.",
        ))
        .parameter(parameter(
            "wait",
            ParameterIn::Query,
            false,
            wait,
            "`commit`: wait until the transaction is final",
        ))
        .parameter(parameter(
            "timeout_ms",
            ParameterIn::Query,
            false,
            uint_schema(),
            "how long `wait=commit` waits, in milliseconds (default 30000, at most 120000)",
        ))
        .request_body(Some(body))
        .response("200", json_response("the transaction is final", "TxResponse"))
        .response("202", json_response("admitted and still pending", "TxResponse"))
        .response("400", error_response("not a transaction or bad query (`bad_encoding`, `bad_request`)"))
        .response("401", error_response("the signature does not verify (`bad_signature`)"))
        .response("409", error_response("nonce below the sender's next nonce (`nonce_too_low`)"))
        .response("413", error_response("body or transaction too large (`too_large`)"))
        .response("415", error_response("neither JSON nor octet-stream (`unsupported_media_type`)"))
        .response(
            "422",
            error_response(
                "wrong chain, expired or insufficient funds (`wrong_chain`, `expired`, `insufficient_funds`)",
            ),
        )
        .response("429", mempool_full)
        .response("503", error_response("the node is not ready (`not_ready`)"))
        .response("500", error_response("internal error (`internal`)"))
        .build()
}

fn submit_batch() -> Operation {
    let body = json_or_binary_body(
        "Up to 1024 signed transactions, as JSON (`{\"txs\": [hex, ...]}`) or length-prefixed raw bytes. \
         Body limit: 8 MiB binary, twice that (plus 4 KiB) as JSON.",
        "SubmitBatchRequest",
        "each transaction's canonical bincode bytes, preceded by its length as a 4-byte little-endian \
         integer",
    );
    let answered = with_retry_after(
        "one outcome per transaction, in request order",
        "SubmitBatchResponse",
        "present when some transaction met a full mempool: seconds to wait",
    );
    operation("submit_transactions", "transactions", "Submit many signed transactions at once")
        .description(Some(
            "Admits each transaction as `POST /v1/transactions` would, checking their signatures as one batch. \
             Each outcome carries the transaction's hash or the error it would have got on its own \
             (`mempool_full`, `nonce_too_low`, ...); the request fails as a whole only if its body cannot be read \
             or the node is not ready.",
        ))
        .request_body(Some(body))
        .response("200", answered)
        .response("400", error_response("the body is not a batch (`bad_encoding`, `bad_request`)"))
        .response("413", error_response("body too large or more than 1024 transactions (`too_large`)"))
        .response("415", error_response("neither JSON nor octet-stream (`unsupported_media_type`)"))
        .response("503", error_response("the node is not ready (`not_ready`)"))
        .response("500", error_response("internal error (`internal`)"))
        .build()
}

fn view() -> Operation {
    let body = RequestBodyBuilder::new()
        .required(Some(Required::True))
        .content(JSON, Content::new(Some(named("ViewRequest"))))
        .build();
    let op = operation("view_contract", "state", "Run a contract method read-only")
        .parameter(hex32_path("addr", "contract address"))
        .request_body(Some(body))
        .response("200", json_response("the view's result", "ViewResponse"))
        .response("404", error_response("no contract at that address (`unknown_contract`)"))
        .response("413", error_response("body over 64 KiB (`too_large`)"))
        .response("415", error_response("body is not application/json (`unsupported_media_type`)"));
    with_query_errors(op).build()
}

fn events() -> OperationBuilder {
    let stream = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "text/event-stream: one `block` event per committed block (`id` = height, data = BlockResponse \
             JSON), keep-alive comments every 15 s; an `error` event (data = ErrorBody) ends the stream",
        ))
        .build();
    let resume = "first height to send; without it (and without Last-Event-ID) only new blocks are sent";
    operation("events", "blocks", "Stream committed blocks as server-sent events")
        .parameter(parameter("from", ParameterIn::Query, false, uint_schema(), resume))
        .parameter(parameter(
            "Last-Event-ID",
            ParameterIn::Header,
            false,
            uint_schema(),
            "height of the last event received; resumes after it and overrides `from`",
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description("the block stream")
                .content("text/event-stream", Content::new(Some(stream)))
                .build(),
        )
        .response("400", error_response("bad `from` or Last-Event-ID (`bad_request`)"))
        .response("503", error_response("the node is not ready (`not_ready`)"))
}

/// Every endpoint the router serves.
pub fn paths() -> Paths {
    PathsBuilder::new()
        .path(
            "/health",
            get(operation("health", "node", "Readiness")
                .response("200", json_response("ready", "HealthResponse"))
                .response("503", json_response("not ready, with the reason", "HealthResponse"))),
        )
        .path(
            "/status",
            get(operation("status", "node", "Chain, consensus and sync status")
                .response("200", json_response("the node's status", "StatusResponse"))),
        )
        .path("/v1/transactions", post(submit()))
        .path("/v1/transactions/batch", post(submit_batch()))
        .path(
            "/v1/transactions/{hash}",
            get(with_query_errors(
                operation("get_transaction", "transactions", "A transaction's status and receipt")
                    .parameter(hex32_path("hash", "transaction hash"))
                    .response("200", json_response("status and receipt", "TxResponse"))
                    .response("404", error_response("unknown to this node (`not_found`)")),
            )),
        )
        .path(
            "/v1/accounts/{addr}",
            get(with_query_errors(
                operation("get_account", "state", "An account's balance and nonce")
                    .parameter(hex32_path("addr", "account address"))
                    .parameter(proof_query())
                    .response("200", json_response("the account", "AccountResponse"))
                    .response("404", error_response("no such account (`not_found`)")),
            )),
        )
        .path(
            "/v1/contracts/{addr}/storage/{key_hex}",
            get(with_query_errors(
                operation("get_storage", "state", "A contract storage slot")
                    .parameter(hex32_path("addr", "contract address"))
                    .parameter(parameter(
                        "key_hex",
                        ParameterIn::Path,
                        true,
                        string_schema(),
                        "storage key, hex (at most 256 bytes)",
                    ))
                    .parameter(proof_query())
                    .response("200", json_response("the slot", "StorageResponse"))
                    .response("404", error_response("no contract at that address (`unknown_contract`)")),
            )),
        )
        .path("/v1/contracts/{addr}/view", post(view()))
        .path(
            "/v1/blocks/{height}",
            get(with_query_errors(
                operation("get_block", "blocks", "A committed block")
                    .parameter(parameter(
                        "height",
                        ParameterIn::Path,
                        true,
                        string_schema(),
                        "a block height, or `latest`",
                    ))
                    .response("200", json_response("the block", "BlockResponse"))
                    .response("404", error_response("no block at that height (`not_found`)")),
            )),
        )
        .path("/v1/events", get(events()))
        .path(
            "/metrics",
            get(operation("metrics", "node", "Prometheus metrics").response(
                "200",
                text_response("Prometheus text exposition format", PROMETHEUS_CONTENT_TYPE),
            )),
        )
        .path(
            "/openapi.json",
            get(operation("openapi", "node", "This document").response(
                "200",
                ResponseBuilder::new()
                    .description("OpenAPI document")
                    .content(JSON, Content::new(Some(ObjectBuilder::new().schema_type(Type::Object).build())))
                    .build(),
            )),
        )
        .build()
}
