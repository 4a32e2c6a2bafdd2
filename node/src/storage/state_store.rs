//! [`RocksStateStore`]: the ledger's [`StateStore`] (the Jellyfish Merkle tree's storage)
//! over the validator's RocksDB, behaving exactly like the reference [`MemoryStore`]: same
//! roots, proofs, reads at every retained version, and pruning statistics.
//!
//! Layout (integers big-endian):
//! * `state_nodes`: encoded node key → node;
//! * `state_values`: key hash ‖ version → `Option<value>`; the newest entry at or below a
//!   version is one `seek_for_prev` away;
//! * `state_stale_nodes`: stale-since ‖ node key — jmt's stale-node index;
//! * `state_stale_values`: stale-since ‖ key hash ‖ version — the value entries pruning may
//!   drop, recorded at commit time (an entry is shadowed from its successor's version on;
//!   a deletion marker from its own), so pruning never scans the whole state;
//! * `state_roots`: version → root node key, so old roots are found without a scan;
//! * `meta/state_latest`: the latest committed version.
//!
//! [`StateStore::commit`] is one synced write holding the nodes, values, both stale
//! indexes, the root and the latest version — plus the execution record staged with
//! [`Storage::stage_execution`], if any. Every key written for version `v` is derived from
//! `v` and the tree's content, so committing the same version with the same content again
//! (after the repair that [`Storage::open`] makes when the tree is ahead of the recorded
//! executed height) rewrites identical entries.
//!
//! [`MemoryStore`]: bastion_ledger::MemoryStore

use std::collections::BTreeSet;

use bastion_ledger::store::{
    KeyHash, LeafNode, Node, NodeKey, OwnedValue, PruneStats, StateStore, TreeReader, TreeUpdateBatch,
    Version,
};
use bastion_ledger::StoreError;
use rocksdb::WriteBatch;

use super::{cf, decode, encode, lock, u64_from, Storage, StorageError};

const STATE_LATEST_KEY: &[u8] = b"state_latest";
/// Index entries handled per write while pruning, to bound memory.
const PRUNE_CHUNK: usize = 4096;

/// The state tree's storage in the validator's database. Cheap to clone.
#[derive(Clone)]
pub struct RocksStateStore {
    storage: Storage,
}

impl Storage {
    /// The ledger's view of this database.
    pub fn state_store(&self) -> RocksStateStore {
        RocksStateStore { storage: self.clone() }
    }

    /// Repairs a crash between `Executor::apply_block` and [`Storage::record_execution`]
    /// (run by [`Storage::open`]): if the tree is ahead of a recorded executed height, its
    /// latest version is set back to that height (durably), so `Executor::open` resumes
    /// there and executes the unrecorded heights again. Returns the version rewound to.
    pub(super) fn rewind_state_to_executed(&self) -> Result<Option<Version>, StorageError> {
        let _guard = lock(&self.inner.execution_lock);
        let (Some(executed), Some(latest)) = (self.executed_height()?, self.state_latest()?) else {
            return Ok(None);
        };
        if latest <= executed {
            return Ok(None);
        }
        let root = self.get(cf::STATE_ROOTS, &executed.to_be_bytes())?;
        let root_stored = match root {
            Some(key) => self.contains(cf::STATE_NODES, &key)?,
            None => false,
        };
        if !root_stored {
            return Err(StorageError::Refused {
                what: "state rewind",
                detail: format!("the state of executed height {executed} is pruned"),
            });
        }
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(cf::META)?, STATE_LATEST_KEY, executed.to_be_bytes());
        self.write(batch, true, "state rewind")?;
        Ok(Some(executed))
    }

    fn state_latest(&self) -> Result<Option<Version>, StorageError> {
        self.get_u64(cf::META, STATE_LATEST_KEY, "latest state version")
    }

    /// Deletes, in chunks, the index entries of `index_cf` whose leading version is
    /// `<= bound` and the `data_cf` entries they name; returns how many data entries existed.
    fn drain_index(
        &self,
        index_cf: &'static str,
        data_cf: &'static str,
        bound: Version,
        data_key: impl Fn(&[u8], &[u8]) -> Result<Vec<u8>, StorageError>,
    ) -> Result<usize, StorageError> {
        let mut removed = 0;
        loop {
            let mut index_keys = Vec::new();
            let mut data_keys = BTreeSet::new();
            self.scan(index_cf, &[], |key, value| {
                let since = key.get(..8).ok_or_else(|| StorageError::Corrupt {
                    what: "state index",
                    detail: format!("key of {} bytes", key.len()),
                })?;
                if u64_from("state index", since)? > bound || index_keys.len() == PRUNE_CHUNK {
                    return Ok(false);
                }
                data_keys.insert(data_key(key, value)?);
                index_keys.push(key.to_vec());
                Ok(true)
            })?;
            if index_keys.is_empty() {
                return Ok(removed);
            }
            let mut batch = WriteBatch::default();
            for key in &index_keys {
                batch.delete_cf(self.cf(index_cf)?, key);
            }
            for key in &data_keys {
                if self.contains(data_cf, key)? {
                    batch.delete_cf(self.cf(data_cf)?, key);
                    removed += 1;
                }
            }
            self.write(batch, false, "state pruning")?;
        }
    }
}

