//! JSON Schemas of the API's bodies (`bastion_client::api`), written out by hand because
//! those types live in a crate that does not depend on utoipa. A test compares them with
//! what the handlers actually serialize, so a field added on one side only is caught.

use bastion_client::api::codes;
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{Components, ComponentsBuilder, Ref, RefOr};

use crate::api::error::METHOD_NOT_ALLOWED;

/// A reference to one of the schemas in [`components`].
pub fn named(name: &str) -> RefOr<Schema> {
    Ref::from_schema_name(name).into()
}

fn string(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).description(Some(description)).into()
}

fn hex(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^(0x)?([0-9a-fA-F]{2})*$"))
        .description(Some(description))
        .into()
}

fn u64_field(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .description(Some(description))
        .into()
}

fn small_uint(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
        .minimum(Some(0))
        .description(Some(description))
        .into()
}

fn boolean(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::Boolean).description(Some(description)).into()
}

fn array_of(items: RefOr<Schema>) -> RefOr<Schema> {
    ArrayBuilder::new().items(items).into()
}

fn opaque(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::Object).description(Some(description)).into()
}

fn string_enum(description: &str, values: &[&str]) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .build()
        .into()
}

/// An object schema; `required` fields are always present, `optional` ones may be absent.
fn object(
    description: &str,
    required: Vec<(&str, RefOr<Schema>)>,
    optional: Vec<(&str, RefOr<Schema>)>,
) -> Schema {
    let mut builder = ObjectBuilder::new().schema_type(Type::Object).description(Some(description));
    for (name, schema) in required {
        builder = builder.property(name, schema).required(name);
    }
    for (name, schema) in optional {
        builder = builder.property(name, schema);
    }
    builder.build().into()
}

