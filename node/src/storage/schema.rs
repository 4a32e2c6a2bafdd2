//! The on-disk layout: the schema version and the column families, with what each maps.
//!
//! Keys that hold integers use big-endian so that RocksDB's byte order is numeric order;
//! values are encoded with the ledger's canonical codec unless noted. Changing any of this
//! requires a new [`SCHEMA_VERSION`], which older databases are then refused under.

/// Version of the on-disk layout; bumped whenever a key or value format changes.
/// Version 4: `tx_index` may lag the execution records (marker `indexed_height` in `meta`).
pub const SCHEMA_VERSION: u32 = 4;
/// The one older version opened (and upgraded in place): identical but for the marker.
pub(super) const INDEXED_EVERYTHING_SCHEMA: u32 = 3;

/// Column family names.
pub(super) mod cf {
    /// Schema version, genesis hash and the single-key markers (tips, latest versions).
    pub const META: &str = "meta";
    pub const SAFETY: &str = "safety";
    /// Block digest → block.
    pub const BLOCKS: &str = "blocks";
    /// Height ‖ digest → (): every stored block by height, committed or not.
    pub const BLOCK_HEIGHTS: &str = "block_heights";
    /// Committed height → block digest.
    pub const COMMITTED: &str = "committed";
    /// Batch digest → the batch's bytes.
    pub const BATCHES: &str = "batches";
    /// Batch digest → arrival sequence number, for batches stored but not committed.
    pub const PENDING_BATCHES: &str = "pending_batches";
    /// Batch digest → height of the committed block that ordered it.
    pub const BATCH_COMMITS: &str = "batch_commits";
    /// Tree node key → node.
    pub const STATE_NODES: &str = "state_nodes";
    /// Key hash ‖ version → value (`None`: deleted).
    pub const STATE_VALUES: &str = "state_values";
    /// Stale-since version ‖ node key → (): jmt's stale-node index.
    pub const STATE_STALE_NODES: &str = "state_stale_nodes";
    /// Stale-since version ‖ key hash ‖ version → (): value entries that pruning may drop.
    pub const STATE_STALE_VALUES: &str = "state_stale_values";
    /// Version → root node key.
    pub const STATE_ROOTS: &str = "state_roots";
    /// Height ‖ index (u64 ‖ u32) → receipt. Keyed by position, not by hash: a block's
    /// receipts are appended in key order, which RocksDB inserts and compacts cheaply
    /// (version 1 keyed them by hash, a random key per transaction).
    pub const RECEIPTS: &str = "receipts";
    /// Transaction hash → (height, index), for every height up to `indexed_height` in
    /// `meta`; the entries of later heights are in memory, rebuilt at open from `heights`.
    pub const TX_INDEX: &str = "tx_index";
    /// Transaction hash → (): the indexed transactions whose receipt is `rejected` (version
    /// 3). A transaction at or above its sender's next nonce never executed, so whether it
    /// has a receipt is answered here, in a column family as small as the rejections,
    /// instead of in the hash-keyed index, which grows with every transaction.
    pub const REJECTED_TXS: &str = "rejected_txs";
    /// Executed height → execution record. Neither these nor the receipts are ever pruned:
    /// the index entries above `indexed_height` are rebuilt from them at open.
    pub const HEIGHTS: &str = "heights";
}

/// Every column family of this version, in creation order.
pub const COLUMN_FAMILIES: &[&str] = &[
    cf::META,
    cf::SAFETY,
    cf::BLOCKS,
    cf::BLOCK_HEIGHTS,
    cf::COMMITTED,
    cf::BATCHES,
    cf::PENDING_BATCHES,
    cf::BATCH_COMMITS,
    cf::STATE_NODES,
    cf::STATE_VALUES,
    cf::STATE_STALE_NODES,
    cf::STATE_STALE_VALUES,
    cf::STATE_ROOTS,
    cf::RECEIPTS,
    cf::TX_INDEX,
    cf::REJECTED_TXS,
    cf::HEIGHTS,
];

/// Keys of `meta` that identify the database.
pub(super) const SCHEMA_KEY: &[u8] = b"schema_version";
pub(super) const GENESIS_KEY: &[u8] = b"genesis_hash";
