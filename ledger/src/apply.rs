//! The state transition of one transaction inside a block at height `h`.
//!
//! 1. **Rejected** (receipt `rejected`, `fuel_used` 0, no state change at all) when, checked
//!    in this order: `expiry_height < h` ("expired"); `nonce` differs from the sender's
//!    next nonce ("bad nonce": both lower, a replay, and higher, a gap); `fuel_limit` is
//!    above `MAX_FUEL_LIMIT` or below the intrinsic fuel ("fuel limit below intrinsic
//!    cost"); the sender's balance is below `fuel_limit × FUEL_PRICE` ("insufficient
//!    balance for fees").
//! 2. Otherwise the maximum fee is debited and the nonce advanced; this sticks whatever
//!    happens next.
//! 3. The payload runs with `fuel_limit − intrinsic` fuel, its writes pending:
//!    * Transfer: the amount moves from the sender (after the fee debit) to `to`;
//!      "insufficient balance" if it cannot.
//!    * Deploy: validate and compile, create the contract at
//!      `Address::contract(sender, nonce)`, store the code, run `init` if exported.
//!    * Call: load the contract (charging `CODE_LOAD_BYTE_FUEL` per code byte), run `method`.
//! 4. On success the pending writes are kept (`committed_ok`); on any failure they are
//!    dropped (`committed_failed` with the reason; running out of fuel uses all of it).
//! 5. The unused part of the maximum fee is refunded: the sender pays exactly
//!    `fuel_used × FUEL_PRICE`, which is burned.
//!
//! Only storage failures are errors; they abandon the whole block.

use bastion_crypto::sha256;
use wasmi::{ExternType, Module};

use crate::contract::host::Mode;
use crate::contract::runtime::{CallFailure, CallRequest, ContractRuntime, LoadedContract};
use crate::error::StoreError;
use crate::fuel::{intrinsic_fuel, max_fee, CODE_LOAD_BYTE_FUEL, FUEL_PRICE, MAX_FUEL_LIMIT};
use crate::overlay::Overlay;
use crate::receipt::{Event, Receipt, ReceiptStatus};
use crate::transaction::Payload;
use crate::{Account, Address, StateKey, VerifiedTransaction};

/// What a successful payload produced.
#[derive(Default)]
struct Effects {
    events: Vec<Event>,
    return_data: Vec<u8>,
    contract: Option<Address>,
}

/// A payload's result and the fuel it used beyond the intrinsic fuel.
struct Execution {
    fuel_used: u64,
    result: Result<Effects, String>,
}

impl Execution {
    fn failed(fuel_used: u64, reason: impl Into<String>) -> Self {
        Execution { fuel_used, result: Err(reason.into()) }
    }
}

pub(crate) struct BlockContext<'a> {
    pub height: u64,
    pub runtime: &'a ContractRuntime,
}

/// Applies `tx` (at position `index`) to `overlay`; returns the overlay and the receipt.
pub(crate) fn apply_transaction(
    ctx: &BlockContext<'_>,
    mut overlay: Overlay,
    tx: &VerifiedTransaction,
    index: u32,
) -> Result<(Overlay, Receipt), StoreError> {
    let receipt = |status, fuel_used, effects: Effects| Receipt {
        tx_hash: tx.hash(),
        status,
        height: ctx.height,
        index,
        fuel_used,
        events: effects.events,
        return_data: effects.return_data,
        contract: effects.contract,
    };
    let reject =
        |reason: &str| receipt(ReceiptStatus::Rejected { reason: reason.into() }, 0, Effects::default());

    let t = tx.tx();
    let sender = tx.sender();
    if t.expiry_height < ctx.height {
        return Ok((overlay, reject("expired")));
    }
    let mut account = overlay.account(&sender)?;
    if t.nonce != account.nonce {
        return Ok((overlay, reject("bad nonce")));
    }
    let intrinsic = intrinsic_fuel(t, tx.encoded_len());
    if t.fuel_limit > MAX_FUEL_LIMIT {
        return Ok((overlay, reject("fuel limit above maximum")));
    }
    if t.fuel_limit < intrinsic {
        return Ok((overlay, reject("fuel limit below intrinsic cost")));
    }
    let (Some(max_fee), Some(next_nonce)) = (max_fee(t.fuel_limit), account.nonce.checked_add(1)) else {
        return Ok((overlay, reject("insufficient balance for fees")));
    };
    let Some(balance) = account.balance.checked_sub(max_fee) else {
        return Ok((overlay, reject("insufficient balance for fees")));
    };
    account.balance = balance;
    account.nonce = next_nonce;
    overlay.set_account(&sender, &account)?;
    overlay.commit_pending();

    let budget = t.fuel_limit - intrinsic;
    let (mut overlay, execution) = run_payload(ctx, overlay, tx, budget)?;
    let status = match &execution.result {
        Ok(_) => {
            overlay.commit_pending();
            ReceiptStatus::Ok
        }
        Err(reason) => {
            overlay.discard_pending();
            ReceiptStatus::Failed { reason: reason.clone() }
        }
    };

    let fuel_used = intrinsic + execution.fuel_used.min(budget);
    let refund = (t.fuel_limit - fuel_used) * FUEL_PRICE;
    let mut account = overlay.account(&sender)?;
    account.balance = account
        .balance
        .checked_add(refund)
        .ok_or_else(|| StoreError::Corrupt("balance above total supply".into()))?;
    overlay.set_account(&sender, &account)?;
    overlay.commit_pending();

    Ok((overlay, receipt(status, fuel_used, execution.result.unwrap_or_default())))
}

