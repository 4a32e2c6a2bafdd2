//! The genesis document: chain id, initial balances, validator committee.
//!
//! Genesis is state version 0. Its state holds one `Account` (balance, nonce 0, no code)
//! per listed account and nothing else, so its root ([`Genesis::state_root`]) depends only
//! on the set of `(address, balance)` pairs, not on their order. [`Genesis::hash`] commits
//! to the whole document (including validators and the order of lists) and identifies the
//! chain configuration; validators must agree on it before talking.
//!
//! Validity: a chain id of 1..=`MAX_CHAIN_ID_BYTES` bytes, no account or validator listed
//! twice, at least one validator, and a total supply that fits in a `u64` (so no balance
//! can ever overflow: fees are burned, never minted).

use std::collections::BTreeSet;

use bastion_crypto::{sha256, Digest, PublicKey};
use serde::{Deserialize, Serialize};

use crate::codec::{self, MAX_CHAIN_ID_BYTES};
use crate::error::{CodecError, GenesisError, LedgerError};
use crate::overlay::WriteSet;
use crate::store::MemoryStore;
use crate::{tree, Account, Address, StateKey};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub chain_id: String,
    /// Initial balances.
    pub accounts: Vec<(Address, u64)>,
    /// The committee, each with voting power 1.
    pub validators: Vec<PublicKey>,
}

impl Genesis {
    pub fn validate(&self) -> Result<(), GenesisError> {
        if self.chain_id.is_empty() || self.chain_id.len() > MAX_CHAIN_ID_BYTES {
            return Err(GenesisError::BadChainId);
        }
        let mut seen = BTreeSet::new();
        for (address, _) in &self.accounts {
            if !seen.insert(*address) {
                return Err(GenesisError::DuplicateAccount(address.to_hex()));
            }
        }
        if self.validators.is_empty() {
            return Err(GenesisError::NoValidators);
        }
        let mut seen = BTreeSet::new();
        for key in &self.validators {
            if !seen.insert(*key) {
                return Err(GenesisError::DuplicateValidator(key.to_hex()));
            }
        }
        self.total_supply().map(|_| ())
    }

    /// Sum of the initial balances.
    pub fn total_supply(&self) -> Result<u64, GenesisError> {
        self.accounts
            .iter()
            .try_fold(0u64, |sum, (_, balance)| sum.checked_add(*balance))
            .ok_or(GenesisError::SupplyOverflow)
    }

    /// SHA-256 of the canonical encoding of the whole document.
    pub fn hash(&self) -> Result<Digest, CodecError> {
        Ok(sha256(&codec::encode(self)?))
    }

    /// The state written at version 0.
    pub(crate) fn write_set(&self) -> Result<WriteSet, LedgerError> {
        self.validate()?;
        let mut writes = WriteSet::new();
        for (address, balance) in &self.accounts {
            let account = Account { balance: *balance, nonce: 0, code_hash: None };
            writes.insert(StateKey::Account(*address), Some(codec::encode(&account)?));
        }
        Ok(writes)
    }

    /// The state root of version 0, computed without a persistent store.
    pub fn state_root(&self) -> Result<Digest, LedgerError> {
        let (root, _) = tree::update(&MemoryStore::new(), 0, self.write_set()?)?;
        Ok(root)
    }
}
