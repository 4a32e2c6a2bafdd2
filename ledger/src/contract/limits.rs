//! Resource limits of contract execution. Part of consensus: every validator must enforce
//! the same numbers, or a call could succeed on one and trap on another.

/// WebAssembly pages (64 KiB each) a contract's memory may reach: 1 MiB.
pub const MAX_MEMORY_PAGES: u64 = 16;
/// Nested WebAssembly calls before the call traps ("call stack exhausted").
pub const MAX_RECURSION_DEPTH: usize = 512;
/// Bytes of interpreter value stack a call may use.
pub const MAX_VALUE_STACK_BYTES: usize = 1024 * 1024;
/// Entries a contract's table may hold (`call_indirect` targets).
pub const MAX_TABLE_ELEMENTS: usize = 4096;
/// Events one call may emit.
pub const MAX_EVENTS: usize = 64;
pub const MAX_EVENT_TOPIC_BYTES: usize = 256;
pub const MAX_EVENT_DATA_BYTES: usize = 16 * 1024;
pub const MAX_RETURN_BYTES: usize = 64 * 1024;
/// `abort` messages are cut to this length.
pub const MAX_ABORT_MESSAGE_BYTES: usize = 256;
/// Compiled modules kept in memory (by code hash). Not consensus: caching changes speed only.
pub const MODULE_CACHE_CAPACITY: usize = 256;
