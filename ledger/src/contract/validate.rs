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

use std::panic::{catch_unwind, AssertUnwindSafe};

use wasmi::{Engine, ExternType, Module};

use crate::codec::MAX_CODE_BYTES;
use crate::contract::host::HOST_FUNCTIONS;
use crate::contract::limits::MAX_MEMORY_PAGES;
use crate::error::ContractError;

const WASM_MAGIC: &[u8] = b"\0asm";
/// Magic and version.
const WASM_HEADER_BYTES: usize = 8;
const CODE_SECTION_ID: u8 = 10;

pub(crate) fn validate(engine: &Engine, code: &[u8]) -> Result<Module, ContractError> {
    if code.len() > MAX_CODE_BYTES {
        return Err(ContractError::TooLarge { size: code.len(), max: MAX_CODE_BYTES });
    }
    if !code.starts_with(WASM_MAGIC) {
        return Err(ContractError::NotBinary);
    }
    check_code_section(code)?;
    // Deploy bytes are untrusted: a parser panic (wasmi 2.0 had one, found by fuzzing) must
    // reject the contract, the same way on every validator, not take the validator down.
    let parsed = catch_unwind(AssertUnwindSafe(|| Module::new(engine, code)))
        .map_err(|_| ContractError::Invalid("the module crashed the parser".into()))?;
    let module = parsed.map_err(|e| ContractError::Invalid(e.to_string()))?;
    check_imports(&module)?;
    check_exports(&module)?;
    Ok(module)
}

/// A code section that declares no function bodies must hold nothing else. wasmi 2.0
/// divides the section's size by its function count before checking that, and panics.
fn check_code_section(code: &[u8]) -> Result<(), ContractError> {
    let mut rest = code.get(WASM_HEADER_BYTES..).unwrap_or_default();
    while let Some((&id, after_id)) = rest.split_first() {
        // Malformed framing is left to the parser, which reports it properly.
        let Some((size, after_size)) = read_leb_u32(after_id) else { return Ok(()) };
        if id == CODE_SECTION_ID {
            // The declared size counts, even if the module is cut short after the count.
            if let Some((0, after_count)) = read_leb_u32(after_size) {
                let count_len = after_size.len() - after_count.len();
                if size as usize > count_len {
                    return Err(ContractError::Invalid(format!(
                        "code section declares no function bodies but is {size} bytes long"
                    )));
                }
            }
        }
        let Some(next) = after_size.get(size as usize..) else { return Ok(()) };
        rest = next;
    }
    Ok(())
}

/// An unsigned LEB128 `u32` and the bytes after it.
fn read_leb_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let mut value: u32 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(5) {
        value |= u32::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
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
