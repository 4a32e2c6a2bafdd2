//! [`Executor`]: applies committed blocks, in height order, to the authenticated state.
//!
//! Guarantees:
//! * **Determinism**: the outcome (state root, receipts) of a block depends only on the
//!   state at the previous height, the height, and the transactions in order. No clocks,
//!   randomness, floats or unordered iteration are involved.
//! * **Order**: block `h` executes on the state of `h − 1`, exactly once; heights are
//!   consecutive starting after genesis (version 0).
//! * **Atomicity**: a block's state is written with one `StateStore::commit`. If execution
//!   hits a storage error nothing is written and the error is returned: the block must be
//!   retried, never skipped.
//!
//! [`Executor::execute_block`] computes a block's outcome and tree update without writing
//! it; [`Executor::commit`] writes it. [`Executor::apply_block`] does both. The split lets
//! the node persist receipts and state in the same storage batch.

use std::sync::Arc;

use bastion_crypto::Digest;

use crate::apply::{apply_transaction, BlockContext};
use crate::contract::runtime::ContractRuntime;
use crate::error::LedgerError;
use crate::overlay::{Overlay, Snapshot};
use crate::receipt::{receipts_root, BlockOutcome};
use crate::store::{StateStore, TreeUpdateBatch};
use crate::{tree, Genesis, StateQuery, VerifiedTransaction};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecutorConfig {
    /// Keep the state of this many heights below the latest (`None`: keep all).
    pub retain_versions: Option<u64>,
    /// Prune every this many heights (pruning scans the stale-node index).
    pub prune_every: u64,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig { retain_versions: None, prune_every: 100 }
    }
}

/// A block executed but not yet written.
#[derive(Clone, Debug)]
pub struct ExecutedBlock {
    outcome: BlockOutcome,
    update: TreeUpdateBatch,
}

impl ExecutedBlock {
    pub fn outcome(&self) -> &BlockOutcome {
        &self.outcome
    }
}

pub struct Executor<S> {
    store: Arc<S>,
    runtime: Arc<ContractRuntime>,
    config: ExecutorConfig,
    height: u64,
    root: Digest,
}

impl<S: StateStore + 'static> Executor<S> {
    /// Writes `genesis` as version 0 of an empty store.
    pub fn genesis(store: Arc<S>, genesis: &Genesis, config: ExecutorConfig) -> Result<Self, LedgerError> {
        if store.latest_version()?.is_some() {
            return Err(LedgerError::AlreadyInitialized);
        }
        let (root, update) = tree::update(&*store, 0, genesis.write_set()?)?;
        store.commit(0, &update)?;
        Ok(Executor { store, runtime: Arc::new(ContractRuntime::new()?), config, height: 0, root })
    }

    /// Resumes from the latest version in `store`.
    pub fn open(store: Arc<S>, config: ExecutorConfig) -> Result<Self, LedgerError> {
        let height = store.latest_version()?.ok_or(LedgerError::NotInitialized)?;
        let root = tree::root(&*store, height)?.ok_or(LedgerError::UnknownHeight(height))?;
        Ok(Executor { store, runtime: Arc::new(ContractRuntime::new()?), config, height, root })
    }

    /// The last executed height (0 right after genesis).
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The state root after [`Executor::height`].
    pub fn state_root(&self) -> Digest {
        self.root
    }

    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// A read-only handle for queries, proofs and views; cheap to clone and share.
    pub fn query(&self) -> StateQuery<S> {
        StateQuery::new(self.store.clone(), self.runtime.clone())
    }

    /// Executes block `height` (which must be `self.height() + 1`) without writing it.
    pub fn execute_block(
        &self,
        height: u64,
        txs: &[VerifiedTransaction],
    ) -> Result<ExecutedBlock, LedgerError> {
        let expected = self.height + 1;
        if height != expected {
            return Err(LedgerError::HeightMismatch { expected, actual: height });
        }
        let ctx = BlockContext { height, runtime: &self.runtime };
        let mut overlay =
            Overlay::new(Arc::new(Snapshot { store: self.store.clone(), version: self.height }));
        let mut receipts = Vec::with_capacity(txs.len());
        for (index, tx) in txs.iter().enumerate() {
            let index = u32::try_from(index).map_err(|_| LedgerError::Runtime("block too large".into()))?;
            let (next, receipt) = apply_transaction(&ctx, overlay, tx, index)?;
            overlay = next;
            receipts.push(receipt);
        }
        let (state_root, update) = tree::update(&*self.store, height, overlay.into_writes())?;
        let receipts_root = receipts_root(&receipts)?;
        Ok(ExecutedBlock { outcome: BlockOutcome { height, state_root, receipts_root, receipts }, update })
    }

    /// Writes an executed block; it must be the next height.
    pub fn commit(&mut self, block: ExecutedBlock) -> Result<BlockOutcome, LedgerError> {
        let height = block.outcome.height;
        let expected = self.height + 1;
        if height != expected {
            return Err(LedgerError::HeightMismatch { expected, actual: height });
        }
        self.store.commit(height, &block.update)?;
        self.height = height;
        self.root = block.outcome.state_root;
        self.prune()?;
        Ok(block.outcome)
    }

    /// Executes and writes block `height`.
    pub fn apply_block(
        &mut self,
        height: u64,
        txs: &[VerifiedTransaction],
    ) -> Result<BlockOutcome, LedgerError> {
        let block = self.execute_block(height, txs)?;
        self.commit(block)
    }

    fn prune(&self) -> Result<(), LedgerError> {
        let Some(retain) = self.config.retain_versions else { return Ok(()) };
        if !self.height.is_multiple_of(self.config.prune_every.max(1)) {
            return Ok(());
        }
        if let Some(min_retained) = self.height.checked_sub(retain) {
            self.store.prune(min_retained)?;
        }
        Ok(())
    }
}
