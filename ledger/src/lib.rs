//! Bastion's ledger: transactions, the deterministic state machine, WebAssembly contracts
//! and authenticated state. Pure: no networking, no async, no disk (the node supplies a
//! [`StateStore`]).
//!
//! * Encoding: [`codec`] is the one canonical bincode configuration, with the size limits.
//! * Transactions: [`Transaction`], [`Payload`], [`SignedTransaction`] (signed under
//!   `"bastion/tx/v1"`), [`TransactionBuilder`]; admission checks in [`admission`] turn
//!   bytes into a [`VerifiedTransaction`], the only form the executor accepts.
//! * Execution: [`Executor::apply_block`] applies a block of verified transactions at the
//!   next height and returns a [`BlockOutcome`] (state root and one [`Receipt`] per
//!   transaction). Rules are in `apply`; fuel and fees in [`fuel`]; contracts and their ABI
//!   in [`contract`].
//! * State: typed [`StateKey`]s in a Jellyfish Merkle tree, one version per height,
//!   stored in a [`StateStore`] ([`MemoryStore`] in memory). [`StateQuery`] reads any
//!   retained height and produces [`AccountProof`]s and [`StorageProof`]s that verify
//!   against a root alone.

mod account;
mod address;
pub mod admission;
mod apply;
mod builder;
pub mod codec;
pub mod contract;
mod error;
mod executor;
pub mod fuel;
mod genesis;
mod overlay;
mod proof;
mod query;
mod receipt;
mod state_key;
pub mod store;
mod transaction;
mod tree;

pub use account::Account;
pub use address::Address;
pub use admission::{admit, admit_batch, admit_batch_hashed, admit_signed, check_stateful, check_stateless};
pub use builder::TransactionBuilder;
pub use contract::compile_wat;
pub use error::{
    AdmissionError, CodecError, ContractError, GenesisError, LedgerError, ProofError, StoreError,
};
pub use executor::{ExecutedBlock, Executor, ExecutorConfig};
pub use genesis::Genesis;
pub use proof::{AccountProof, MerkleProof, StateProof, StorageProof};
pub use query::{verify_view, StateQuery, ViewOutcome, ViewWitness};
pub use receipt::{receipts_root, BlockOutcome, Event, Receipt, ReceiptStatus};
pub use state_key::{StateKey, MAX_STORAGE_KEY_BYTES, MAX_STORAGE_VALUE_BYTES};
pub use store::{MemoryStore, StateStore};
pub use transaction::{Payload, SignedTransaction, Transaction, VerifiedTransaction, TX_DOMAIN};