/// Every body schema, by the name of its Rust type.
pub fn components() -> Components {
    let hex32 = || named("Hex32");
    let height = || u64_field("block height");
    ComponentsBuilder::new()
        .schema(
            "Hex32",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^(0x)?[0-9a-fA-F]{64}$"))
                .description(Some(
                    "32 bytes as 64 hex digits (digest, address or public key); 0x optional on input",
                )),
        )
        .schema(
            "ErrorBody",
            object(
                "Every error response.",
                vec![
                    ("code", string_enum("machine-readable error code", &ERROR_CODES).into()),
                    ("message", string("human-readable explanation")),
                ],
                vec![],
            ),
        )
        .schema(
            "HealthResponse",
            object(
                "GET /health.",
                vec![("ready", boolean("whether the node serves requests"))],
                vec![("reason", string("why the node is not ready"))],
            ),
        )
        .schema(
            "ValidatorView",
            object(
                "A committee member.",
                vec![
                    ("index", small_uint("validator index")),
                    ("public_key", hex32()),
                    ("quic_addr", string("QUIC address")),
                ],
                vec![("api_url", string("HTTP API URL, when known"))],
            ),
        )
        .schema(
            "StatusResponse",
            object(
                "GET /status.",
                vec![
                    ("chain_id", string("chain identifier")),
                    ("validator_index", small_uint("this validator's index")),
                    ("ready", boolean("whether the node serves requests")),
                    ("consensus_only", boolean("orders opaque transactions without executing them")),
                    ("round", u64_field("current consensus round")),
                    ("committed_height", u64_field("highest committed block")),
                    ("executed_height", u64_field("highest executed block")),
                    ("certified_height", u64_field("highest height with a certified state root")),
                    ("mempool_size", u64_field("transactions waiting in the mempool")),
                    ("peers_connected", u64_field("connected validators")),
                    ("validators", array_of(named("ValidatorView"))),
                    ("version", string("node software version")),
                ],
                vec![("state_root", hex32())],
            ),
        )
        .schema(
            "SubmitRequest",
            object(
                "POST /v1/transactions with application/json.",
                vec![("tx", hex("hex of the signed transaction's canonical bincode encoding"))],
                vec![],
            ),
        )
        .schema(
            "SubmitBatchRequest",
            object(
                "POST /v1/transactions/batch with application/json.",
                vec![("txs", array_of(hex("hex of one signed transaction's canonical bincode encoding")))],
                vec![],
            ),
        )
        .schema(
            "SubmitOutcome",
            object(
                "One transaction of a batch submission: its hash if admitted (or already known), else the \
                 error it would have got alone.",
                vec![],
                vec![("hash", hex32()), ("error", named("ErrorBody"))],
            ),
        )
        .schema(
            "SubmitBatchResponse",
            object(
                "Answer to POST /v1/transactions/batch: one outcome per transaction, in request order.",
                vec![
                    ("accepted", u64_field("outcomes that carry a hash")),
                    ("results", array_of(named("SubmitOutcome"))),
                ],
                vec![],
            ),
        )
        .schema(
            "TxStatus",
            string_enum(
                "where a transaction is in its life",
                &["pending", "committed_ok", "committed_failed", "expired", "rejected"],
            ),
        )
        .schema(
            "TxStage",
            string_enum(
                "finer-grained progress",
                &["received", "in_batch", "proposed", "committed", "failed", "expired", "rejected"],
            ),
        )
        .schema(
            "EventView",
            object(
                "An event a contract emitted.",
                vec![("contract", hex32()), ("topic_hex", hex("topic")), ("data_hex", hex("data"))],
                vec![],
            ),
        )
        .schema(
            "ReceiptView",
            object(
                "The outcome of a committed transaction.",
                vec![
                    ("status", named("TxStatus")),
                    ("height", height()),
                    ("index", small_uint("position in the block")),
                    ("fuel_used", u64_field("fuel consumed")),
                    ("events", array_of(named("EventView"))),
                    ("return_hex", hex("return value")),
                ],
                vec![("reason", string("why the call failed")), ("contract", hex32())],
            ),
        )
        .schema(
            "TxResponse",
            object(
                "A transaction's status and, once committed, its receipt.",
                vec![("hash", hex32()), ("status", named("TxStatus")), ("stage", named("TxStage"))],
                vec![("receipt", named("ReceiptView")), ("reason", string("why it was rejected or expired"))],
            ),
        )
        .schema(
            "CertifiedProof",
            object(
                "A Merkle proof and the certificate of the state root it proves against.",
                vec![
                    ("proof", opaque("Merkle proof (bastion-ledger AccountProof or StorageProof)")),
                    ("certificate", opaque("2f+1 validator signatures over the state root at a height")),
                ],
                vec![],
            ),
        )
        .schema(
            "AccountResponse",
            object(
                "GET /v1/accounts/{addr}.",
                vec![
                    ("address", hex32()),
                    ("balance", u64_field("balance")),
                    ("nonce", u64_field("next nonce in executed state")),
                    ("pending_nonce", u64_field("next nonce counting this node's pending transactions")),
                    ("is_contract", boolean("whether a contract lives at this address")),
                    ("height", height()),
                ],
                vec![("proof", named("CertifiedProof"))],
            ),
        )
        .schema(
            "StorageResponse",
            object(
                "GET /v1/contracts/{addr}/storage/{key_hex}.",
                vec![("contract", hex32()), ("key_hex", hex("storage key")), ("height", height())],
                vec![
                    ("value_hex", hex("value; absent if the slot is empty")),
                    ("proof", named("CertifiedProof")),
                ],
            ),
        )
        .schema(
            "ViewRequest",
            object(
                "POST /v1/contracts/{addr}/view.",
                vec![("method", string("contract method to run read-only"))],
                vec![
                    ("args_hex", hex("argument bytes; empty by default")),
                    ("proof", boolean("run at the latest certified height and return a witness")),
                ],
            ),
        )
        .schema(
            "ViewResponse",
            object(
                "The result of a read-only contract call.",
                vec![
                    ("return_hex", hex("return value")),
                    ("height", height()),
                    ("fuel_used", u64_field("fuel consumed")),
                    ("events", array_of(named("EventView"))),
                ],
                vec![(
                    "proof",
                    opaque("with proof: {proof: {height, reads: [{key, value, proof}]}, certificate}: the proofs of every state key the view read, and the certificate of their root"),
                )],
            ),
        )
        .schema(
            "BlockTx",
            object(
                "A transaction in a block.",
                vec![("hash", hex32()), ("status", named("TxStatus"))],
                vec![],
            ),
        )
        .schema(
            "BlockEvent",
            object(
                "A contract event in a block.",
                vec![
                    ("tx_hash", hex32()),
                    ("contract", hex32()),
                    ("topic_hex", hex("topic")),
                    ("data_hex", hex("data")),
                ],
                vec![],
            ),
        )
        .schema(
            "BlockResponse",
            object(
                "A committed block; also the data of each `block` server-sent event.",
                vec![
                    ("height", height()),
                    ("hash", hex32()),
                    ("round", u64_field("consensus round")),
                    ("proposer", small_uint("proposer's validator index")),
                    ("parent", hex32()),
                    ("batches", array_of(hex32())),
                    ("txs", array_of(named("BlockTx"))),
                    ("events", array_of(named("BlockEvent"))),
                ],
                vec![("state_root", hex32())],
            ),
        )
        .build()
}

const ERROR_CODES: [&str; 15] = [
    codes::BAD_ENCODING,
    codes::BAD_REQUEST,
    codes::BAD_SIGNATURE,
    codes::WRONG_CHAIN,
    codes::EXPIRED,
    codes::INSUFFICIENT_FUNDS,
    codes::NONCE_TOO_LOW,
    codes::TOO_LARGE,
    codes::UNSUPPORTED_MEDIA_TYPE,
    codes::MEMPOOL_FULL,
    codes::NOT_FOUND,
    codes::UNKNOWN_CONTRACT,
    codes::NOT_READY,
    codes::INTERNAL,
    METHOD_NOT_ALLOWED,
];
