//! The fuel schedule: what each kind of work costs, and the fee rule.
//!
//! Fuel is the unit of execution work. WebAssembly instructions cost what `wasmi` 2.0's
//! default operator costs say (about one unit per instruction); everything else costs the
//! constants below. A transaction pays `fuel_used × FUEL_PRICE` native tokens, which are
//! burned. These numbers are part of consensus: changing one changes state roots.
//!
//! Every transaction first pays its *intrinsic* fuel ([`intrinsic_fuel`]) before anything
//! runs; a transfer costs exactly [`TRANSFER_FUEL`] and nothing more.

use crate::transaction::{Payload, Transaction};

/// Native tokens charged per unit of fuel used.
pub const FUEL_PRICE: u64 = 1;
/// The largest fuel limit a transaction may ask for.
pub const MAX_FUEL_LIMIT: u64 = 1_000_000_000;
/// A fuel limit that covers any of the example contracts' calls; the SDK's default.
pub const DEFAULT_FUEL_LIMIT: u64 = 10_000_000;
/// Fuel available to a read-only view.
pub const VIEW_FUEL_LIMIT: u64 = 10_000_000;

/// The whole cost of a native transfer.
pub const TRANSFER_FUEL: u64 = 1_000;
/// Base cost of a deploy, before the per-byte costs.
pub const DEPLOY_BASE_FUEL: u64 = 20_000;
/// Per byte of deployed code: validation and compilation.
pub const DEPLOY_CODE_BYTE_FUEL: u64 = 20;
/// Base cost of a contract call, before the per-byte costs.
pub const CALL_BASE_FUEL: u64 = 2_000;
/// Per byte of the encoded transaction, for deploys and calls.
pub const TX_BYTE_FUEL: u64 = 2;
/// Per byte of contract code, each time the contract is instantiated for a call or view.
pub const CODE_LOAD_BYTE_FUEL: u64 = 1;

/// Every host function call.
pub const HOST_CALL_FUEL: u64 = 50;
/// Per byte copied between guest memory and the host, in either direction.
pub const HOST_BYTE_FUEL: u64 = 1;
/// A storage read, on top of the call and byte costs.
pub const STORAGE_READ_FUEL: u64 = 500;
/// A storage write or removal, on top of the call cost.
pub const STORAGE_WRITE_FUEL: u64 = 2_000;
/// Per byte of key and value written.
pub const STORAGE_WRITE_BYTE_FUEL: u64 = 10;
/// An event, on top of the call and byte costs.
pub const EVENT_FUEL: u64 = 500;
/// A native transfer made by a contract.
pub const CONTRACT_TRANSFER_FUEL: u64 = 1_000;

/// Fuel charged before a transaction's payload runs. Saturating arithmetic: with the
/// admission limits on sizes this never saturates, and if it did the result would still be
/// the same on every validator.
/// `encoded_len` is the size of the signed transaction's canonical encoding.
pub fn intrinsic_fuel(tx: &Transaction, encoded_len: usize) -> u64 {
    let size_fuel = TX_BYTE_FUEL.saturating_mul(encoded_len as u64);
    match &tx.payload {
        Payload::Transfer { .. } => TRANSFER_FUEL,
        Payload::Deploy { code, .. } => DEPLOY_BASE_FUEL
            .saturating_add(size_fuel)
            .saturating_add(DEPLOY_CODE_BYTE_FUEL.saturating_mul(code.len() as u64)),
        Payload::Call { .. } => CALL_BASE_FUEL.saturating_add(size_fuel),
    }
}

/// The most a transaction with `fuel_limit` can pay, or `None` if that overflows.
pub fn max_fee(fuel_limit: u64) -> Option<u64> {
    fuel_limit.checked_mul(FUEL_PRICE)
}
