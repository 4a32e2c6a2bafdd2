//! The validator's durable storage: one RocksDB database per validator.
//!
//! [`Storage`] owns the database and its column families; the other modules of this
//! directory add typed operations on it:
//! * `consensus_store`: safety data, blocks, the committed chain, [`Recovery`];
//! * `batch_store`: payload batches and which of them are not committed yet;
//! * `state_store`: [`RocksStateStore`], the ledger's [`StateStore`] over RocksDB;
//! * `receipt_store`: receipts, the transaction index and per-height execution records.
//!
//! Guarantees of [`Storage::open`]:
//! * a missing or empty directory becomes a new database that records the schema version
//!   and the genesis hash; a later open with another genesis fails with
//!   [`StorageError::GenesisMismatch`], an unknown schema with
//!   [`StorageError::UnsupportedSchema`];
//! * a directory that holds anything else (files but no RocksDB `CURRENT`, a RocksDB
//!   database without Bastion's column families) is refused, never overwritten;
//! * a state tree left ahead of the recorded executed height by a crash between the two
//!   writes is moved back to that height, so the unrecorded blocks are executed again;
//! * damaged files (`CURRENT`, `MANIFEST`, tables, a WAL corrupted before its tail) are
//!   reported as typed errors, never as a panic and never by silently dropping records that
//!   were synced: the write-ahead log is replayed with RocksDB's
//!   `TolerateCorruptedTailRecords` mode, which only forgives a torn last record.
//!
//! Everything is encoded with the ledger's one canonical bincode configuration
//! ([`bastion_ledger::codec`]: fixed-width little-endian integers, no trailing bytes, a size
//! limit; for consensus types these are exactly the bytes `bincode::serialize` produces).
//! Integers inside keys are big-endian so that RocksDB's byte order is numeric order.
//!
//! [`Recovery`]: bastion_consensus::Recovery
//! [`StateStore`]: bastion_ledger::StateStore

mod batch_store;
mod consensus_store;
mod error;
mod receipt_store;
mod schema;
mod state_store;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use bastion_crypto::Digest;
use bastion_ledger::{codec, BlockOutcome};
use bastion_testnet::config::StorageSettings;
use rocksdb::{
    BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, DBCompactionStyle, DBCompressionType,
    DBRecoveryMode, Options, WriteBatch, WriteOptions, DB,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use error::StorageError;
pub use receipt_store::{ExecutionRecord, TxLocation, INDEX_FLUSH_ENTRIES, INDEX_FLUSH_HEIGHTS};
pub use schema::{COLUMN_FAMILIES, SCHEMA_VERSION};
pub use state_store::RocksStateStore;

use schema::{cf, GENESIS_KEY, INDEXED_EVERYTHING_SCHEMA, SCHEMA_KEY};

/// Memtable size of each column family.
const WRITE_BUFFER_BYTES: usize = 16 << 20;
/// All memtables together: RocksDB flushes the largest when they reach this, so a
/// validator's memory stays bounded however many column families fill up.
const TOTAL_WRITE_BUFFER_BYTES: usize = 128 << 20;
/// Batch values at least this large live in blob files.
const BLOB_MIN_BYTES: u64 = 4096;
/// Write-ahead logs beyond this force the column families still holding them to flush, so
/// a restart never replays more than this.
const MAX_TOTAL_WAL_BYTES: u64 = 256 << 20;

/// Options of every column family. Point reads (is this transaction already executed? this
/// tree node? this batch?) searching large memtables were the largest single cost in the
/// profile at load: memtables are kept small, and Bloom filters, in the memtable and in
/// every table file, answer reads of absent keys without searching.
///
/// Batches (the transactions themselves, most of the bytes written) go to blob files: written
/// once, uncompressed (signatures and keys do not compress), and never rewritten by
/// compaction, which at 30k opaque transactions/s was most of the machine's time.
fn cf_options(name: &str) -> Options {
    let mut options = Options::default();
    if name == cf::BATCHES {
        options.set_enable_blob_files(true);
        options.set_min_blob_size(BLOB_MIN_BYTES);
        options.set_blob_compression_type(DBCompressionType::None);
        // No blob garbage collection: it rewrites live batches to reclaim deleted ones, and
        // batches are deleted (pruned) oldest first, so whole blob files expire instead.
        options.set_enable_blob_gc(false);
    }
    if name == cf::TX_INDEX {
        // Keys are random hashes, so with leveled compaction every merge of new files into
        // the one level holding the index rewrote all of it: work that grew with the chain,
        // done by all validators at once. Universal compaction merges sorted runs of similar
        // size instead (about half the bytes written). Its cost, more runs for a read to
        // probe, is paid only off the hot path: admission and execution answer "has a
        // receipt?" from nonces and the rejections (see `Storage::recorded_among`).
        options.set_compaction_style(DBCompactionStyle::Universal);
    }
    // Hashes do not compress.
    let compression = if name == cf::TX_INDEX { DBCompressionType::None } else { DBCompressionType::Lz4 };
    options.set_compression_type(compression);
    options.set_write_buffer_size(WRITE_BUFFER_BYTES);
    options.set_memtable_prefix_bloom_ratio(0.1);
    options.set_memtable_whole_key_filtering(true);
    let mut table = BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    table.set_whole_key_filtering(true);
    options.set_block_based_table_factory(&table);
    options
}

/// A key and its value, as read from a column family.
type Entry = (Vec<u8>, Vec<u8>);

/// The validator's database. Cheap to clone (all clones share one RocksDB handle);
/// `Send + Sync`, so every task of the node can hold one.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    db: DB,
    path: PathBuf,
    settings: StorageSettings,
    /// Serialises the read-check-write sequences on the consensus chain (commit, prune).
    chain_lock: Mutex<()>,
    /// Serialises state-tree commits, state pruning and execution records.
    execution_lock: Mutex<()>,
    /// An execution outcome waiting to be written with its state version.
    staged: Mutex<Option<BlockOutcome>>,
    /// Next arrival number of a pending batch.
    batch_seq: AtomicU64,
    /// Transaction index entries recorded but not yet in `tx_index` (see `receipt_store`).
    unindexed: Mutex<receipt_store::Unindexed>,
}

