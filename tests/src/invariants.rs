//! The invariant checker run over every simulation.
//!
//! Safety: no two different blocks are committed at one height by honest validators; every
//! honest validator's commits extend its previous ones (so the honest chains are prefixes of
//! each other); no honest validator signs two different votes for one round. Liveness: after
//! GST, commits resume within a bounded number of rounds and every honest validator that is
//! up at the end has committed past the GST height.

use std::collections::BTreeMap;

use bastion_consensus::{Block, BlockInfo, Height, Round, ValidatorIndex, Vote};
use bastion_crypto::Digest;

use crate::network::NodeId;

#[derive(Debug, Default)]
pub struct InvariantChecker {
    /// Height → digest committed there by any honest node.
    committed: BTreeMap<Height, Digest>,
    /// Each honest node's last committed block.
    tips: BTreeMap<NodeId, BlockInfo>,
    /// (validator, round) → the vote data digest an honest validator signed.
    votes: BTreeMap<(ValidatorIndex, Round), Digest>,
    pub violations: Vec<String>,
}

impl InvariantChecker {
    pub fn record_commit(&mut self, node: NodeId, genesis: BlockInfo, blocks: &[Block]) {
        for block in blocks {
            let tip = *self.tips.get(&node).unwrap_or(&genesis);
            if block.height != tip.height + 1 || block.parent().digest != tip.digest {
                self.violations.push(format!(
                    "node {node} committed block {:?} at height {} that does not extend its tip {:?} at height {}",
                    block.digest, block.height, tip.digest, tip.height
                ));
            }
            match self.committed.get(&block.height) {
                Some(existing) if *existing != block.digest => self.violations.push(format!(
                    "conflicting commits at height {}: {:?} and {:?} (node {node})",
                    block.height, existing, block.digest
                )),
                Some(_) => {}
                None => {
                    self.committed.insert(block.height, block.digest);
                }
            }
            self.tips.insert(node, block.info());
        }
    }

    pub fn record_vote(&mut self, vote: &Vote, chain_id: &str) {
        let digest = vote.data.signing_digest(chain_id);
        match self.votes.get(&(vote.author, vote.round())) {
            Some(existing) if *existing != digest => self.violations.push(format!(
                "honest validator {} signed two different votes in round {}",
                vote.author,
                vote.round()
            )),
            Some(_) => {}
            None => {
                self.votes.insert((vote.author, vote.round()), digest);
            }
        }
    }

    pub fn highest_committed(&self) -> Height {
        self.committed.keys().next_back().copied().unwrap_or(0)
    }

    pub fn tip(&self, node: NodeId) -> Height {
        self.tips.get(&node).map_or(0, |t| t.height)
    }
}
