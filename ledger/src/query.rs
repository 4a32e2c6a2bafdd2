//! [`StateQuery`]: read-only access to executed heights: accounts, contract storage and
//! code, Merkle proofs, and read-only contract views.
//!
//! Every read names a height and sees exactly the state after that block, whatever the
//! executor does meanwhile (versions are immutable once written). A height that has not
//! been executed, or was pruned, is [`LedgerError::UnknownHeight`].
//!
//! A view runs a contract method like a call but with no transaction: caller is the zero
//! address, fuel is capped at `VIEW_FUEL_LIMIT`, and the state-changing host functions
//! trap. Nothing it does is kept.

use std::sync::Arc;

use bastion_crypto::Digest;
use serde::{Deserialize, Serialize};

use crate::codec::{self, hex_bytes};
use crate::contract::host::Mode;
use crate::contract::runtime::{CallFailure, CallRequest, ContractRuntime};
use crate::error::LedgerError;
use crate::fuel::{CODE_LOAD_BYTE_FUEL, VIEW_FUEL_LIMIT};
use crate::overlay::{Overlay, Snapshot};
use crate::proof::{AccountProof, MerkleProof, StorageProof};
use crate::store::{read_value, StateStore};
use crate::{tree, Account, Address, Event, StateKey};

/// The answer of a read-only view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewOutcome {
    pub height: u64,
    #[serde(with = "hex_bytes")]
    pub return_data: Vec<u8>,
    /// Events the method emitted (not recorded anywhere).
    pub events: Vec<Event>,
    pub fuel_used: u64,
}

pub struct StateQuery<S> {
    store: Arc<S>,
    runtime: Arc<ContractRuntime>,
}

impl<S> Clone for StateQuery<S> {
    fn clone(&self) -> Self {
        StateQuery { store: self.store.clone(), runtime: self.runtime.clone() }
    }
}

impl<S: StateStore + 'static> StateQuery<S> {
    pub(crate) fn new(store: Arc<S>, runtime: Arc<ContractRuntime>) -> Self {
        StateQuery { store, runtime }
    }

    /// The latest executed height, if any.
    pub fn latest_height(&self) -> Result<Option<u64>, LedgerError> {
        Ok(self.store.latest_version()?)
    }

    /// The state root after block `height`.
    pub fn state_root(&self, height: u64) -> Result<Digest, LedgerError> {
        let latest = self.store.latest_version()?;
        if latest.is_none_or(|latest| height > latest) {
            return Err(LedgerError::UnknownHeight(height));
        }
        tree::root(&*self.store, height)?.ok_or(LedgerError::UnknownHeight(height))
    }

    fn read(&self, key: &StateKey, height: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        self.state_root(height)?;
        Ok(read_value(&*self.store, height, key.key_hash())?)
    }

    /// The account at `address` (the empty account if it has none).
    pub fn account(&self, address: &Address, height: u64) -> Result<Account, LedgerError> {
        match self.read(&StateKey::Account(*address), height)? {
            Some(bytes) => Ok(codec::decode(&bytes)?),
            None => Ok(Account::default()),
        }
    }

    pub fn storage(
        &self,
        contract: &Address,
        key: &[u8],
        height: u64,
    ) -> Result<Option<Vec<u8>>, LedgerError> {
        self.read(&StateKey::Storage(*contract, key.to_vec()), height)
    }

    /// The binary module of the contract at `contract`.
    pub fn code(&self, contract: &Address, height: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        self.read(&StateKey::Code(*contract), height)
    }

    pub fn account_proof(&self, address: &Address, height: u64) -> Result<AccountProof, LedgerError> {
        self.state_root(height)?;
        let (value, proof) = tree::prove(&*self.store, &StateKey::Account(*address), height)?;
        let account = value.map(|bytes| codec::decode(&bytes)).transpose()?;
        Ok(AccountProof { address: *address, height, account, proof: MerkleProof(proof) })
    }

    pub fn storage_proof(
        &self,
        contract: &Address,
        key: &[u8],
        height: u64,
    ) -> Result<StorageProof, LedgerError> {
        self.state_root(height)?;
        let state_key = StateKey::Storage(*contract, key.to_vec());
        let (value, proof) = tree::prove(&*self.store, &state_key, height)?;
        Ok(StorageProof { contract: *contract, key: key.to_vec(), height, value, proof: MerkleProof(proof) })
    }

    /// Runs `method` of `contract` read-only on the state after `height`.
    pub fn view(
        &self,
        contract: &Address,
        method: &str,
        args: &[u8],
        height: u64,
    ) -> Result<ViewOutcome, LedgerError> {
        self.state_root(height)?;
        if method == "init" {
            return Err(LedgerError::ViewFailed("init runs only at deploy".into()));
        }
        let overlay = Overlay::new(Arc::new(Snapshot { store: self.store.clone(), version: height }));
        let loaded = match self.runtime.load(&overlay, contract) {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return Err(LedgerError::NoContract(contract.to_hex())),
            Err(failure) => return Err(view_failure(failure)),
        };
        let load_fuel = CODE_LOAD_BYTE_FUEL.saturating_mul(loaded.code_len as u64);
        let fuel = VIEW_FUEL_LIMIT.checked_sub(load_fuel).ok_or(view_failure(CallFailure::OutOfFuel))?;
        let request = CallRequest {
            contract: *contract,
            caller: Address::ZERO,
            method,
            input: args.to_vec(),
            height,
            mode: Mode::View,
            fuel,
        };
        let outcome = self.runtime.call(&loaded.module, overlay, request);
        let success = outcome.result.map_err(view_failure)?;
        Ok(ViewOutcome {
            height,
            return_data: success.return_data,
            events: success.events,
            fuel_used: load_fuel + (fuel - outcome.fuel_left.min(fuel)),
        })
    }
}

fn view_failure(failure: CallFailure) -> LedgerError {
    match failure {
        CallFailure::OutOfFuel => LedgerError::ViewFailed("out of fuel".into()),
        CallFailure::Reason(reason) => LedgerError::ViewFailed(reason),
        CallFailure::Fatal(e) => LedgerError::Store(e),
    }
}
