//! [`Overlay`]: the state a block sees while it executes, with all-or-nothing transaction
//! effects.
//!
//! Reads fall through three layers: the current transaction's *pending* writes, the block's
//! *committed* writes, and the store at the block's base version. Writes go to the pending
//! layer; [`Overlay::commit_pending`] keeps them, [`Overlay::discard_pending`] forgets
//! them. This is how a failed contract call reverts every change it made while its fee and
//! nonce advance stick. Both layers are `BTreeMap`s, so the block's final write set comes
//! out in key order on every validator.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::codec;
use crate::error::StoreError;
use crate::store::{read_value, StateStore, Version};
use crate::{Account, Address, StateKey};

/// Read access to a store at a version; object-safe so the contract host needs no generics.
pub(crate) trait ValueSource: Send + Sync {
    fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StoreError>;
}

/// A store pinned at one version.
pub(crate) struct Snapshot<S> {
    pub store: Arc<S>,
    pub version: Version,
}

impl<S: StateStore> ValueSource for Snapshot<S> {
    fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StoreError> {
        read_value(&*self.store, self.version, key.key_hash())
    }
}

pub(crate) type WriteSet = BTreeMap<StateKey, Option<Vec<u8>>>;

pub(crate) struct Overlay {
    base: Arc<dyn ValueSource>,
    committed: WriteSet,
    pending: WriteSet,
}

impl Overlay {
    pub fn new(base: Arc<dyn ValueSource>) -> Self {
        Overlay { base, committed: WriteSet::new(), pending: WriteSet::new() }
    }

    pub fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(value) = self.pending.get(key).or_else(|| self.committed.get(key)) {
            return Ok(value.clone());
        }
        self.base.get(key)
    }

    pub fn set(&mut self, key: StateKey, value: Vec<u8>) {
        self.pending.insert(key, Some(value));
    }

    pub fn remove(&mut self, key: StateKey) {
        self.pending.insert(key, None);
    }

    pub fn commit_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        self.committed.extend(pending);
    }

    pub fn discard_pending(&mut self) {
        self.pending.clear();
    }

    /// The block's write set; pending writes must have been committed or discarded.
    pub fn into_writes(self) -> WriteSet {
        self.committed
    }

    /// The account at `address`, or the empty account if none is stored.
    pub fn account(&self, address: &Address) -> Result<Account, StoreError> {
        match self.get(&StateKey::Account(*address))? {
            Some(bytes) => Ok(codec::decode(&bytes)?),
            None => Ok(Account::default()),
        }
    }

    pub fn set_account(&mut self, address: &Address, account: &Account) -> Result<(), StoreError> {
        // An Account always encodes; failure here would be a codec bug, reported as corruption.
        let bytes = codec::encode(account)?;
        self.set(StateKey::Account(*address), bytes);
        Ok(())
    }
}
