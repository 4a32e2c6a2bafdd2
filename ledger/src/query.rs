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
//!
//! [`StateQuery::view_with_witness`] also records every state key the view read (plus the
//! contract's account and code) and proves each one: a [`ViewWitness`]. Whoever trusts a
//! state root can then re-run the view over the witness alone with [`verify_view`] and get
//! the same answer, or an error if the witness is wrong or incomplete; views are
//! deterministic, so a matching answer is the answer the certified state gives.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use bastion_crypto::Digest;
use serde::{Deserialize, Serialize};

use crate::codec::{self, hex_bytes};
use crate::contract::host::Mode;
use crate::contract::runtime::{CallFailure, CallRequest, ContractRuntime};
use crate::error::{LedgerError, StoreError};
use crate::fuel::{CODE_LOAD_BYTE_FUEL, VIEW_FUEL_LIMIT};
use crate::overlay::{Overlay, Snapshot, ValueSource};
use crate::proof::{AccountProof, MerkleProof, StateProof, StorageProof};
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

/// Everything a view read, proven against the state root at `height`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewWitness {
    pub height: u64,
    /// One proof per key read, in key order.
    pub reads: Vec<StateProof>,
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
        let snapshot = Arc::new(Snapshot { store: self.store.clone(), version: height });
        run_view(&self.runtime, snapshot, ViewCall { contract, method, args, height })
    }

    /// [`StateQuery::view`], plus the proofs of everything it read (see the module docs).
    pub fn view_with_witness(
        &self,
        contract: &Address,
        method: &str,
        args: &[u8],
        height: u64,
    ) -> Result<(ViewOutcome, ViewWitness), LedgerError> {
        self.state_root(height)?;
        let snapshot = Arc::new(Snapshot { store: self.store.clone(), version: height });
        let recorder = Arc::new(Recorder { inner: snapshot, keys: Mutex::default() });
        let outcome = run_view(&self.runtime, recorder.clone(), ViewCall { contract, method, args, height })?;
        let mut keys = std::mem::take(&mut *recorder.keys.lock().unwrap_or_else(PoisonError::into_inner));
        // A cached module is not read from the store, but the verifier needs its code.
        keys.insert(StateKey::Account(*contract));
        keys.insert(StateKey::Code(*contract));
        let mut reads = Vec::with_capacity(keys.len());
        for key in keys {
            let (value, proof) = tree::prove(&*self.store, &key, height)?;
            reads.push(StateProof { key, value, proof: MerkleProof(proof) });
        }
        Ok((outcome, ViewWitness { height, reads }))
    }
}

/// Re-runs a view over `witness` alone, trusting nothing but `root` (the state root at
/// `witness.height`): every proof must hold under `root`, and the view may read only keys
/// the witness proves. Returns the view's outcome, to compare with a node's answer.
pub fn verify_view(
    root: Digest,
    witness: &ViewWitness,
    contract: &Address,
    method: &str,
    args: &[u8],
) -> Result<ViewOutcome, LedgerError> {
    let mut values = BTreeMap::new();
    for read in &witness.reads {
        read.verify(root).map_err(|e| LedgerError::Witness(format!("{:?}: {e}", read.key)))?;
        values.insert(read.key.clone(), read.value.clone());
    }
    let runtime = ContractRuntime::new()?;
    let call = ViewCall { contract, method, args, height: witness.height };
    run_view(&runtime, Arc::new(WitnessSource(values)), call).map_err(|e| match e {
        LedgerError::Store(StoreError::Backend(reason) | StoreError::Corrupt(reason)) => {
            LedgerError::Witness(reason)
        }
        other => other,
    })
}

struct ViewCall<'a> {
    contract: &'a Address,
    method: &'a str,
    args: &'a [u8],
    height: u64,
}

/// The one way a view runs, on a node's store or on a witness.
fn run_view(
    runtime: &ContractRuntime,
    source: Arc<dyn ValueSource>,
    call: ViewCall<'_>,
) -> Result<ViewOutcome, LedgerError> {
    if call.method == "init" {
        return Err(LedgerError::ViewFailed("init runs only at deploy".into()));
    }
    let overlay = Overlay::new(source);
    let loaded = match runtime.load(&overlay, call.contract) {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return Err(LedgerError::NoContract(call.contract.to_hex())),
        Err(failure) => return Err(view_failure(failure)),
    };
    let load_fuel = CODE_LOAD_BYTE_FUEL.saturating_mul(loaded.code_len as u64);
    let fuel = VIEW_FUEL_LIMIT.checked_sub(load_fuel).ok_or(view_failure(CallFailure::OutOfFuel))?;
    let request = CallRequest {
        contract: *call.contract,
        caller: Address::ZERO,
        method: call.method,
        input: call.args.to_vec(),
        height: call.height,
        mode: Mode::View,
        fuel,
    };
    let outcome = runtime.call(&loaded.module, overlay, request);
    let success = outcome.result.map_err(view_failure)?;
    Ok(ViewOutcome {
        height: call.height,
        return_data: success.return_data,
        events: success.events,
        fuel_used: load_fuel + (fuel - outcome.fuel_left.min(fuel)),
    })
}

/// Passes reads through and remembers which keys were read.
struct Recorder {
    inner: Arc<dyn ValueSource>,
    keys: Mutex<BTreeSet<StateKey>>,
}

impl ValueSource for Recorder {
    fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StoreError> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner).insert(key.clone());
        self.inner.get(key)
    }
}

/// The proven values of a witness; reading any other key is an error, not "empty".
struct WitnessSource(BTreeMap<StateKey, Option<Vec<u8>>>);

impl ValueSource for WitnessSource {
    fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StoreError> {
        self.0
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::Backend(format!("the witness does not cover {key:?}")))
    }
}

fn view_failure(failure: CallFailure) -> LedgerError {
    match failure {
        CallFailure::OutOfFuel => LedgerError::ViewFailed("out of fuel".into()),
        CallFailure::Reason(reason) => LedgerError::ViewFailed(reason),
        CallFailure::Fatal(e) => LedgerError::Store(e),
    }
}
