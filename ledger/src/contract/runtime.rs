//! [`ContractRuntime`]: the configured wasmi engine, the host-function linker, a cache of
//! compiled modules, and running one method of one contract.
//!
//! Determinism: modules are compiled eagerly (lazy compilation would charge fuel on first
//! use, which depends on what a validator has cached), fuel metering is on, floats are
//! off, and memory, table, stack and recursion limits are fixed (see `limits`). Each call
//! gets a fresh `Store` and instance, so nothing leaks between calls but what the contract
//! wrote to state. The module cache is keyed by code hash and only saves compile time;
//! the fuel charged for loading code is the same on a hit and a miss.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bastion_crypto::Digest;
use wasmi::{
    CompilationMode, Config, EnforcedLimits, Engine, Linker, Module, Store, StoreLimitsBuilder, TrapCode,
};

use crate::contract::host::{self, HostState, HostTrap, Mode};
use crate::contract::limits::{
    MAX_MEMORY_PAGES, MAX_RECURSION_DEPTH, MAX_TABLE_ELEMENTS, MAX_VALUE_STACK_BYTES, MODULE_CACHE_CAPACITY,
};
use crate::contract::validate::validate;
use crate::error::{ContractError, LedgerError, StoreError};
use crate::overlay::Overlay;
use crate::{Address, Event, StateKey};

const PAGE_BYTES: u64 = 64 * 1024;

/// One method invocation.
pub(crate) struct CallRequest<'a> {
    pub contract: Address,
    pub caller: Address,
    pub method: &'a str,
    pub input: Vec<u8>,
    pub height: u64,
    pub mode: Mode,
    pub fuel: u64,
}

pub(crate) struct CallSuccess {
    pub events: Vec<Event>,
    pub return_data: Vec<u8>,
}

pub(crate) enum CallFailure {
    OutOfFuel,
    /// The contract's fault, with a deterministic reason.
    Reason(String),
    /// The store failed: abandon the block.
    Fatal(StoreError),
}

pub(crate) struct CallOutcome {
    /// The overlay, with the call's writes still pending.
    pub overlay: Overlay,
    pub fuel_left: u64,
    pub result: Result<CallSuccess, CallFailure>,
}

/// A compiled contract and the size of its code (for the load fee).
#[derive(Clone)]
pub(crate) struct LoadedContract {
    pub module: Module,
    pub code_len: usize,
}

pub(crate) struct ContractRuntime {
    engine: Engine,
    linker: Linker<HostState>,
    modules: Mutex<BTreeMap<Digest, LoadedContract>>,
}

impl ContractRuntime {
    pub fn new() -> Result<Self, LedgerError> {
        let mut config = Config::default();
        config
            .consume_fuel(true)
            .compilation_mode(CompilationMode::Eager)
            .floats(false)
            .wasm_saturating_float_to_int(false)
            .wasm_memory64(false)
            .wasm_multi_memory(false)
            .wasm_reference_types(false)
            .wasm_custom_page_sizes(false)
            .wasm_wide_arithmetic(false)
            .allow_start_fn(false)
            .ignore_custom_sections(true)
            .enforced_limits(EnforcedLimits::strict())
            .set_max_recursion_depth(MAX_RECURSION_DEPTH)
            .set_max_stack_height(MAX_VALUE_STACK_BYTES);
        let engine = Engine::new(&config);
        let mut linker = Linker::new(&engine);
        host::define(&mut linker).map_err(|e| LedgerError::Runtime(e.to_string()))?;
        Ok(ContractRuntime { engine, linker, modules: Mutex::new(BTreeMap::new()) })
    }

    /// Full deploy-time validation and compilation of `code`.
    pub fn compile(&self, code: &[u8]) -> Result<Module, ContractError> {
        validate(&self.engine, code)
    }

    pub fn remember(&self, code_hash: Digest, loaded: LoadedContract) {
        let Ok(mut modules) = self.modules.lock() else { return };
        if modules.len() >= MODULE_CACHE_CAPACITY {
            modules.pop_first();
        }
        modules.insert(code_hash, loaded);
    }

    /// The compiled contract at `contract`, or `None` if no contract is deployed there.
    pub fn load(&self, overlay: &Overlay, contract: &Address) -> Result<Option<LoadedContract>, CallFailure> {
        let account = overlay.account(contract).map_err(CallFailure::Fatal)?;
        let Some(code_hash) = account.code_hash else { return Ok(None) };
        if let Some(hit) = self.modules.lock().ok().and_then(|m| m.get(&code_hash).cloned()) {
            return Ok(Some(hit));
        }
        let code = overlay.get(&StateKey::Code(*contract)).map_err(CallFailure::Fatal)?.ok_or_else(|| {
            CallFailure::Fatal(StoreError::Corrupt(format!("contract {contract} has no code")))
        })?;
        // Stored code passed this same check at deploy; failing now means a different runtime.
        let module = self.compile(&code).map_err(|e| CallFailure::Reason(format!("stored code: {e}")))?;
        let loaded = LoadedContract { module, code_len: code.len() };
        self.remember(code_hash, loaded.clone());
        Ok(Some(loaded))
    }

    /// Runs `request.method` of a fresh instance of `module`.
    pub fn call(&self, module: &Module, overlay: Overlay, request: CallRequest<'_>) -> CallOutcome {
        let limits = StoreLimitsBuilder::new()
            .memory_size((MAX_MEMORY_PAGES * PAGE_BYTES) as usize)
            .table_elements(MAX_TABLE_ELEMENTS)
            .instances(1)
            .tables(1)
            .memories(1)
            .build();
        let state = HostState {
            overlay,
            contract: request.contract,
            caller: request.caller,
            height: request.height,
            input: request.input,
            mode: request.mode,
            events: Vec::new(),
            return_data: Vec::new(),
            fatal: None,
            limits,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        let ran = store.set_fuel(request.fuel).and_then(|()| {
            let instance = self.linker.instantiate_and_start(&mut store, module)?;
            let func = instance.get_typed_func::<(), ()>(&store, request.method).map_err(|_| {
                wasmi::Error::host(HostTrap::Violation(format!("no method {:?}", request.method)))
            })?;
            func.call(&mut store, ())
        });
        let fuel_left = store.get_fuel().unwrap_or(0);
        let mut state = store.into_data();
        let result = match (state.fatal.take(), ran) {
            (Some(fatal), _) => Err(CallFailure::Fatal(fatal)),
            (None, Ok(())) => Ok(CallSuccess { events: state.events, return_data: state.return_data }),
            (None, Err(e)) => Err(classify(&e)),
        };
        CallOutcome { overlay: state.overlay, fuel_left, result }
    }
}

fn classify(error: &wasmi::Error) -> CallFailure {
    if let Some(host) = error.downcast_ref::<HostTrap>() {
        return match host {
            HostTrap::OutOfFuel => CallFailure::OutOfFuel,
            other => CallFailure::Reason(other.to_string()),
        };
    }
    match error.as_trap_code() {
        Some(TrapCode::OutOfFuel) => CallFailure::OutOfFuel,
        Some(code) => CallFailure::Reason(format!("trap: {code}")),
        None => CallFailure::Reason(error.to_string()),
    }
}
