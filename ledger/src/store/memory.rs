//! [`MemoryStore`]: the state tree in memory, for tests, benchmarks and genesis roots.
//!
//! Same contract as a persistent store: atomic per-version commits, reads at any retained
//! version, pruning by the stale-node index. Nothing survives the process.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{
    KeyHash, LeafNode, Node, NodeKey, OwnedValue, PruneStats, StaleNodeIndex, StateStore, TreeReader,
};
use super::{TreeUpdateBatch, Version};
use crate::error::StoreError;

#[derive(Default)]
struct Inner {
    nodes: BTreeMap<NodeKey, Node>,
    /// Keyed by key hash first so one key's history is a contiguous range.
    values: BTreeMap<(KeyHash, Version), Option<OwnedValue>>,
    stale: BTreeSet<StaleNodeIndex>,
    latest: Option<Version>,
}

#[derive(Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of tree nodes held (all versions); shows what pruning reclaims.
    pub fn node_count(&self) -> usize {
        self.read().map(|inner| inner.nodes.len()).unwrap_or(0)
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, Inner>, StoreError> {
        self.inner.read().map_err(|_| StoreError::Backend("memory store lock poisoned".into()))
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, Inner>, StoreError> {
        self.inner.write().map_err(|_| StoreError::Backend("memory store lock poisoned".into()))
    }
}

impl TreeReader for MemoryStore {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.read()?.nodes.get(node_key).cloned())
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let inner = self.read()?;
        let newest = inner.values.range((key_hash, 0)..=(key_hash, max_version)).next_back();
        Ok(newest.and_then(|(_, value)| value.clone()))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        let inner = self.read()?;
        let mut rightmost: Option<(NodeKey, LeafNode)> = None;
        for (key, node) in &inner.nodes {
            if let Node::Leaf(leaf) = node {
                if rightmost.as_ref().is_none_or(|(_, best)| leaf.key_hash() > best.key_hash()) {
                    rightmost = Some((key.clone(), leaf.clone()));
                }
            }
        }
        Ok(rightmost)
    }
}

impl StateStore for MemoryStore {
    fn commit(&self, version: Version, update: &TreeUpdateBatch) -> Result<(), StoreError> {
        let mut inner = self.write()?;
        if let Some(latest) = inner.latest {
            if version != latest + 1 {
                return Err(StoreError::Backend(format!("commit of version {version} after {latest}")));
            }
        }
        let batch = &update.node_batch;
        inner.nodes.extend(batch.nodes().iter().map(|(k, n)| (k.clone(), n.clone())));
        inner.values.extend(batch.values().iter().map(|((v, k), value)| ((*k, *v), value.clone())));
        inner.stale.extend(update.stale_node_index_batch.iter().cloned());
        inner.latest = Some(version);
        Ok(())
    }

    fn latest_version(&self) -> Result<Option<Version>, StoreError> {
        Ok(self.read()?.latest)
    }

    fn prune(&self, min_retained: Version) -> Result<PruneStats, StoreError> {
        let mut inner = self.write()?;
        let inner = &mut *inner;
        let mut stats = PruneStats::default();

        let expired: Vec<StaleNodeIndex> =
            inner.stale.iter().take_while(|s| s.stale_since_version <= min_retained).cloned().collect();
        for index in expired {
            inner.stale.remove(&index);
            if inner.nodes.remove(&index.node_key).is_some() {
                stats.nodes += 1;
            }
        }

        // A root copied forward unchanged (a version without writes) is never marked stale.
        let old_roots: Vec<NodeKey> = inner
            .nodes
            .keys()
            .filter(|k| k.nibble_path().is_empty() && k.version() < min_retained)
            .cloned()
            .collect();
        for key in old_roots {
            inner.nodes.remove(&key);
            stats.nodes += 1;
        }

        stats.values = prune_values(&mut inner.values, min_retained);
        Ok(stats)
    }
}

/// Keeps, per key, every entry above `min_retained` and the newest one at or below it
/// (dropped too when it is a deletion marker: absence reads the same without it).
fn prune_values(
    values: &mut BTreeMap<(KeyHash, Version), Option<OwnedValue>>,
    min_retained: Version,
) -> usize {
    let mut doomed = Vec::new();
    let mut previous: Option<(KeyHash, Version)> = None;
    for (&(key, version), value) in values.iter() {
        if version > min_retained {
            continue;
        }
        if let Some(older) = previous.filter(|(k, _)| *k == key) {
            doomed.push(older);
        }
        previous = Some((key, version));
        if value.is_none() {
            doomed.push((key, version));
            previous = None;
        }
    }
    for key in &doomed {
        values.remove(key);
    }
    doomed.len()
}
