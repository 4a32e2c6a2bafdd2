//! `StateStore` implemented outside the crate over an ordered byte-key map, the way the
//! node does it over rocksdb: the public re-exports suffice, everything round-trips through
//! the ledger codec, and results match `MemoryStore` exactly.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bastion_ledger::codec;
use bastion_ledger::store::{
    KeyHash, LeafNode, Node, NodeKey, OwnedValue, PruneStats, StateStore, TreeReader, TreeUpdateBatch,
    Version,
};
use bastion_ledger::{Executor, ExecutorConfig, StoreError};
use common::*;

/// Column prefixes of a byte-keyed, ordered store (like rocksdb column families).
const NODE: u8 = b'n';
const VALUE: u8 = b'v';
const STALE: u8 = b's';
const LATEST: &[u8] = b"latest";

#[derive(Default)]
struct EncodedStore {
    kv: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

fn node_column_key(key: &NodeKey) -> Vec<u8> {
    let mut k = vec![NODE];
    k.extend(codec::encode(key).expect("node keys encode"));
    k
}

/// `VALUE ‖ key_hash ‖ version (big-endian)`: one key's versions sort together, in order.
fn value_key(key_hash: &KeyHash, version: Version) -> Vec<u8> {
    let mut k = vec![VALUE];
    k.extend_from_slice(&key_hash.0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl TreeReader for EncodedStore {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let kv = self.kv.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        Ok(kv.get(&node_column_key(node_key)).map(|bytes| codec::decode(bytes)).transpose()?)
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let kv = self.kv.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let newest = kv.range(value_key(&key_hash, 0)..=value_key(&key_hash, max_version)).next_back();
        match newest {
            Some((_, bytes)) => Ok(codec::decode::<Option<Vec<u8>>>(bytes)?),
            None => Ok(None),
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        Ok(None)
    }
}

impl StateStore for EncodedStore {
    fn commit(&self, version: Version, update: &TreeUpdateBatch) -> Result<(), StoreError> {
        // Build the whole batch first, then apply it under one lock: atomic, like a WriteBatch.
        let mut batch = Vec::new();
        for (key, node) in update.node_batch.nodes() {
            batch.push((node_column_key(key), codec::encode(node).map_err(failed)?));
        }
        for ((v, key_hash), value) in update.node_batch.values() {
            batch.push((value_key(key_hash, *v), codec::encode(value).map_err(failed)?));
        }
        for stale in &update.stale_node_index_batch {
            let mut k = vec![STALE];
            k.extend_from_slice(&stale.stale_since_version.to_be_bytes());
            k.extend(codec::encode(&stale.node_key).map_err(failed)?);
            batch.push((k, vec![]));
        }
        batch.push((LATEST.to_vec(), version.to_le_bytes().to_vec()));
        self.kv.lock().map_err(failed)?.extend(batch);
        Ok(())
    }

    fn latest_version(&self) -> Result<Option<Version>, StoreError> {
        let kv = self.kv.lock().map_err(failed)?;
        kv.get(LATEST)
            .map(|bytes| bytes.as_slice().try_into().map(u64::from_le_bytes).map_err(failed))
            .transpose()
    }

    fn prune(&self, _min_retained: Version) -> Result<PruneStats, StoreError> {
        Ok(PruneStats::default())
    }
}

#[test]
fn an_external_store_gives_the_same_results_as_memory_store() {
    let (alice, bob) = (key(1), key(2));
    let genesis = genesis(&[(address(&alice), FUNDS)]);
    let mut external =
        Executor::genesis(Arc::new(EncodedStore::default()), &genesis, ExecutorConfig::default())
            .expect("genesis on the external store");
    let mut memory = Chain::new(&[(address(&alice), FUNDS)]);
    assert_eq!(external.state_root(), memory.exec.state_root());

    let b = builder(&alice, 1);
    let blocks = vec![
        vec![builder(&alice, 0).transfer(address(&bob), 9).unwrap()],
        vec![b.deploy(wasm(TOKEN_WAT), 500u64.to_le_bytes().to_vec()).unwrap()],
        vec![],
        vec![builder(&alice, 2)
            .call(b.contract_address(), "transfer", {
                let mut args = address(&bob).0.to_vec();
                args.extend_from_slice(&20u64.to_le_bytes());
                args
            })
            .unwrap()],
    ];
    for txs in blocks {
        let verified_txs: Vec<_> = txs.iter().cloned().map(verified).collect();
        let ours = external.apply_block(external.height() + 1, &verified_txs).unwrap();
        assert_eq!(ours, memory.block(txs));
    }

    let reopened = Executor::open(external.store().clone(), ExecutorConfig::default()).unwrap();
    assert_eq!(reopened.state_root(), memory.exec.state_root());
    let query = reopened.query();
    let height = reopened.height();
    let view = query.view(&b.contract_address(), "balance_of", &address(&bob).0, height).unwrap();
    assert_eq!(view.return_data, 20u64.to_le_bytes());
    let proof = query.account_proof(&address(&bob), height).unwrap();
    assert_eq!(proof.verify(reopened.state_root(), &address(&bob)).unwrap().map(|a| a.balance), Some(9));
}
