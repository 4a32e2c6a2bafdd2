//! Smart contracts: WebAssembly modules run by `wasmi` with fuel metering.
//!
//! # Calling convention (the contract ABI)
//!
//! A contract is a binary WebAssembly module (write it in WAT and compile it with
//! [`compile_wat`] or any assembler). It must export its linear memory as `"memory"`.
//!
//! * **Methods** are exported functions with no parameters and no results. A call
//!   transaction (or a view) names the export to run. Every exported function must have
//!   this type, or the deploy is refused.
//! * **Arguments** are raw bytes: the method reads them with `input_len()` and
//!   `input_read(ptr)`.
//! * **Results** are raw bytes passed to `return_data(ptr, len)` (the last call wins); they
//!   appear in the receipt (`return_hex`) or the view's answer.
//! * **Failure**: `abort(msg_ptr, msg_len)` stops the call; the receipt is
//!   `committed_failed` with reason `"aborted: <msg>"`. A trap (`unreachable`, division by
//!   zero, out-of-bounds access, ...) fails it with reason `"trap: <what>"`; running out of
//!   fuel fails it with reason `"out of fuel"`. A failed call's state changes, events and
//!   transfers are all reverted; its fee is still charged and the sender's nonce advances.
//! * **Deploy**: after the module validates, its optional `init` export runs once with the
//!   deploy's `init` bytes as input and the deployer as caller; if it fails, no contract is
//!   created. `init` cannot be called afterwards. Giving `init` bytes to a module without
//!   an `init` export fails the deploy.
//!
//! # Host functions (module `"env"`)
//!
//! Pointers and lengths are `i32` (read as unsigned); every access is bounds-checked.
//!
//! | function | meaning |
//! |---|---|
//! | `input_len() -> i32` | length of the input |
//! | `input_read(ptr)` | copy the input to `ptr` |
//! | `storage_get(key_ptr, key_len, out_ptr) -> i32` | copy the value to `out_ptr`, return its length, or `-1` if absent |
//! | `storage_set(key_ptr, key_len, val_ptr, val_len)` | store a value (key ≤ 256 B, value ≤ 64 KiB) |
//! | `storage_remove(key_ptr, key_len)` | delete a key |
//! | `caller(out_ptr)` | the 32-byte address of the transaction's sender (zero in a view) |
//! | `self_address(out_ptr)` | the contract's own 32-byte address |
//! | `block_height() -> i64` | height of the executing block (the queried height in a view) |
//! | `emit_event(topic_ptr, topic_len, data_ptr, data_len)` | record an event in the receipt |
//! | `transfer(to_ptr, amount: i64) -> i32` | send native tokens from the contract's balance (amount is a u64 bit pattern); `0` sent, `1` insufficient balance |
//! | `return_data(ptr, len)` | set the call's result |
//! | `abort(msg_ptr, msg_len)` | fail the call with a message |
//!
//! Costs are in `fuel`; limits in [`limits`]. In a read-only view, `storage_set`,
//! `storage_remove` and `transfer` trap.

pub(crate) mod host;
pub mod limits;
pub(crate) mod runtime;
mod validate;

use crate::error::ContractError;

/// Compiles WebAssembly text (WAT) to the binary module a deploy carries. Binary input is
/// returned unchanged.
pub fn compile_wat(source: impl AsRef<[u8]>) -> Result<Vec<u8>, ContractError> {
    wat::parse_bytes(source.as_ref())
        .map(|code| code.into_owned())
        .map_err(|e| ContractError::Wat(e.to_string()))
}