fn run_payload(
    ctx: &BlockContext<'_>,
    overlay: Overlay,
    tx: &VerifiedTransaction,
    budget: u64,
) -> Result<(Overlay, Execution), StoreError> {
    let t = tx.tx();
    match &t.payload {
        Payload::Transfer { to, amount } => {
            let mut overlay = overlay;
            let execution = transfer(&mut overlay, &tx.sender(), to, *amount)?;
            Ok((overlay, execution))
        }
        Payload::Deploy { code, init } => deploy(ctx, overlay, tx, code, init, budget),
        Payload::Call { contract, method, args } => {
            call(ctx, overlay, tx.sender(), contract, method, args.clone(), budget)
        }
    }
}

fn transfer(
    overlay: &mut Overlay,
    from: &Address,
    to: &Address,
    amount: u64,
) -> Result<Execution, StoreError> {
    let mut payer = overlay.account(from)?;
    let Some(rest) = payer.balance.checked_sub(amount) else {
        return Ok(Execution::failed(0, "insufficient balance"));
    };
    if from != to {
        let mut payee = overlay.account(to)?;
        let Some(credited) = payee.balance.checked_add(amount) else {
            return Ok(Execution::failed(0, "recipient balance overflow"));
        };
        payer.balance = rest;
        payee.balance = credited;
        overlay.set_account(from, &payer)?;
        overlay.set_account(to, &payee)?;
    }
    Ok(Execution { fuel_used: 0, result: Ok(Effects::default()) })
}

fn deploy(
    ctx: &BlockContext<'_>,
    mut overlay: Overlay,
    tx: &VerifiedTransaction,
    code: &[u8],
    init: &[u8],
    budget: u64,
) -> Result<(Overlay, Execution), StoreError> {
    let module = match ctx.runtime.compile(code) {
        Ok(module) => module,
        Err(e) => return Ok((overlay, Execution::failed(0, format!("invalid contract: {e}")))),
    };
    let t = tx.tx();
    let address = Address::contract(&t.sender, t.nonce);
    let existing = overlay.account(&address)?;
    if existing.is_contract() {
        return Ok((overlay, Execution::failed(0, "contract address already in use")));
    }
    let code_hash = sha256(code);
    overlay.set(StateKey::Code(address), code.to_vec());
    overlay.set_account(&address, &Account { code_hash: Some(code_hash), ..existing })?;

    let has_init = matches!(module.get_export("init"), Some(ExternType::Func(_)));
    let (overlay, mut execution) = if has_init {
        let request = execute_request(ctx, tx.sender(), address, "init", init.to_vec(), budget);
        invoke(ctx, overlay, &module, request)?
    } else if !init.is_empty() {
        (overlay, Execution::failed(0, "init arguments given, but the contract has no init"))
    } else {
        (overlay, Execution { fuel_used: 0, result: Ok(Effects::default()) })
    };
    if let Ok(effects) = &mut execution.result {
        effects.contract = Some(address);
        ctx.runtime.remember(code_hash, LoadedContract { module, code_len: code.len() });
    }
    Ok((overlay, execution))
}

fn call(
    ctx: &BlockContext<'_>,
    overlay: Overlay,
    caller: Address,
    contract: &Address,
    method: &str,
    args: Vec<u8>,
    budget: u64,
) -> Result<(Overlay, Execution), StoreError> {
    if method == "init" {
        return Ok((overlay, Execution::failed(0, "init runs only at deploy")));
    }
    let loaded = match ctx.runtime.load(&overlay, contract) {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return Ok((overlay, Execution::failed(0, format!("no contract at {contract}")))),
        Err(CallFailure::Fatal(e)) => return Err(e),
        Err(CallFailure::OutOfFuel) => return Ok((overlay, Execution::failed(budget, "out of fuel"))),
        Err(CallFailure::Reason(reason)) => return Ok((overlay, Execution::failed(0, reason))),
    };
    let load_fuel = CODE_LOAD_BYTE_FUEL.saturating_mul(loaded.code_len as u64);
    let Some(rest) = budget.checked_sub(load_fuel) else {
        return Ok((overlay, Execution::failed(budget, "out of fuel")));
    };
    let request = execute_request(ctx, caller, *contract, method, args, rest);
    let (overlay, mut execution) = invoke(ctx, overlay, &loaded.module, request)?;
    execution.fuel_used = execution.fuel_used.saturating_add(load_fuel);
    Ok((overlay, execution))
}

fn execute_request<'m>(
    ctx: &BlockContext<'_>,
    caller: Address,
    contract: Address,
    method: &'m str,
    input: Vec<u8>,
    fuel: u64,
) -> CallRequest<'m> {
    CallRequest { contract, caller, method, input, height: ctx.height, mode: Mode::Execute, fuel }
}

fn invoke(
    ctx: &BlockContext<'_>,
    overlay: Overlay,
    module: &Module,
    request: CallRequest<'_>,
) -> Result<(Overlay, Execution), StoreError> {
    let fuel = request.fuel;
    let outcome = ctx.runtime.call(module, overlay, request);
    let used = fuel.saturating_sub(outcome.fuel_left);
    let execution = match outcome.result {
        Ok(success) => Execution {
            fuel_used: used,
            result: Ok(Effects { events: success.events, return_data: success.return_data, contract: None }),
        },
        Err(CallFailure::OutOfFuel) => Execution::failed(fuel, "out of fuel"),
        Err(CallFailure::Reason(reason)) => Execution::failed(used, reason),
        Err(CallFailure::Fatal(e)) => return Err(e),
    };
    Ok((outcome.overlay, execution))
}
