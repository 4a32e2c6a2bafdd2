//! The host functions a contract may import from module `"env"`, and the state they act on.
//!
//! Every function charges fuel *before* it does the work, sized by the lengths the guest
//! asked for, so a call that cannot pay never touches memory or state. Every guest pointer
//! and length is bounds-checked against the guest's memory: a bad one traps the call
//! ("memory access out of bounds"), it never reads or writes outside the guest. Lengths are
//! `i32` reinterpreted as `u32`, so negative lengths are simply too large.
//!
//! State changes go to the pending layer of the [`Overlay`]; the caller of the contract
//! keeps or discards them as a whole. In [`Mode::View`] the state-changing functions
//! (`storage_set`, `storage_remove`, `transfer`) trap instead.

use wasmi::errors::HostError;
use wasmi::{Caller, Error, Extern, Linker, Memory, StoreLimits, ValType};

use crate::contract::limits::{
    MAX_ABORT_MESSAGE_BYTES, MAX_EVENTS, MAX_EVENT_DATA_BYTES, MAX_EVENT_TOPIC_BYTES, MAX_RETURN_BYTES,
};
use crate::error::StoreError;
use crate::fuel::{
    CONTRACT_TRANSFER_FUEL, EVENT_FUEL, HOST_BYTE_FUEL, HOST_CALL_FUEL, STORAGE_READ_FUEL,
    STORAGE_WRITE_BYTE_FUEL, STORAGE_WRITE_FUEL,
};
use crate::overlay::Overlay;
use crate::state_key::{MAX_STORAGE_KEY_BYTES, MAX_STORAGE_VALUE_BYTES};
use crate::{Address, Event, StateKey};

/// Whether the call may change state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Execute,
    View,
}

/// Everything a running contract can see and touch.
pub(crate) struct HostState {
    pub overlay: Overlay,
    pub contract: Address,
    pub caller: Address,
    pub height: u64,
    pub input: Vec<u8>,
    pub mode: Mode,
    pub events: Vec<Event>,
    pub return_data: Vec<u8>,
    /// Set when the store failed under a host call: not the contract's fault, so the
    /// block must not be executed to a (non-deterministic) result.
    pub fatal: Option<StoreError>,
    pub limits: StoreLimits,
}

/// Why a host function stopped the guest.
#[derive(Debug)]
pub(crate) enum HostTrap {
    Abort(String),
    OutOfFuel,
    Violation(String),
    StoreFailure,
}

impl std::fmt::Display for HostTrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostTrap::Abort(msg) => write!(f, "aborted: {msg}"),
            HostTrap::OutOfFuel => f.write_str("out of fuel"),
            HostTrap::Violation(msg) => f.write_str(msg),
            HostTrap::StoreFailure => f.write_str("storage failure"),
        }
    }
}

impl HostError for HostTrap {}

type Ctx<'a> = Caller<'a, HostState>;

use ValType::{I32, I64};

/// `(name, params, results)` of every host function; imports must match exactly.
pub(crate) const HOST_FUNCTIONS: &[(&str, &[ValType], &[ValType])] = &[
    ("input_len", &[], &[I32]),
    ("input_read", &[I32], &[]),
    ("storage_get", &[I32, I32, I32], &[I32]),
    ("storage_set", &[I32, I32, I32, I32], &[]),
    ("storage_remove", &[I32, I32], &[]),
    ("caller", &[I32], &[]),
    ("self_address", &[I32], &[]),
    ("block_height", &[], &[I64]),
    ("emit_event", &[I32, I32, I32, I32], &[]),
    ("transfer", &[I32, I64], &[I32]),
    ("return_data", &[I32, I32], &[]),
    ("abort", &[I32, I32], &[]),
];

fn trap(t: HostTrap) -> Error {
    Error::host(t)
}

fn violation(msg: impl Into<String>) -> Error {
    trap(HostTrap::Violation(msg.into()))
}

fn fatal(ctx: &mut Ctx<'_>, e: StoreError) -> Error {
    ctx.data_mut().fatal = Some(e);
    trap(HostTrap::StoreFailure)
}

fn charge(ctx: &mut Ctx<'_>, fuel: u64) -> Result<(), Error> {
    let left = ctx.get_fuel()?;
    match left.checked_sub(fuel) {
        Some(rest) => ctx.set_fuel(rest),
        None => {
            ctx.set_fuel(0)?;
            Err(trap(HostTrap::OutOfFuel))
        }
    }
}

fn byte_fuel(len: usize) -> u64 {
    HOST_BYTE_FUEL.saturating_mul(len as u64)
}