fn value_key(key_hash: &KeyHash, version: Version) -> [u8; 40] {
    let mut key = [0; 40];
    key[..32].copy_from_slice(&key_hash.0);
    key[32..].copy_from_slice(&version.to_be_bytes());
    key
}

impl TreeReader for RocksStateStore {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let key = encode("state node key", node_key)?;
        Ok(self.storage.get_decoded(cf::STATE_NODES, &key, "state node")?)
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let found = self.storage.last_at_or_before(cf::STATE_VALUES, &value_key(&key_hash, max_version))?;
        match found {
            Some((key, value)) if key.starts_with(&key_hash.0) => {
                Ok(decode::<Option<OwnedValue>>("state value", &value)?)
            }
            _ => Ok(None),
        }
    }

    /// Scans every node: only jmt's state-restore uses it.
    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        let mut rightmost: Option<(NodeKey, LeafNode)> = None;
        self.storage.scan(cf::STATE_NODES, &[], |key, value| {
            if let Node::Leaf(leaf) = decode::<Node>("state node", value)? {
                if rightmost.as_ref().is_none_or(|(_, best)| leaf.key_hash() > best.key_hash()) {
                    rightmost = Some((decode("state node key", key)?, leaf));
                }
            }
            Ok(true)
        })?;
        Ok(rightmost)
    }
}

impl StateStore for RocksStateStore {
    fn commit(&self, version: Version, update: &TreeUpdateBatch) -> Result<(), StoreError> {
        let storage = &self.storage;
        let _guard = lock(&storage.inner.execution_lock);
        if let Some(latest) = storage.state_latest()? {
            if Some(version) != latest.checked_add(1) {
                return Err(StoreError::Backend(format!("commit of version {version} after {latest}")));
            }
        }
        let mut batch = WriteBatch::default();
        for (node_key, node) in update.node_batch.nodes() {
            let key = encode("state node key", node_key)?;
            if node_key.nibble_path().is_empty() {
                batch.put_cf(storage.cf(cf::STATE_ROOTS)?, node_key.version().to_be_bytes(), &key);
            }
            batch.put_cf(storage.cf(cf::STATE_NODES)?, key, encode("state node", node)?);
        }
        for ((value_version, key_hash), value) in update.node_batch.values() {
            let key = value_key(key_hash, *value_version);
            batch.put_cf(storage.cf(cf::STATE_VALUES)?, key, encode("state value", value)?);
            let since = value_version.to_be_bytes();
            if value.is_none() {
                batch.put_cf(storage.cf(cf::STATE_STALE_VALUES)?, [&since[..], &key[..]].concat(), b"");
            }
            if let Some(before) = value_version.checked_sub(1) {
                let previous = storage.last_at_or_before(cf::STATE_VALUES, &value_key(key_hash, before))?;
                if let Some((previous, _)) = previous.filter(|(k, _)| k.starts_with(&key_hash.0)) {
                    batch.put_cf(
                        storage.cf(cf::STATE_STALE_VALUES)?,
                        [&since[..], &previous[..]].concat(),
                        b"",
                    );
                }
            }
        }
        for stale in &update.stale_node_index_batch {
            let key = [
                &stale.stale_since_version.to_be_bytes()[..],
                &encode("state node key", &stale.node_key)?[..],
            ]
            .concat();
            batch.put_cf(storage.cf(cf::STATE_STALE_NODES)?, key, b"");
        }
        batch.put_cf(storage.cf(cf::META)?, STATE_LATEST_KEY, version.to_be_bytes());
        let index_entries = storage.add_staged_execution(&mut batch, version)?;
        storage.write(batch, true, "state commit")?;
        if let Some(entries) = index_entries {
            storage.index_recorded(entries)?;
        }
        Ok(())
    }

    fn latest_version(&self) -> Result<Option<Version>, StoreError> {
        Ok(self.storage.state_latest()?)
    }

    fn prune(&self, min_retained: Version) -> Result<PruneStats, StoreError> {
        let storage = &self.storage;
        let _guard = lock(&storage.inner.execution_lock);
        let after_version = |key: &[u8], _: &[u8]| -> Result<Vec<u8>, StorageError> {
            Ok(key.get(8..).unwrap_or_default().to_vec())
        };
        let mut nodes =
            storage.drain_index(cf::STATE_STALE_NODES, cf::STATE_NODES, min_retained, after_version)?;
        // A root copied forward unchanged (a version without writes) is never marked stale.
        if let Some(below) = min_retained.checked_sub(1) {
            nodes +=
                storage.drain_index(cf::STATE_ROOTS, cf::STATE_NODES, below, |_, root| Ok(root.to_vec()))?;
        }
        let values =
            storage.drain_index(cf::STATE_STALE_VALUES, cf::STATE_VALUES, min_retained, after_version)?;
        Ok(PruneStats { nodes, values })
    }
}
