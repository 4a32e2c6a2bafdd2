//! Binary Merkle root over a list of digests.
//!
//! Leaves and inner nodes are hashed under different domain tags, so a leaf can never be
//! passed off as an inner node. An odd node at the end of a level is promoted unchanged.
//! The root of an empty list is the hash of the empty-tree tag.

use crate::{Digest, DigestBuilder};

pub fn merkle_root(leaves: &[Digest]) -> Digest {
    if leaves.is_empty() {
        return DigestBuilder::new("bastion/merkle/empty/v1").finish();
    }
    let mut level: Vec<Digest> = leaves
        .iter()
        .map(|leaf| DigestBuilder::new("bastion/merkle/leaf/v1").digest(leaf).finish())
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => {
                    DigestBuilder::new("bastion/merkle/node/v1").digest(left).digest(right).finish()
                }
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two items"),
            })
            .collect();
    }
    level[0]
}