impl Storage {
    /// Opens (or creates) the database in `path` for the chain whose genesis hashes to
    /// `genesis_hash`. See the module documentation for what is refused and why.
    pub fn open(
        path: impl AsRef<Path>,
        genesis_hash: Digest,
        settings: &StorageSettings,
    ) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        check_data_dir(&path)?;
        refuse_old_layout_untouched(&path)?;
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_paranoid_checks(true);
        options.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
        options.set_compression_type(DBCompressionType::Lz4);
        options.set_keep_log_file_num(8);
        options.set_db_write_buffer_size(TOTAL_WRITE_BUFFER_BYTES);
        options.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
        let descriptors =
            COLUMN_FAMILIES.iter().map(|name| ColumnFamilyDescriptor::new(*name, cf_options(name)));
        let db = DB::open_cf_descriptors(&options, &path, descriptors)
            .map_err(|e| StorageError::opening(path.clone(), e))?;
        let storage = Storage {
            inner: Arc::new(Inner {
                db,
                path,
                settings: settings.clone(),
                chain_lock: Mutex::new(()),
                execution_lock: Mutex::new(()),
                staged: Mutex::new(None),
                batch_seq: AtomicU64::new(0),
                unindexed: Mutex::default(),
            }),
        };
        storage.check_identity(genesis_hash)?;
        storage.init_batch_seq()?;
        if let Some(version) = storage.rewind_state_to_executed()? {
            tracing::warn!(
                version,
                "state tree was ahead of the recorded executed height; rewound to re-execute"
            );
        }
        storage.load_unindexed()?;
        Ok(storage)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn settings(&self) -> &StorageSettings {
        &self.inner.settings
    }

    /// The genesis hash this database was created for.
    pub fn genesis_hash(&self) -> Result<Digest, StorageError> {
        let bytes = self.get(cf::META, GENESIS_KEY)?.ok_or_else(|| StorageError::Corrupt {
            what: "database metadata",
            detail: "the genesis hash is missing".into(),
        })?;
        digest_from("genesis hash", &bytes)
    }

    /// Writes the transaction index entries held in memory and every memtable to table
    /// files (and syncs them). Not needed for durability, which the write-ahead log and the
    /// execution records provide; useful before copying the directory.
    pub fn flush(&self) -> Result<(), StorageError> {
        {
            let _guard = lock(&self.inner.execution_lock);
            self.flush_index()?;
        }
        for name in COLUMN_FAMILIES {
            let cf = self.cf(name)?;
            self.inner.db.flush_cf(cf).map_err(|e| StorageError::rocksdb("flush", e))?;
        }
        Ok(())
    }