fn memory(ctx: &Ctx<'_>) -> Result<Memory, Error> {
    ctx.get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| violation("module exports no memory"))
}

/// A guest length, checked against `max` before any work is done.
fn length(len: i32, max: usize, what: &str) -> Result<usize, Error> {
    let len = len as u32 as usize;
    if len > max {
        return Err(violation(format!("{what} is longer than {max} bytes")));
    }
    Ok(len)
}

fn read_guest(ctx: &mut Ctx<'_>, ptr: i32, len: usize) -> Result<Vec<u8>, Error> {
    charge(ctx, byte_fuel(len))?;
    let mut buf = vec![0u8; len];
    memory(ctx)?
        .read(&*ctx, ptr as u32 as usize, &mut buf)
        .map_err(|_| violation("memory access out of bounds"))?;
    Ok(buf)
}

fn write_guest(ctx: &mut Ctx<'_>, ptr: i32, data: &[u8]) -> Result<(), Error> {
    charge(ctx, byte_fuel(data.len()))?;
    memory(ctx)?
        .write(&mut *ctx, ptr as u32 as usize, data)
        .map_err(|_| violation("memory access out of bounds"))
}

fn ensure_writable(ctx: &Ctx<'_>) -> Result<(), Error> {
    match ctx.data().mode {
        Mode::Execute => Ok(()),
        Mode::View => Err(violation("a view cannot modify state")),
    }
}

fn storage_key(ctx: &Ctx<'_>, key: Vec<u8>) -> StateKey {
    StateKey::Storage(ctx.data().contract, key)
}

