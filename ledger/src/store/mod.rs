//! Where the state tree lives: the [`StateStore`] trait and an in-memory implementation.
//!
//! The tree is a Jellyfish Merkle tree (`jmt` 0.12). A store holds three things, all keyed
//! by version (= block height; genesis is version 0):
//! * tree nodes (`NodeKey → Node`), read through jmt's [`TreeReader`];
//! * leaf values (`(Version, KeyHash) → Option<value>`; `None` marks a deletion), read with
//!   [`TreeReader::get_value_option`], which returns the newest entry at or below a version;
//! * the stale-node index: which nodes stop being reachable from which version on.
//!
//! The node implements [`StateStore`] over rocksdb; [`MemoryStore`] is the reference
//! implementation used by tests and benchmarks. The executor writes one version at a time
//! through [`StateStore::commit`], which must be atomic: after a crash a version is either
//! entirely present (and [`StateStore::latest_version`] says so) or absent.

mod memory;

pub use jmt::storage::{
    LeafNode, Node, NodeBatch, NodeKey, StaleNodeIndex, StaleNodeIndexBatch, TreeReader, TreeUpdateBatch,
    TreeWriter,
};
pub use jmt::{KeyHash, OwnedValue, Version};
pub use memory::MemoryStore;

use crate::error::StoreError;

/// What a pruning pass removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneStats {
    pub nodes: usize,
    pub values: usize,
}

/// Persistent, versioned storage of the state tree.
pub trait StateStore: TreeReader + Send + Sync {
    /// Atomically writes `update` (nodes, values, stale-node index) produced for `version`
    /// and records `version` as the latest. Versions are committed in order, without gaps.
    fn commit(&self, version: Version, update: &TreeUpdateBatch) -> Result<(), StoreError>;

    /// The newest committed version, or `None` for an empty store.
    fn latest_version(&self) -> Result<Option<Version>, StoreError>;

    /// Deletes what no version `>= min_retained` needs: nodes whose stale-since version is
    /// `<= min_retained`, root nodes of versions `< min_retained`, and value entries
    /// shadowed by a newer entry at or below `min_retained`. Reads and proofs at every
    /// version `>= min_retained` are unaffected; older versions become unavailable.
    fn prune(&self, min_retained: Version) -> Result<PruneStats, StoreError>;
}

/// Reads the value of `key_hash` at `version` from any store.
pub(crate) fn read_value<S: StateStore + ?Sized>(
    store: &S,
    version: Version,
    key_hash: KeyHash,
) -> Result<Option<OwnedValue>, StoreError> {
    store.get_value_option(version, key_hash).map_err(|e| StoreError::Backend(format!("{e:#}")))
}