    /// Records schema and genesis in a new database, or checks them in an existing one.
    fn check_identity(&self, genesis_hash: Digest) -> Result<(), StorageError> {
        let Some(schema) = self.get(cf::META, SCHEMA_KEY)? else {
            if !self.is_empty(cf::META)? {
                return Err(StorageError::Corrupt {
                    what: "database metadata",
                    detail: "the schema version is missing".into(),
                });
            }
            let mut batch = WriteBatch::default();
            batch.put_cf(self.cf(cf::META)?, SCHEMA_KEY, SCHEMA_VERSION.to_be_bytes());
            batch.put_cf(self.cf(cf::META)?, GENESIS_KEY, genesis_hash.as_bytes());
            return self.write(batch, true, "initialise");
        };
        let found = schema_from(&schema)?;
        check_supported(found)?;
        let stored = self.genesis_hash()?;
        if stored != genesis_hash {
            return Err(StorageError::GenesisMismatch { stored, expected: genesis_hash });
        }
        if found == INDEXED_EVERYTHING_SCHEMA {
            // Version 3 indexed every transaction as it recorded its height: all of them are
            // in `tx_index`, which is what the marker says.
            let mut batch = WriteBatch::default();
            batch.put_cf(self.cf(cf::META)?, SCHEMA_KEY, SCHEMA_VERSION.to_be_bytes());
            if let Some(executed) = self.executed_height()? {
                batch.put_cf(self.cf(cf::META)?, receipt_store::INDEXED_KEY, executed.to_be_bytes());
            }
            self.write(batch, true, "schema upgrade")?;
            tracing::info!(from = found, to = SCHEMA_VERSION, "upgraded the database schema");
        }
        Ok(())
    }

    // ---- Low-level helpers shared by the typed stores. ----

    fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StorageError> {
        self.inner.db.cf_handle(name).ok_or_else(|| StorageError::Corrupt {
            what: "database layout",
            detail: format!("column family `{name}` is missing"),
        })
    }

    fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.db.get_cf(self.cf(cf)?, key).map_err(|e| StorageError::rocksdb("read", e))
    }

    fn contains(&self, cf: &'static str, key: &[u8]) -> Result<bool, StorageError> {
        let found =
            self.inner.db.get_pinned_cf(self.cf(cf)?, key).map_err(|e| StorageError::rocksdb("read", e))?;
        Ok(found.is_some())
    }

    /// Which of `keys` are present, in input order, looked up in one sorted MultiGet (much
    /// cheaper than a `get` each when there are thousands).
    fn contains_many(&self, cf: &'static str, keys: &[&[u8]]) -> Result<Vec<bool>, StorageError> {
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_unstable_by_key(|&i| keys[i]);
        let sorted: Vec<&[u8]> = order.iter().map(|&i| keys[i]).collect();
        let found = self.inner.db.batched_multi_get_cf(self.cf(cf)?, sorted.iter().copied(), true);
        let mut present = vec![false; keys.len()];
        for (&i, result) in order.iter().zip(found) {
            present[i] = result.map_err(|e| StorageError::rocksdb("read", e))?.is_some();
        }
        Ok(present)
    }

    fn get_decoded<T: DeserializeOwned>(
        &self,
        cf: &'static str,
        key: &[u8],
        what: &'static str,
    ) -> Result<Option<T>, StorageError> {
        let found =
            self.inner.db.get_pinned_cf(self.cf(cf)?, key).map_err(|e| StorageError::rocksdb("read", e))?;
        found.map(|bytes| decode(what, &bytes)).transpose()
    }

    /// Writes `batch` atomically; with `sync` the write-ahead log is fsync'd before returning.
    fn write(&self, batch: WriteBatch, sync: bool, op: &'static str) -> Result<(), StorageError> {
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.inner.db.write_opt(batch, &options).map_err(|e| StorageError::rocksdb(op, e))
    }

    /// Calls `visit(key, value)` for the entries of `cf` from `start` on, in key order,
    /// until it returns `false`.
    fn scan(
        &self,
        cf: &'static str,
        start: &[u8],
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        let mut iter = self.inner.db.raw_iterator_cf(self.cf(cf)?);
        iter.seek(start);
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            if !visit(key, value)? {
                break;
            }
            iter.next();
        }
        iter.status().map_err(|e| StorageError::rocksdb("scan", e))
    }

    /// The last entry of `cf` whose key is `<= key`.
    fn last_at_or_before(&self, cf: &'static str, key: &[u8]) -> Result<Option<Entry>, StorageError> {
        let mut iter = self.inner.db.raw_iterator_cf(self.cf(cf)?);
        iter.seek_for_prev(key);
        let found = match (iter.key(), iter.value()) {
            (Some(key), Some(value)) => Some((key.to_vec(), value.to_vec())),
            _ => None,
        };
        iter.status().map_err(|e| StorageError::rocksdb("read", e))?;
        Ok(found)
    }

    fn is_empty(&self, cf: &'static str) -> Result<bool, StorageError> {
        let mut empty = true;
        self.scan(cf, &[], |_, _| {
            empty = false;
            Ok(false)
        })?;
        Ok(empty)
    }

    fn get_u64(&self, cf: &'static str, key: &[u8], what: &'static str) -> Result<Option<u64>, StorageError> {
        self.get(cf, key)?.map(|bytes| u64_from(what, &bytes)).transpose()
    }
}