/// Registers every host function under module `"env"`.
pub(crate) fn define(linker: &mut Linker<HostState>) -> Result<(), wasmi::errors::LinkerError> {
    linker.func_wrap("env", "input_len", |mut ctx: Ctx<'_>| -> Result<i32, Error> {
        charge(&mut ctx, HOST_CALL_FUEL)?;
        i32::try_from(ctx.data().input.len()).map_err(|_| violation("input too large"))
    })?;
    linker.func_wrap("env", "input_read", |mut ctx: Ctx<'_>, ptr: i32| -> Result<(), Error> {
        charge(&mut ctx, HOST_CALL_FUEL)?;
        let input = std::mem::take(&mut ctx.data_mut().input);
        let written = write_guest(&mut ctx, ptr, &input);
        ctx.data_mut().input = input;
        written
    })?;
    linker.func_wrap(
        "env",
        "storage_get",
        |mut ctx: Ctx<'_>, key_ptr: i32, key_len: i32, out_ptr: i32| {
            charge(&mut ctx, HOST_CALL_FUEL.saturating_add(STORAGE_READ_FUEL))?;
            let key_len = length(key_len, MAX_STORAGE_KEY_BYTES, "storage key")?;
            let key = read_guest(&mut ctx, key_ptr, key_len)?;
            let key = storage_key(&ctx, key);
            match ctx.data().overlay.get(&key) {
                Ok(None) => Ok(-1),
                Ok(Some(value)) => {
                    write_guest(&mut ctx, out_ptr, &value)?;
                    i32::try_from(value.len()).map_err(|_| violation("stored value too large"))
                }
                Err(e) => Err(fatal(&mut ctx, e)),
            }
        },
    )?;
    linker.func_wrap("env", "storage_set", |mut ctx: Ctx<'_>, kp: i32, kl: i32, vp: i32, vl: i32| {
        ensure_writable(&ctx)?;
        let key_len = length(kl, MAX_STORAGE_KEY_BYTES, "storage key")?;
        let value_len = length(vl, MAX_STORAGE_VALUE_BYTES, "storage value")?;
        let bytes = (key_len + value_len) as u64;
        charge(&mut ctx, HOST_CALL_FUEL + STORAGE_WRITE_FUEL + STORAGE_WRITE_BYTE_FUEL * bytes)?;
        let key = read_guest(&mut ctx, kp, key_len)?;
        let value = read_guest(&mut ctx, vp, value_len)?;
        let key = storage_key(&ctx, key);
        ctx.data_mut().overlay.set(key, value);
        Ok(())
    })?;
    linker.func_wrap("env", "storage_remove", |mut ctx: Ctx<'_>, kp: i32, kl: i32| {
        ensure_writable(&ctx)?;
        let key_len = length(kl, MAX_STORAGE_KEY_BYTES, "storage key")?;
        charge(&mut ctx, HOST_CALL_FUEL + STORAGE_WRITE_FUEL + STORAGE_WRITE_BYTE_FUEL * key_len as u64)?;
        let key = read_guest(&mut ctx, kp, key_len)?;
        let key = storage_key(&ctx, key);
        ctx.data_mut().overlay.remove(key);
        Ok(())
    })?;
    linker.func_wrap("env", "caller", |mut ctx: Ctx<'_>, out_ptr: i32| {
        charge(&mut ctx, HOST_CALL_FUEL)?;
        let caller = ctx.data().caller;
        write_guest(&mut ctx, out_ptr, &caller.0)
    })?;
    linker.func_wrap("env", "self_address", |mut ctx: Ctx<'_>, out_ptr: i32| {
        charge(&mut ctx, HOST_CALL_FUEL)?;
        let contract = ctx.data().contract;
        write_guest(&mut ctx, out_ptr, &contract.0)
    })?;
    linker.func_wrap("env", "block_height", |mut ctx: Ctx<'_>| -> Result<i64, Error> {
        charge(&mut ctx, HOST_CALL_FUEL)?;
        i64::try_from(ctx.data().height).map_err(|_| violation("height out of range"))
    })?;
    linker.func_wrap("env", "emit_event", |mut ctx: Ctx<'_>, tp: i32, tl: i32, dp: i32, dl: i32| {
        charge(&mut ctx, HOST_CALL_FUEL.saturating_add(EVENT_FUEL))?;
        if ctx.data().events.len() >= MAX_EVENTS {
            return Err(violation(format!("more than {MAX_EVENTS} events")));
        }
        let topic_len = length(tl, MAX_EVENT_TOPIC_BYTES, "event topic")?;
        let data_len = length(dl, MAX_EVENT_DATA_BYTES, "event data")?;
        let topic = read_guest(&mut ctx, tp, topic_len)?;
        let data = read_guest(&mut ctx, dp, data_len)?;
        let contract = ctx.data().contract;
        ctx.data_mut().events.push(Event { contract, topic, data });
        Ok(())
    })?;
    linker.func_wrap(
        "env",
        "transfer",
        |mut ctx: Ctx<'_>, to_ptr: i32, amount: i64| -> Result<i32, Error> {
            ensure_writable(&ctx)?;
            charge(&mut ctx, HOST_CALL_FUEL.saturating_add(CONTRACT_TRANSFER_FUEL))?;
            let to = read_guest(&mut ctx, to_ptr, 32)?;
            let to = Address(to.try_into().map_err(|_| violation("address must be 32 bytes"))?);
            // The i64 is the bit pattern of a u64 amount.
            let from = ctx.data().contract;
            match contract_transfer(&mut ctx.data_mut().overlay, from, to, amount as u64) {
                Ok(moved) => Ok(if moved { 0 } else { 1 }),
                Err(TransferFault::Overflow) => Err(violation("recipient balance overflow")),
                Err(TransferFault::Store(e)) => Err(fatal(&mut ctx, e)),
            }
        },
    )?;
    linker.func_wrap("env", "return_data", |mut ctx: Ctx<'_>, ptr: i32, len: i32| {
        charge(&mut ctx, HOST_CALL_FUEL)?;
        let len = length(len, MAX_RETURN_BYTES, "return data")?;
        let data = read_guest(&mut ctx, ptr, len)?;
        ctx.data_mut().return_data = data;
        Ok(())
    })?;
    linker.func_wrap("env", "abort", |mut ctx: Ctx<'_>, ptr: i32, len: i32| -> Result<(), Error> {
        charge(&mut ctx, HOST_CALL_FUEL)?;
        // Longer messages are cut, not refused: the guest asked to stop either way.
        let len = (len as u32 as usize).min(MAX_ABORT_MESSAGE_BYTES);
        let msg = read_guest(&mut ctx, ptr, len)?;
        Err(trap(HostTrap::Abort(String::from_utf8_lossy(&msg).into_owned())))
    })?;
    Ok(())
}

enum TransferFault {
    Overflow,
    Store(StoreError),
}

/// Moves `amount` from `from` to `to`; `Ok(false)` if `from` holds too little.
fn contract_transfer(
    overlay: &mut Overlay,
    from: Address,
    to: Address,
    amount: u64,
) -> Result<bool, TransferFault> {
    let mut payer = overlay.account(&from).map_err(TransferFault::Store)?;
    let Some(rest) = payer.balance.checked_sub(amount) else {
        return Ok(false);
    };
    if from == to {
        return Ok(true);
    }
    let mut payee = overlay.account(&to).map_err(TransferFault::Store)?;
    payee.balance = payee.balance.checked_add(amount).ok_or(TransferFault::Overflow)?;
    payer.balance = rest;
    overlay.set_account(&from, &payer).map_err(TransferFault::Store)?;
    overlay.set_account(&to, &payee).map_err(TransferFault::Store)?;
    Ok(true)
}
