//! State shared by the validator's tasks: storage, mempool, transport, status, metrics.
//!
//! Each task owns its own loop (consensus driver, execution, batcher, inbound dispatch,
//! API); they meet here. Status numbers are atomics so the API reads them without locks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bastion_client::api::BlockResponse;
use bastion_client::certificate::StateCertificate;
use bastion_crypto::{Digest, KeyCache, KeyPair, PublicKey};
use bastion_ledger::{StateQuery, VerifiedTransaction};
use bastion_testnet::config::{GenesisFile, NodeConfig};
use tokio::sync::{broadcast, watch};

use crate::mempool::Mempool;
use crate::metrics::Metrics;
use crate::storage::{RocksStateStore, Storage, StorageError};
use crate::transport::TransportHandle;
use crate::wire::NetMessage;

/// The checked contents of a recently seen batch, kept until it executes so that each batch
/// is decoded, hashed and verified once per validator.
#[derive(Clone, Debug)]
pub enum CheckedBatch {
    /// Every transaction's signature verified.
    Verified(Arc<Vec<VerifiedTransaction>>),
    /// Consensus-only mode: the opaque transactions' hashes.
    Opaque(Arc<Vec<Digest>>),
}

const MAX_CACHED_BATCHES: usize = 4_096;
const MAX_CERTIFICATES: usize = 256;

pub struct NodeState {
    pub config: NodeConfig,
    pub genesis: GenesisFile,
    pub chain_id: String,
    pub me: u16,
    pub key: KeyPair,
    pub committee: Vec<PublicKey>,
    pub storage: Storage,
    pub mempool: Mempool,
    pub transport: TransportHandle<NetMessage>,
    pub metrics: Metrics,
    pub key_cache: KeyCache,
    /// Read access to executed state (absent in consensus-only mode).
    pub query: Option<StateQuery<RocksStateStore>>,
    pub round: AtomicU64,
    pub committed_height: AtomicU64,
    pub executed_height: watch::Sender<u64>,
    pub certified_height: AtomicU64,
    pub state_root: RwLock<Option<Digest>>,
    pub certificates: RwLock<BTreeMap<u64, StateCertificate>>,
    pub blocks: broadcast::Sender<BlockResponse>,
    checked_batches: Mutex<HashMap<Digest, CheckedBatch>>,
    /// Peers' batches stored (so votes may name them) but not yet through signature
    /// verification; execution waits for their verified form instead of verifying them twice.
    verifying: Mutex<HashSet<Digest>>,
    ready: AtomicBool,
    halted: RwLock<Option<String>>,
}

impl NodeState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: NodeConfig,
        genesis: GenesisFile,
        key: KeyPair,
        storage: Storage,
        transport: TransportHandle<NetMessage>,
        query: Option<StateQuery<RocksStateStore>>,
        executed_height: u64,
        state_root: Option<Digest>,
    ) -> Self {
        let mempool = Mempool::new(
            config.mempool.capacity,
            config.mempool.per_sender,
            Duration::from_millis(config.mempool.gap_wait_ms),
        );
        let (executed, _) = watch::channel(executed_height);
        let (blocks, _) = broadcast::channel(1_024);
        NodeState {
            chain_id: genesis.chain_id.clone(),
            me: config.index,
            committee: genesis.validators.iter().map(|v| v.public_key).collect(),
            config,
            genesis,
            key,
            storage,
            mempool,
            transport,
            metrics: Metrics::new(),
            key_cache: KeyCache::new(100_000),
            query,
            round: AtomicU64::new(0),
            committed_height: AtomicU64::new(0),
            executed_height: executed,
            certified_height: AtomicU64::new(0),
            state_root: RwLock::new(state_root),
            certificates: RwLock::new(BTreeMap::new()),
            blocks,
            checked_batches: Mutex::new(HashMap::new()),
            verifying: Mutex::new(HashSet::new()),
            ready: AtomicBool::new(false),
            halted: RwLock::new(None),
        }
    }

    pub fn consensus_only(&self) -> bool {
        self.config.consensus_only
    }

    pub fn executed(&self) -> u64 {
        *self.executed_height.borrow()
    }

    /// Validators this one currently has a QUIC connection to.
    pub fn connected_peers(&self) -> usize {
        self.transport.peers().filter(|p| self.transport.is_connected(*p)).count()
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Ready to serve: started, caught up enough to answer, not halted.
    pub fn readiness(&self) -> Result<(), String> {
        if let Some(reason) = self.halt_reason() {
            return Err(format!("halted: {reason}"));
        }
        if !self.ready.load(Ordering::SeqCst) {
            return Err("starting".into());
        }
        Ok(())
    }

    /// Stops this validator from taking part in consensus, for good, with a reason that
    /// `/health` reports. Used when continuing could violate safety (safety data cannot be
    /// persisted) or would build on a state the quorum disagrees with.
    pub fn halt(&self, reason: String) {
        tracing::error!(%reason, "validator halted: it no longer votes or proposes");
        if let Ok(mut halted) = self.halted.write() {
            halted.get_or_insert(reason);
        }
    }

    pub fn halt_reason(&self) -> Option<String> {
        self.halted.read().ok().and_then(|h| h.clone())
    }

    pub fn cache_batch(&self, digest: Digest, txs: CheckedBatch) {
        let mut cache = self.checked_batches.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED_BATCHES {
            cache.clear();
        }
        cache.insert(digest, txs);
    }

    /// Stores a checked batch's bytes, its checked form cached first: execution, waiting for
    /// a committed batch, polls the disk, and must find the checked copy rather than check
    /// the stored one again. A failed store takes it back out of the cache.
    pub fn store_checked_batch(
        &self,
        digest: Digest,
        bytes: &[u8],
        checked: CheckedBatch,
    ) -> Result<(), StorageError> {
        self.cache_batch(digest, checked);
        self.storage.put_batch(&digest, bytes).inspect_err(|_| {
            self.take_cached_batch(&digest);
        })
    }

    pub fn take_cached_batch(&self, digest: &Digest) -> Option<CheckedBatch> {
        self.checked_batches.lock().unwrap_or_else(|p| p.into_inner()).remove(digest)
    }

    fn verifying(&self) -> std::sync::MutexGuard<'_, HashSet<Digest>> {
        self.verifying.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a batch as queued for verification; call before storing it.
    pub fn begin_verification(&self, digest: Digest) {
        let mut verifying = self.verifying();
        verifying.insert(digest);
        self.metrics.batches_verifying.set(verifying.len() as i64);
    }

    /// The batch's checked form is cached (or it could not be checked): call after
    /// [`cache_batch`](Self::cache_batch), so a reader that saw it still verifying then
    /// finds the cached form.
    pub fn end_verification(&self, digest: &Digest) {
        let mut verifying = self.verifying();
        verifying.remove(digest);
        self.metrics.batches_verifying.set(verifying.len() as i64);
    }

    pub fn is_verifying(&self, digest: &Digest) -> bool {
        self.verifying().contains(digest)
    }

    pub fn add_certificate(&self, certificate: StateCertificate) {
        let height = certificate.height;
        if let Ok(mut certs) = self.certificates.write() {
            certs.insert(height, certificate);
            while certs.len() > MAX_CERTIFICATES {
                certs.pop_first();
            }
        }
        self.certified_height.fetch_max(height, Ordering::SeqCst);
        self.metrics.certified_height.set(self.certified_height.load(Ordering::SeqCst) as i64);
    }

    pub fn latest_certificate(&self) -> Option<StateCertificate> {
        self.certificates.read().ok().and_then(|c| c.values().next_back().cloned())
    }
}