/// Refuses directories that hold something other than a Bastion database.
fn check_data_dir(path: &Path) -> Result<(), StorageError> {
    let refuse = |detail: String| StorageError::NotADatabase { path: path.to_path_buf(), detail };
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StorageError::Open { path: path.to_path_buf(), detail: e.to_string() }),
    };
    if !metadata.is_dir() {
        return Err(refuse("it is not a directory".into()));
    }
    if !path.join("CURRENT").exists() {
        let mut entries = std::fs::read_dir(path)
            .map_err(|e| StorageError::Open { path: path.to_path_buf(), detail: e.to_string() })?;
        return match entries.next() {
            None => Ok(()),
            Some(_) => Err(refuse(
                "the directory is not empty but holds no RocksDB database (no CURRENT file); \
                 point the node at an empty or Bastion data directory"
                    .into(),
            )),
        };
    }
    let families =
        DB::list_cf(&Options::default(), path).map_err(|e| StorageError::opening(path.to_path_buf(), e))?;
    if !families.iter().any(|name| name == cf::META) {
        // `list_cf` reads little of the MANIFEST (a garbled one can still list `default`):
        // open the database read-only, which changes nothing, to tell damage from a stranger.
        let mut options = Options::default();
        options.set_paranoid_checks(true);
        DB::open_cf_for_read_only(&options, path, &families, false)
            .map_err(|e| StorageError::opening(path.to_path_buf(), e))?;
        return Err(refuse(format!(
            "a RocksDB database without Bastion's column families (it has: {})",
            families.join(", ")
        )));
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Guarded values are `()` or replaced whole: a panic elsewhere cannot leave them half-written.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn schema_from(bytes: &[u8]) -> Result<u32, StorageError> {
    <[u8; 4]>::try_from(bytes).map(u32::from_be_bytes).map_err(|_| StorageError::Corrupt {
        what: "schema version",
        detail: format!("{} bytes instead of 4", bytes.len()),
    })
}

fn check_supported(found: u32) -> Result<(), StorageError> {
    if found != SCHEMA_VERSION && found != INDEXED_EVERYTHING_SCHEMA {
        return Err(StorageError::UnsupportedSchema { found, supported: SCHEMA_VERSION });
    }
    Ok(())
}

/// Refuses a database of an unsupported layout *before* opening it for writing: opening
/// creates the column families this version adds, and a refused database must stay exactly
/// as it was, so that the build that wrote it still opens it. Only a database that lacks
/// some of our column families is checked here (read-only); every other case is left to
/// `check_identity`.
fn refuse_old_layout_untouched(path: &Path) -> Result<(), StorageError> {
    // No database there yet (or none RocksDB can read; opening reports why).
    let Ok(existing) = DB::list_cf(&Options::default(), path) else { return Ok(()) };
    if COLUMN_FAMILIES.iter().all(|name| existing.iter().any(|have| have == name)) {
        return Ok(());
    }
    let db = DB::open_cf_for_read_only(&Options::default(), path, &existing, false)
        .map_err(|e| StorageError::opening(path.to_path_buf(), e))?;
    let Some(meta) = db.cf_handle(cf::META) else { return Ok(()) };
    let schema = db.get_cf(meta, SCHEMA_KEY).map_err(|e| StorageError::rocksdb("read", e))?;
    match schema {
        Some(bytes) => check_supported(schema_from(&bytes)?),
        None => Ok(()),
    }
}

fn encode<T: Serialize + ?Sized>(what: &'static str, value: &T) -> Result<Vec<u8>, StorageError> {
    codec::encode(value).map_err(|e| StorageError::Encode { what, detail: e.to_string() })
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StorageError> {
    codec::decode(bytes).map_err(|e| StorageError::Corrupt { what, detail: e.to_string() })
}

fn u64_from(what: &'static str, bytes: &[u8]) -> Result<u64, StorageError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| StorageError::Corrupt { what, detail: format!("{} bytes instead of 8", bytes.len()) })
}

fn digest_from(what: &'static str, bytes: &[u8]) -> Result<Digest, StorageError> {
    <[u8; 32]>::try_from(bytes)
        .map(Digest)
        .map_err(|_| StorageError::Corrupt { what, detail: format!("{} bytes instead of 32", bytes.len()) })
}
