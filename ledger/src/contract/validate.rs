//! Deploy-time checks: what makes a module acceptable as a contract.
//!
//! A module is accepted iff
//! * it is at most `MAX_CODE_BYTES` of *binary* WebAssembly (text is compiled by the SDK),
//! * it validates under the runtime's feature set: no floating point, no SIMD, no
//!   memory64, no multi-memory, no reference types, no start function, within wasmi's
//!   strict parse limits,
//! * every import is a function of module `"env"` named in `HOST_FUNCTIONS` with exactly
//!   that type (no imported memories, tables or globals),
//! * it exports its memory as `"memory"`, starting at no more than `MAX_MEMORY_PAGES`,
//! * every exported function takes no parameters and returns nothing (the calling
//!   convention: arguments and results travel through host functions).

use wasmi::{Engine, ExternType, Module};

use crate::codec::MAX_CODE_BYTES;
use crate::contract::host::HOST_FUNCTIONS;
use crate::contract::limits::MAX_MEMORY_PAGES;
use crate::error::ContractError;

const WASM_MAGIC: &[u8] = b"\0asm";

pub(crate) fn validate(engine: &Engine, code: &[u8]) -> Result<Module, ContractError> {
    if code.len() > MAX_CODE_BYTES {
        return Err(ContractError::TooLarge { size: code.len(), max: MAX_CODE_BYTES });
    }
    if !code.starts_with(WASM_MAGIC) {
        return Err(ContractError::NotBinary);
    }
    let module = Module::new(engine, code).map_err(|e| ContractError::Invalid(e.to_string()))?;
    check_imports(&module)?;
    check_exports(&module)?;
    Ok(module)
}

fn check_imports(module: &Module) -> Result<(), ContractError> {
    for import in module.imports() {
        let forbidden =
            || ContractError::ForbiddenImport { module: import.module().into(), name: import.name().into() };
        if import.module() != "env" {
            return Err(forbidden());
        }
        let Some((_, params, results)) = HOST_FUNCTIONS.iter().find(|(name, _, _)| *name == import.name())
        else {
            return Err(forbidden());
        };
        match import.ty() {
            ExternType::Func(ty) if ty.params() == *params && ty.results() == *results => {}
            ExternType::Func(_) => return Err(ContractError::ImportType(import.name().into())),
            _ => return Err(forbidden()),
        }
    }
    Ok(())
}

fn check_exports(module: &Module) -> Result<(), ContractError> {
    match module.get_export("memory") {
        Some(ExternType::Memory(memory)) if memory.minimum() > MAX_MEMORY_PAGES => {
            return Err(ContractError::MemoryTooLarge { pages: memory.minimum(), max: MAX_MEMORY_PAGES });
        }
        Some(ExternType::Memory(_)) => {}
        _ => return Err(ContractError::NoMemoryExport),
    }
    for export in module.exports() {
        if let ExternType::Func(ty) = export.ty() {
            if !ty.params().is_empty() || !ty.results().is_empty() {
                return Err(ContractError::MethodSignature(export.name().into()));
            }
        }
    }
    Ok(())
}
