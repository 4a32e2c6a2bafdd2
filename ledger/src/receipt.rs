//! Receipts: the per-transaction result of executing a block.
//!
//! Every transaction in a block gets exactly one [`Receipt`], at the transaction's index.
//! Its [`ReceiptStatus`] is one of
//! * `committed_ok`: the payload ran; its effects, fee and nonce advance are in the state;
//! * `committed_failed`: the payload failed (reason given); its effects were reverted, but
//!   the fee for the fuel used was charged and the nonce advanced;
//! * `rejected`: the transaction could not be executed at all (bad nonce, expired, cannot
//!   pay its maximum fee); nothing about the state changed and `fuel_used` is 0.
//!
//! Receipts are deterministic: the same block on the same state gives byte-identical
//! receipts on every validator, so [`receipts_root`] can be compared or certified.

use bastion_crypto::{merkle_root, sha256, Digest};
use serde::{Deserialize, Serialize};

use crate::codec::{self, hex_bytes};
use crate::error::CodecError;
use crate::Address;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    #[serde(rename = "committed_ok")]
    Ok,
    #[serde(rename = "committed_failed")]
    Failed {
        reason: String,
    },
    Rejected {
        reason: String,
    },
}

impl ReceiptStatus {
    /// The status name of the user contract: `committed_ok`, `committed_failed`, `rejected`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReceiptStatus::Ok => "committed_ok",
            ReceiptStatus::Failed { .. } => "committed_failed",
            ReceiptStatus::Rejected { .. } => "rejected",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            ReceiptStatus::Ok => None,
            ReceiptStatus::Failed { reason } | ReceiptStatus::Rejected { reason } => Some(reason),
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, ReceiptStatus::Ok)
    }
}

/// Something a contract announced with `emit_event`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub contract: Address,
    #[serde(with = "hex_bytes")]
    pub topic: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub tx_hash: Digest,
    pub status: ReceiptStatus,
    pub height: u64,
    /// Position of the transaction in its block.
    pub index: u32,
    pub fuel_used: u64,
    /// Events of a successful payload (empty otherwise).
    pub events: Vec<Event>,
    /// What the contract passed to `return_data` (empty otherwise).
    #[serde(with = "hex_bytes")]
    pub return_data: Vec<u8>,
    /// The new contract's address, for a successful deploy.
    pub contract: Option<Address>,
}

impl Receipt {
    pub fn digest(&self) -> Result<Digest, CodecError> {
        Ok(sha256(&codec::encode(self)?))
    }
}

/// The binary Merkle root of the receipts' digests, in block order.
pub fn receipts_root(receipts: &[Receipt]) -> Result<Digest, CodecError> {
    let digests = receipts.iter().map(Receipt::digest).collect::<Result<Vec<_>, _>>()?;
    Ok(merkle_root(&digests))
}

/// What executing one block produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockOutcome {
    pub height: u64,
    /// Root of the state tree after the block.
    pub state_root: Digest,
    /// [`receipts_root`] of `receipts`.
    pub receipts_root: Digest,
    pub receipts: Vec<Receipt>,
}
