//! The authenticated state: a Jellyfish Merkle tree (`jmt`, SHA-256) over a [`StateStore`].
//!
//! One tree version per height; the root of version `h` commits to every key's value after
//! block `h`. Leaves are `(key_hash, SHA-256(value))` with `key_hash = StateKey::digest`.
//! This module is the only place that talks to jmt's tree API.

use bastion_crypto::Digest;
use jmt::proof::SparseMerkleProof;
use jmt::JellyfishMerkleTree;
use sha2::Sha256;

use crate::error::StoreError;
use crate::overlay::WriteSet;
use crate::store::{StateStore, TreeUpdateBatch, Version};
use crate::StateKey;

pub(crate) type Proof = SparseMerkleProof<Sha256>;

fn backend(e: anyhow::Error) -> StoreError {
    StoreError::Backend(format!("{e:#}"))
}

/// Computes the tree of `version` from the tree of `version - 1` plus `writes`, without
/// storing it; commit the returned batch with [`StateStore::commit`].
pub(crate) fn update<S: StateStore>(
    store: &S,
    version: Version,
    writes: WriteSet,
) -> Result<(Digest, TreeUpdateBatch), StoreError> {
    let tree = JellyfishMerkleTree::<S, Sha256>::new(store);
    let values = writes.into_iter().map(|(key, value)| (key.key_hash(), value));
    let (root, batch) = tree.put_value_set(values, version).map_err(backend)?;
    Ok((Digest(root.0), batch))
}

/// The root of `version`, if that version is stored (not pruned, already committed).
pub(crate) fn root<S: StateStore>(store: &S, version: Version) -> Result<Option<Digest>, StoreError> {
    let tree = JellyfishMerkleTree::<S, Sha256>::new(store);
    Ok(tree.get_root_hash_option(version).map_err(backend)?.map(|root| Digest(root.0)))
}

/// The value of `key` at `version` and a proof of it (inclusion) or of its absence.
pub(crate) fn prove<S: StateStore>(
    store: &S,
    key: &StateKey,
    version: Version,
) -> Result<(Option<Vec<u8>>, Proof), StoreError> {
    let tree = JellyfishMerkleTree::<S, Sha256>::new(store);
    tree.get_with_proof(key.key_hash(), version).map_err(backend)
}
