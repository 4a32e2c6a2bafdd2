//! The validator's RocksDB storage: durability across reopen and crash, atomic commits,
//! recovery for consensus, refusal of foreign or damaged data directories, batches,
//! equivalence of the state store with the ledger's `MemoryStore`, and execution records.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bastion_consensus::{Block, Committee, QuorumCert, SafetyData, Vote, VoteData};
use bastion_crypto::{sha256, Digest, KeyPair};
use bastion_ledger::store::StateStore;
use bastion_ledger::{
    admit_signed, compile_wat, Address, BlockOutcome, Executor, ExecutorConfig, Genesis, MemoryStore,
    Receipt, ReceiptStatus, SignedTransaction, TransactionBuilder, VerifiedTransaction,
};
use bastion_node::storage::{
    ExecutionRecord, RocksStateStore, Storage, StorageError, TxLocation, INDEX_FLUSH_ENTRIES,
    INDEX_FLUSH_HEIGHTS, SCHEMA_VERSION,
};
use bastion_testnet::config::StorageSettings;
use tempfile::TempDir;

const CHAIN: &str = "bastion-storage-test";
const TOKEN_WAT: &str = include_str!("../../examples/contracts/token.wat");
const CRASH_DIR_ENV: &str = "BASTION_STORAGE_CRASH_DIR";

fn genesis_hash() -> Digest {
    sha256(b"storage test genesis")
}

fn open(dir: &Path) -> Storage {
    Storage::open(dir, genesis_hash(), &StorageSettings::default()).expect("the database opens")
}

fn try_open(dir: &Path) -> Result<Storage, StorageError> {
    Storage::open(dir, genesis_hash(), &StorageSettings::default())
}

fn db_dir(temp: &TempDir) -> PathBuf {
    temp.path().join("db")
}

// ---- Consensus fixtures ----

fn validator() -> (Committee, KeyPair) {
    let key = KeyPair::from_seed([7; 32]);
    let committee = Committee::new(CHAIN, &[key.public()]).expect("committee");
    (committee, key)
}

/// A block of `round` extending `parent` (genesis when `None`).
fn block_on(parent: Option<&Block>, round: u64, payload: Vec<Digest>) -> Block {
    let (committee, key) = validator();
    let mut qc = QuorumCert::genesis(&committee);
    if let Some(parent) = parent {
        qc.data.block = parent.info();
        qc.data.parent = *parent.parent();
    }
    Block::new(&committee, &key, 0, round, qc, None, payload)
}

/// Blocks at heights 1..=n, rounds equal to heights.
fn chain(n: u64) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    for round in 1..=n {
        let block = block_on(blocks.last(), round, vec![sha256(&round.to_le_bytes())]);
        blocks.push(block);
    }
    blocks
}

fn safety_after_voting_for(block: &Block) -> SafetyData {
    let (_, key) = validator();
    let vote = Vote::new(VoteData { block: block.info(), parent: *block.parent() }, 0, &key, CHAIN);
    SafetyData {
        last_voted_round: block.round,
        one_chain_round: block.parent_qc.round(),
        highest_timeout_round: 0,
        last_vote: Some(vote),
        last_timeout: None,
    }
}

fn digests(blocks: &[Block]) -> BTreeSet<Digest> {
    blocks.iter().map(|b| b.digest).collect()
}

// ---- Ledger fixtures ----

fn key(seed: u8) -> KeyPair {
    KeyPair::from_seed([seed; 32])
}

fn address(key: &KeyPair) -> Address {
    Address::from_public_key(&key.public())
}

fn builder(key: &KeyPair, nonce: u64) -> TransactionBuilder {
    TransactionBuilder::new(CHAIN, key.clone()).nonce(nonce)
}

fn verified(txs: &[SignedTransaction]) -> Vec<VerifiedTransaction> {
    txs.iter().cloned().map(|tx| admit_signed(tx, CHAIN).expect("well-formed transaction")).collect()
}

fn ledger_genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        accounts: vec![(address(&key(1)), 1_000_000_000_000), (address(&key(2)), 5_000_000_000)],
        validators: vec![key(200).public()],
    }
}

/// Blocks that touch accounts, deploy and call a contract, and include an empty block.
fn ledger_blocks() -> Vec<Vec<SignedTransaction>> {
    let (alice, bob) = (key(1), key(2));
    let deployer = builder(&alice, 1);
    let token = deployer.contract_address();
    let transfer_args = |to: &KeyPair, amount: u64| {
        let mut args = address(to).0.to_vec();
        args.extend_from_slice(&amount.to_le_bytes());
        args
    };
    vec![
        vec![builder(&alice, 0).transfer(address(&bob), 9).unwrap()],
        vec![deployer.deploy(compile_wat(TOKEN_WAT).unwrap(), 500u64.to_le_bytes().to_vec()).unwrap()],
        vec![],
        vec![
            builder(&alice, 2).call(token, "transfer", transfer_args(&bob, 20)).unwrap(),
            builder(&bob, 0).transfer(address(&key(3)), 2_000_000_000).unwrap(),
        ],
        vec![builder(&alice, 3).call(token, "transfer", transfer_args(&key(3), 7)).unwrap()],
        vec![builder(&key(3), 0).transfer(address(&alice), 1).unwrap()],
    ]
}

fn token_address() -> Address {
    builder(&key(1), 1).contract_address()
}

/// Checks that both executors answer every query and proof identically at `height`.
fn assert_same_state<A: StateStore + 'static, B: StateStore + 'static>(
    a: &Executor<A>,
    b: &Executor<B>,
    height: u64,
) {
    let (qa, qb) = (a.query(), b.query());
    assert_eq!(qa.state_root(height).unwrap(), qb.state_root(height).unwrap(), "root at {height}");
    let root = qa.state_root(height).unwrap();
    for who in [address(&key(1)), address(&key(2)), address(&key(3)), address(&key(99)), token_address()] {
        let (pa, pb) = (qa.account_proof(&who, height).unwrap(), qb.account_proof(&who, height).unwrap());
        assert_eq!(pa, pb, "account proof of {who:?} at {height}");
        pa.verify(root, &who).expect("the proof verifies against the root");
    }
    for holder in [address(&key(1)), address(&key(2)), address(&key(3))] {
        let (pa, pb) = (
            qa.storage_proof(&token_address(), &holder.0, height).unwrap(),
            qb.storage_proof(&token_address(), &holder.0, height).unwrap(),
        );
        assert_eq!(pa, pb, "storage proof at {height}");
    }
}

// ---- Safety data ----

#[test]
fn safety_data_survives_a_reopen() {
    let temp = TempDir::new().unwrap();
    let blocks = chain(3);
    {
        let storage = open(&db_dir(&temp));
        assert_eq!(storage.safety().unwrap(), None, "a new validator has no safety data");
        storage.put_safety(&safety_after_voting_for(&blocks[1])).unwrap();
        storage.put_safety(&safety_after_voting_for(&blocks[2])).unwrap();
    }
    let storage = open(&db_dir(&temp));
    assert_eq!(storage.safety().unwrap(), Some(safety_after_voting_for(&blocks[2])));
}

/// Run only as a child of `a_crash_right_after_put_safety_keeps_it`: writes safety data,
/// then dies without running any destructor (no close, no flush).
#[test]
#[ignore = "helper process for a_crash_right_after_put_safety_keeps_it"]
fn crash_child_puts_safety_then_aborts() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else { return };
    let storage = open(Path::new(&dir));
    storage.put_safety(&safety_after_voting_for(&chain(4)[3])).unwrap();
    println!("safety data persisted");
    std::process::abort();
}

#[test]
fn a_crash_right_after_put_safety_keeps_it() {
    let temp = TempDir::new().unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_child_puts_safety_then_aborts",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, db_dir(&temp))
        .output()
        .expect("the child test process runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("safety data persisted"), "child did not write: {stdout}");
    assert!(!output.status.success(), "the child must die abruptly");
    let storage = open(&db_dir(&temp));
    assert_eq!(storage.safety().unwrap(), Some(safety_after_voting_for(&chain(4)[3])));
}

/// Run only as a child of `a_failed_write_is_an_io_error`, under a small file-size limit
/// (`ulimit -f`) with `SIGXFSZ` ignored, so that growing the write-ahead log fails the way
/// a full disk does.
#[test]
#[ignore = "helper process for a_failed_write_is_an_io_error"]
fn write_failure_child_fills_the_disk() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else { return };
    let storage = open(Path::new(&dir));
    let huge = vec![7u8; 8 << 20];
    match storage.put_batch(&sha256(b"huge"), &huge) {
        Err(StorageError::Io { detail, .. }) => println!("write refused: {detail}"),
        other => println!("unexpected result: {other:?}"),
    }
}

#[test]
fn a_failed_write_is_an_io_error() {
    let temp = TempDir::new().unwrap();
    let output = Command::new("sh")
        .arg("-c")
        .arg(r#"trap "" XFSZ; ulimit -f 4096 && exec "$0" "$@""#)
        .arg(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "write_failure_child_fills_the_disk",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, db_dir(&temp))
        .output()
        .expect("the child test process runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("write refused"),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---- Blocks and the committed chain ----

#[test]
fn committed_blocks_reload_by_tip_height_and_digest() {
    let temp = TempDir::new().unwrap();
    let blocks = chain(4);
    {
        let storage = open(&db_dir(&temp));
        assert_eq!(storage.committed_tip().unwrap(), None);
        storage.commit_blocks(&blocks[..2]).unwrap();
        storage.commit_blocks(&blocks[2..3]).unwrap();
    }
    let storage = open(&db_dir(&temp));
    assert_eq!(storage.committed_tip().unwrap(), Some(blocks[2].info()));
    for block in &blocks[..3] {
        assert_eq!(storage.committed_block(block.height).unwrap().as_ref(), Some(block));
        assert_eq!(storage.block(&block.digest).unwrap().as_ref(), Some(block));
    }
    assert_eq!(storage.committed_block(4).unwrap(), None);
    assert_eq!(storage.committed_block(0).unwrap(), None, "genesis is not a stored block");
    assert_eq!(storage.block(&blocks[3].digest).unwrap(), None);
}

#[test]
fn a_commit_that_does_not_extend_the_tip_writes_nothing() {
    let temp = TempDir::new().unwrap();
    let storage = open(&db_dir(&temp));
    let blocks = chain(4);
    storage.commit_blocks(&blocks[..1]).unwrap();
    // Block 2 is valid, block 4 leaves a gap: the whole commit is refused.
    let refused = storage.commit_blocks(&[blocks[1].clone(), blocks[3].clone()]);
    assert!(matches!(refused, Err(StorageError::Refused { .. })), "{refused:?}");
    assert_eq!(storage.committed_tip().unwrap(), Some(blocks[0].info()));
    assert_eq!(storage.committed_block(2).unwrap(), None);
    // A block of the right height on another parent is refused too.
    let fork = block_on(None, 5, vec![]);
    let fork_child = block_on(Some(&fork), 6, vec![]);
    assert!(storage.commit_blocks(&[fork_child]).is_err());
    storage.commit_blocks(&blocks[1..]).unwrap();
    assert_eq!(storage.committed_tip().unwrap(), Some(blocks[3].info()));
}

#[test]
fn recovery_returns_uncommitted_blocks_and_safety_data() {
    let temp = TempDir::new().unwrap();
    let blocks = chain(5);
    let fork = block_on(Some(&blocks[1]), 7, vec![]);
    {
        let storage = open(&db_dir(&temp));
        let empty = storage.recovery().unwrap();
        assert!(empty.blocks.is_empty() && empty.committed.is_none());
        assert_eq!(empty.safety, SafetyData::default());
        for block in blocks.iter().chain([&fork]) {
            storage.put_block(block).unwrap();
        }
        storage.commit_blocks(&blocks[..2]).unwrap();
        storage.put_safety(&safety_after_voting_for(&blocks[4])).unwrap();
    }
    let storage = open(&db_dir(&temp));
    let recovery = storage.recovery().unwrap();
    assert_eq!(recovery.committed, Some(blocks[1].info()));
    assert_eq!(recovery.safety, safety_after_voting_for(&blocks[4]));
    let expected: BTreeSet<Digest> = digests(&blocks[2..]).into_iter().chain([fork.digest]).collect();
    assert_eq!(digests(&recovery.blocks), expected);
    assert!(recovery.blocks.windows(2).all(|w| w[0].height <= w[1].height), "ordered by height");
}

#[test]
fn pruning_removes_old_blocks_but_keeps_the_tip() {
    let temp = TempDir::new().unwrap();
    let storage = open(&db_dir(&temp));
    let blocks = chain(10);
    let old_fork = block_on(Some(&blocks[0]), 20, vec![]);
    storage.put_block(&old_fork).unwrap();
    storage.commit_blocks(&blocks).unwrap();
    assert_eq!(storage.prune_blocks(3).unwrap(), 7, "heights 1..=6 and the fork at 2");
    for height in 1..=6 {
        assert_eq!(storage.committed_block(height).unwrap(), None, "height {height} pruned");
    }
    for block in &blocks[6..] {
        assert_eq!(storage.committed_block(block.height).unwrap().as_ref(), Some(block));
    }
    assert_eq!(storage.block(&old_fork.digest).unwrap(), None);
    assert_eq!(storage.prune_blocks(0).unwrap(), 3);
    assert_eq!(storage.committed_tip().unwrap(), Some(blocks[9].info()));
    assert_eq!(storage.committed_block(10).unwrap().as_ref(), Some(&blocks[9]));
    assert_eq!(storage.committed_block(9).unwrap(), None);
    let next = block_on(Some(&blocks[9]), 11, vec![]);
    storage.commit_blocks(std::slice::from_ref(&next)).unwrap();
}

// ---- Opening: identity and damaged directories ----

#[test]
fn another_genesis_is_refused_with_both_hashes() {
    let temp = TempDir::new().unwrap();
    drop(open(&db_dir(&temp)));
    let other = sha256(b"another chain");
    let error = Storage::open(db_dir(&temp), other, &StorageSettings::default()).err().expect("refused");
    let message = error.to_string();
    assert!(
        matches!(error, StorageError::GenesisMismatch { stored, expected } if stored == genesis_hash() && expected == other)
    );
    assert!(message.contains(&genesis_hash().to_hex()) && message.contains(&other.to_hex()), "{message}");
    assert_eq!(open(&db_dir(&temp)).genesis_hash().unwrap(), genesis_hash(), "the right genesis still opens");
}

#[test]
fn an_unknown_schema_version_is_refused() {
    let temp = TempDir::new().unwrap();
    drop(open(&db_dir(&temp)));
    {
        let db =
            rocksdb::DB::open_cf(&rocksdb::Options::default(), db_dir(&temp), all_column_families(&temp))
                .unwrap();
        db.put_cf(db.cf_handle("meta").unwrap(), b"schema_version", 99u32.to_be_bytes()).unwrap();
    }
    let error = try_open(&db_dir(&temp)).err().expect("refused");
    assert!(
        matches!(error, StorageError::UnsupportedSchema { found: 99, supported } if supported == SCHEMA_VERSION),
        "{error}"
    );
    assert!(error.to_string().contains("--reset"), "says how to start over: {error}");
}

#[test]
fn a_refused_older_database_is_left_as_it_was() {
    // Version 2 had no `rejected_txs`; opening for writing would have created it.
    let temp = TempDir::new().unwrap();
    let older: Vec<&str> = bastion_node::storage::COLUMN_FAMILIES
        .iter()
        .copied()
        .filter(|name| *name != "rejected_txs")
        .collect();
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let db = rocksdb::DB::open_cf(&options, db_dir(&temp), &older).unwrap();
        let meta = db.cf_handle("meta").unwrap();
        db.put_cf(meta, b"schema_version", 2u32.to_be_bytes()).unwrap();
        db.put_cf(meta, b"genesis_hash", genesis_hash().as_bytes()).unwrap();
    }
    let error = try_open(&db_dir(&temp)).err().expect("refused");
    assert!(matches!(error, StorageError::UnsupportedSchema { found: 2, .. }), "{error}");
    let mut after = all_column_families(&temp);
    after.sort();
    let mut before: Vec<String> =
        older.iter().map(|name| name.to_string()).chain(["default".to_string()]).collect();
    before.sort();
    assert_eq!(after, before, "the refused database gained column families");
}

fn all_column_families(temp: &TempDir) -> Vec<String> {
    rocksdb::DB::list_cf(&rocksdb::Options::default(), db_dir(temp)).unwrap()
}

/// A database with blocks flushed to table files, closed.
fn database_with_tables(temp: &TempDir) {
    let storage = open(&db_dir(temp));
    storage.commit_blocks(&chain(200)).unwrap();
    storage.put_safety(&safety_after_voting_for(&chain(1)[0])).unwrap();
    storage.flush().unwrap();
}

fn files_named(temp: &TempDir, matches: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(db_dir(temp))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(&matches))
        .collect();
    files.sort_by_key(|path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0));
    files
}

fn assert_refused_as_damaged(error: StorageError, temp: &TempDir) {
    let message = error.to_string();
    assert!(
        matches!(error, StorageError::CorruptDatabase { .. } | StorageError::Open { .. }),
        "unexpected error: {message}"
    );
    assert!(
        message.contains(&db_dir(temp).display().to_string()),
        "the message names the directory: {message}"
    );
}

#[test]
fn a_garbled_current_file_is_refused() {
    let temp = TempDir::new().unwrap();
    database_with_tables(&temp);
    std::fs::write(db_dir(&temp).join("CURRENT"), b"\x00garbage without newline").unwrap();
    assert_refused_as_damaged(try_open(&db_dir(&temp)).err().expect("refused"), &temp);
}

#[test]
fn a_garbled_manifest_is_refused() {
    let temp = TempDir::new().unwrap();
    database_with_tables(&temp);
    for manifest in files_named(&temp, |name| name.starts_with("MANIFEST-")) {
        let len = std::fs::metadata(&manifest).unwrap().len() as usize;
        std::fs::write(&manifest, vec![0xA5; len]).unwrap();
    }
    assert_refused_as_damaged(try_open(&db_dir(&temp)).err().expect("refused"), &temp);
}

#[test]
fn a_truncated_table_file_is_refused() {
    let temp = TempDir::new().unwrap();
    database_with_tables(&temp);
    let tables = files_named(&temp, |name| name.ends_with(".sst"));
    let largest = tables.last().expect("flushing wrote table files");
    let len = std::fs::metadata(largest).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(largest).unwrap().set_len(len / 2).unwrap();
    assert_refused_as_damaged(try_open(&db_dir(&temp)).err().expect("refused"), &temp);
}

#[test]
fn flipped_bytes_in_a_table_file_are_reported_not_served() {
    let temp = TempDir::new().unwrap();
    database_with_tables(&temp);
    let tables = files_named(&temp, |name| name.ends_with(".sst"));
    let largest = tables.last().expect("flushing wrote table files");
    let mut bytes = std::fs::read(largest).unwrap();
    // The data blocks come first; the footer and index stay intact.
    for byte in bytes.iter_mut().take(4096).skip(64) {
        *byte ^= 0xFF;
    }
    std::fs::write(largest, bytes).unwrap();
    match try_open(&db_dir(&temp)) {
        Err(error) => assert_refused_as_damaged(error, &temp),
        Ok(storage) => {
            let reads: Vec<_> = (1..=200).map(|h| storage.committed_block(h)).collect();
            assert!(
                reads.iter().any(|r| matches!(r, Err(StorageError::Corrupt { .. }))),
                "a damaged block must be reported as corrupt"
            );
            let chain = chain(200);
            for (read, block) in reads.iter().zip(&chain) {
                if let Ok(found) = read {
                    assert_eq!(found.as_ref(), Some(block), "no wrong block is ever served");
                }
            }
        }
    }
}

#[test]
fn a_directory_of_other_files_is_refused_and_left_alone() {
    let temp = TempDir::new().unwrap();
    std::fs::create_dir(db_dir(&temp)).unwrap();
    std::fs::write(db_dir(&temp).join("notes.txt"), b"not a database").unwrap();
    let error = try_open(&db_dir(&temp)).err().expect("refused");
    assert!(matches!(error, StorageError::NotADatabase { .. }), "{error}");
    assert!(error.to_string().contains("no CURRENT file"), "{error}");
    assert!(!db_dir(&temp).join("CURRENT").exists(), "no database was created over the files");

    let file = temp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let error = try_open(&file).err().expect("refused");
    assert!(matches!(error, StorageError::NotADatabase { .. }), "{error}");
}

#[test]
fn a_foreign_rocksdb_database_is_refused_and_left_alone() {
    let temp = TempDir::new().unwrap();
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        let db = rocksdb::DB::open(&options, db_dir(&temp)).unwrap();
        db.put(b"someone else's", b"data").unwrap();
    }
    let error = try_open(&db_dir(&temp)).err().expect("refused");
    assert!(matches!(error, StorageError::NotADatabase { .. }), "{error}");
    assert_eq!(all_column_families(&temp), vec!["default".to_string()], "no column family was added");
}

// ---- Batches ----

#[test]
fn a_batch_named_by_two_committed_blocks_keeps_the_height_that_first_ordered_it() {
    let temp = TempDir::new().unwrap();
    let storage = open(&db_dir(&temp));
    let (first, second) = (sha256(b"first"), sha256(b"second"));
    storage.put_batch(&first, b"batch").unwrap();
    let one = block_on(None, 1, vec![first]);
    storage.commit_blocks(std::slice::from_ref(&one)).unwrap();
    // A later block names it again, in the same commit as one that names it once more.
    let two = block_on(Some(&one), 2, vec![first, second]);
    let three = block_on(Some(&two), 3, vec![first]);
    storage.commit_blocks(&[two, three]).unwrap();
    assert_eq!(storage.batch_commit_height(&first).unwrap(), Some(1), "execution skips it at 2 and 3");
    assert_eq!(storage.batch_commit_height(&second).unwrap(), Some(2));
}

#[test]
fn batches_are_stored_listed_committed_and_deleted() {
    let temp = TempDir::new().unwrap();
    let ids: Vec<Digest> = (0u8..5).map(|i| sha256(&[i])).collect();
    {
        let storage = open(&db_dir(&temp));
        for (i, id) in ids[..3].iter().enumerate() {
            storage.put_batch(id, &[i as u8; 100]).unwrap();
        }
        assert_eq!(storage.pending_batches().unwrap(), ids[..3].to_vec(), "arrival order");
        assert!(storage.has_batch(&ids[1]).unwrap());
        assert!(!storage.has_batch(&ids[4]).unwrap());
        assert_eq!(storage.batch(&ids[2]).unwrap(), Some(vec![2; 100]));

        let block = block_on(None, 1, vec![ids[1]]);
        storage.commit_blocks(std::slice::from_ref(&block)).unwrap();
        assert_eq!(storage.pending_batches().unwrap(), vec![ids[0], ids[2]]);
        assert_eq!(storage.batch_commit_height(&ids[1]).unwrap(), Some(1));
        storage.put_batch(&ids[1], &[1; 100]).unwrap();
        assert_eq!(
            storage.pending_batches().unwrap(),
            vec![ids[0], ids[2]],
            "a committed batch stays committed"
        );
    }
    let storage = open(&db_dir(&temp));
    assert_eq!(storage.pending_batches().unwrap(), vec![ids[0], ids[2]]);
    storage.put_batch(&ids[3], b"after restart").unwrap();
    storage.put_batch(&ids[0], &[0; 100]).unwrap();
    assert_eq!(storage.pending_batches().unwrap(), vec![ids[0], ids[2], ids[3]], "numbering continues");
    storage.delete_batches(&[ids[0], ids[1]]).unwrap();
    assert_eq!(storage.batch(&ids[0]).unwrap(), None);
    assert!(!storage.has_batch(&ids[1]).unwrap());
    assert_eq!(storage.pending_batches().unwrap(), vec![ids[2], ids[3]]);
}

// ---- Ledger state ----

#[test]
fn the_state_store_matches_memory_store_including_proofs_and_pruning() {
    let temp = TempDir::new().unwrap();
    let storage = open(&db_dir(&temp));
    let genesis = ledger_genesis();
    let config = ExecutorConfig::default();
    let mut memory = Executor::genesis(Arc::new(MemoryStore::new()), &genesis, config).unwrap();
    let mut rocks = Executor::genesis(Arc::new(storage.state_store()), &genesis, config).unwrap();
    assert_same_state(&memory, &rocks, 0);
    for (i, txs) in ledger_blocks().iter().enumerate() {
        let height = i as u64 + 1;
        let ours = rocks.apply_block(height, &verified(txs)).unwrap();
        assert_eq!(ours, memory.apply_block(height, &verified(txs)).unwrap(), "outcome of {height}");
        assert!(
            ours.receipts.iter().all(|r| r.status.is_ok()),
            "the fixture's transactions succeed: {:?}",
            ours.receipts
        );
    }
    let latest = rocks.height();
    for height in 0..=latest {
        assert_same_state(&memory, &rocks, height);
    }
    for min_retained in [2, 4, latest] {
        let (ours, theirs) =
            (rocks.store().prune(min_retained).unwrap(), memory.store().prune(min_retained).unwrap());
        assert_eq!(ours, theirs, "prune({min_retained})");
        for height in min_retained..=latest {
            assert_same_state(&memory, &rocks, height);
        }
        for height in 0..min_retained {
            let account = address(&key(1));
            assert!(memory.query().account_proof(&account, height).is_err());
            assert!(rocks.query().account_proof(&account, height).is_err(), "height {height} is pruned");
        }
    }
    assert!(memory.store().node_count() > 0);
}

#[test]
fn a_reopened_state_store_continues_from_the_stored_version() {
    let temp = TempDir::new().unwrap();
    let genesis = ledger_genesis();
    let blocks = ledger_blocks();
    let config = ExecutorConfig::default();
    let mut memory = Executor::genesis(Arc::new(MemoryStore::new()), &genesis, config).unwrap();
    {
        let storage = open(&db_dir(&temp));
        let mut rocks = Executor::genesis(Arc::new(storage.state_store()), &genesis, config).unwrap();
        for (i, txs) in blocks[..3].iter().enumerate() {
            rocks.apply_block(i as u64 + 1, &verified(txs)).unwrap();
            memory.apply_block(i as u64 + 1, &verified(txs)).unwrap();
        }
    }
    let storage = open(&db_dir(&temp));
    let mut rocks = Executor::open(Arc::new(storage.state_store()), config).unwrap();
    assert_eq!(rocks.height(), 3);
    assert_eq!(rocks.state_root(), memory.state_root());
    assert!(Executor::genesis(Arc::new(storage.state_store()), &genesis, config).is_err());
    for (i, txs) in blocks[3..].iter().enumerate() {
        let height = i as u64 + 4;
        assert_eq!(
            rocks.apply_block(height, &verified(txs)).unwrap(),
            memory.apply_block(height, &verified(txs)).unwrap()
        );
    }
    assert_same_state(&memory, &rocks, rocks.height());
    // Versions are written in order only.
    let empty = rocks.execute_block(rocks.height() + 1, &[]).unwrap();
    rocks.commit(empty).unwrap();
    let again = Executor::open(Arc::new(storage.state_store()), config).unwrap();
    assert_eq!(again.height(), blocks.len() as u64 + 1);
}

// ---- Execution records ----

fn record_outcome(storage: &Storage, outcome: &BlockOutcome) -> Result<(), StorageError> {
    let hashes: Vec<Digest> = outcome.receipts.iter().map(|r| r.tx_hash).collect();
    storage.record_execution(outcome.height, outcome.state_root, &outcome.receipts, &hashes)
}

fn rocks_chain(storage: &Storage) -> Executor<RocksStateStore> {
    Executor::genesis(Arc::new(storage.state_store()), &ledger_genesis(), ExecutorConfig::default()).unwrap()
}

#[test]
fn staged_execution_is_written_with_the_state() {
    let temp = TempDir::new().unwrap();
    let storage = open(&db_dir(&temp));
    let mut exec = rocks_chain(&storage);
    assert_eq!(storage.executed_height().unwrap(), None);
    let blocks = ledger_blocks();
    for (i, txs) in blocks.iter().enumerate() {
        let executed = exec.execute_block(i as u64 + 1, &verified(txs)).unwrap();
        storage.stage_execution(executed.outcome());
        let outcome = exec.commit(executed).unwrap();
        assert_eq!(storage.executed_height().unwrap(), Some(outcome.height));
        assert_eq!(exec.store().latest_version().unwrap(), Some(outcome.height));
    }
    drop(exec);
    let storage = {
        drop(storage);
        open(&db_dir(&temp))
    };
    let record = storage.execution(4).unwrap().expect("height 4 recorded");
    let tx = verified(&blocks[3])[1].hash();
    assert_eq!(record.tx_hashes[1], tx);
    let receipt = storage.receipt(&tx).unwrap().expect("receipt stored");
    assert_eq!((receipt.height, receipt.index), (4, 1));
    assert_eq!(storage.tx_location(&tx).unwrap(), Some(TxLocation { height: 4, index: 1 }));
    let reopened = Executor::open(Arc::new(storage.state_store()), ExecutorConfig::default()).unwrap();
    assert_eq!(reopened.query().state_root(4).unwrap(), record.state_root);
}

#[test]
fn recorded_execution_indexes_receipts_and_refuses_disorder() {
    let temp = TempDir::new().unwrap();
    let storage = open(&db_dir(&temp));
    let mut exec = rocks_chain(&storage);
    let blocks = ledger_blocks();
    let mut outcomes: Vec<BlockOutcome> = Vec::new();
    for (i, txs) in blocks[..2].iter().enumerate() {
        let outcome = exec.apply_block(i as u64 + 1, &verified(txs)).unwrap();
        record_outcome(&storage, &outcome).unwrap();
        outcomes.push(outcome);
    }
    let first_tx = verified(&blocks[0])[0].hash();
    let receipt = storage.receipt(&first_tx).unwrap().expect("receipt");
    assert_eq!(receipt, outcomes[0].receipts[0]);
    assert_eq!(storage.tx_location(&first_tx).unwrap(), Some(TxLocation { height: 1, index: 0 }));
    let record = storage.execution(2).unwrap().expect("record");
    assert_eq!(
        (record.state_root, record.receipts_root),
        (outcomes[1].state_root, outcomes[1].receipts_root)
    );
    assert_eq!(storage.executed_height().unwrap(), Some(2));
    assert_eq!(storage.execution(3).unwrap(), None);

    record_outcome(&storage, &outcomes[1]).expect("recording the same outcome again is idempotent");
    let mut forged = outcomes[1].clone();
    forged.state_root = Digest::ZERO;
    assert!(matches!(record_outcome(&storage, &forged), Err(StorageError::Refused { .. })));
    let gap = storage.record_execution(5, Digest::ZERO, &[], &[]);
    assert!(matches!(gap, Err(StorageError::Refused { .. })), "{gap:?}");
    let strangers = storage.record_execution(3, Digest::ZERO, &outcomes[0].receipts, &[sha256(b"other")]);
    assert!(matches!(strangers, Err(StorageError::Refused { .. })), "receipts must match the transactions");
    assert_eq!(storage.executed_height().unwrap(), Some(2), "refused records change nothing");

    // The same transaction again: rejected for its nonce; its first receipt stays.
    let replay = exec.apply_block(3, &verified(&blocks[0])).unwrap();
    assert!(matches!(replay.receipts[0].status, ReceiptStatus::Rejected { .. }));
    record_outcome(&storage, &replay).unwrap();
    assert_eq!(storage.receipt(&first_tx).unwrap(), Some(outcomes[0].receipts[0].clone()));
    assert_eq!(storage.execution(3).unwrap().unwrap().tx_hashes, vec![first_tx]);
}

/// `recorded_among` answers "has a receipt?" from where each transaction can be: one
/// below its sender's next nonce from the index, any other from the rejections. A
/// rejected transaction is found either way, an executed one only as below, and one never
/// seen in neither; across a reopen too.
#[test]
fn receipts_are_found_by_nonce_without_the_index_for_rejections() {
    let temp = TempDir::new().unwrap();
    let storage = open(&db_dir(&temp));
    let mut exec = rocks_chain(&storage);
    let alice = key(1);
    let executed = verified(&[builder(&alice, 0).transfer(address(&key(2)), 9).unwrap()]);
    let gap = verified(&[builder(&alice, 5).transfer(address(&key(2)), 9).unwrap()]);
    let fresh = verified(&[builder(&alice, 1).transfer(address(&key(2)), 9).unwrap()]);
    let outcome = exec.apply_block(1, &[executed[0].clone(), gap[0].clone()]).unwrap();
    assert_eq!(outcome.receipts[0].status, ReceiptStatus::Ok);
    assert!(matches!(outcome.receipts[1].status, ReceiptStatus::Rejected { .. }));
    record_outcome(&storage, &outcome).unwrap();
    let storage = {
        drop(exec);
        drop(storage);
        open(&db_dir(&temp))
    };
    let hashes = [executed[0].hash(), gap[0].hash(), fresh[0].hash()];
    // As a validator asks: nonce 0 is below alice's next (1), 5 and 1 are not.
    assert_eq!(storage.recorded_among(&hashes, &[true, false, false]).unwrap(), vec![true, true, false]);
    // The rejected one is in the index as well; the executed one is not among rejections.
    assert_eq!(storage.recorded_among(&hashes, &[true, true, true]).unwrap(), vec![true, true, false]);
    assert_eq!(storage.recorded_among(&hashes, &[false, false, false]).unwrap(), vec![false, true, false]);
    assert_eq!(
        hashes.iter().map(|h| storage.recorded(h, false).unwrap()).collect::<Vec<_>>(),
        vec![false, true, false]
    );
    assert!(matches!(storage.recorded_among(&hashes, &[true]), Err(StorageError::Refused { .. })));
}

#[test]
fn consensus_only_execution_indexes_transactions_without_receipts() {
    let temp = TempDir::new().unwrap();
    let storage = open(&db_dir(&temp));
    let txs: Vec<Digest> = (0u8..3).map(|i| sha256(&[i])).collect();
    storage.record_execution(1, Digest::ZERO, &[], &txs[..2]).unwrap();
    storage.record_execution(2, Digest::ZERO, &[], &txs[2..]).unwrap();
    assert_eq!(storage.tx_height(&txs[1]).unwrap(), Some(1));
    assert_eq!(storage.tx_location(&txs[2]).unwrap(), Some(TxLocation { height: 2, index: 0 }));
    assert_eq!(storage.receipt(&txs[0]).unwrap(), None);
    assert_eq!(storage.execution(1).unwrap().unwrap().tx_hashes, txs[..2].to_vec());
    assert_eq!(storage.tx_height(&sha256(b"never")).unwrap(), None);
    drop(storage);
    assert_eq!(open(&db_dir(&temp)).executed_height().unwrap(), Some(2));
}

/// Opens the database directly and reads `tx_index` and the `indexed_height` marker.
fn raw_index(temp: &TempDir, hashes: &[Digest]) -> (Vec<bool>, Option<u64>) {
    let db = rocksdb::DB::open_cf_for_read_only(
        &rocksdb::Options::default(),
        db_dir(temp),
        all_column_families(temp),
        false,
    )
    .unwrap();
    let index = db.cf_handle("tx_index").unwrap();
    let found = hashes.iter().map(|h| db.get_cf(index, h.as_bytes()).unwrap().is_some()).collect();
    let marker = db.get_cf(db.cf_handle("meta").unwrap(), b"indexed_height").unwrap();
    (found, marker.map(|bytes| u64::from_be_bytes(bytes.try_into().unwrap())))
}

/// Index entries wait in memory for one bulk write; a reopen before that write rebuilds
/// them from the execution records, choosing the same positions (here: the first of a
/// hash repeated in a consensus-only block).
#[test]
fn transaction_index_entries_survive_a_reopen_before_and_after_their_bulk_write() {
    let temp = TempDir::new().unwrap();
    let txs: Vec<Digest> = (0u8..4).map(|i| sha256(&[i])).collect();
    let locations = |storage: &Storage| -> Vec<Option<TxLocation>> {
        txs.iter().map(|tx| storage.tx_location(tx).unwrap()).collect()
    };
    let expected = vec![
        Some(TxLocation { height: 1, index: 0 }),
        Some(TxLocation { height: 1, index: 1 }),
        Some(TxLocation { height: 2, index: 0 }),
        None,
    ];
    {
        let storage = open(&db_dir(&temp));
        storage.record_execution(0, Digest::ZERO, &[], &[]).unwrap();
        storage.record_execution(1, Digest::ZERO, &[], &[txs[0], txs[1], txs[0]]).unwrap();
        storage.record_execution(2, Digest::ZERO, &[], &[txs[2]]).unwrap();
        assert_eq!(locations(&storage), expected);
    }
    assert_eq!(raw_index(&temp, &txs), (vec![false; 4], None), "nothing written to tx_index yet");
    {
        let storage = open(&db_dir(&temp));
        assert_eq!(locations(&storage), expected, "rebuilt from the execution records");
        assert_eq!(storage.executed_among(&txs).unwrap(), vec![true, true, true, false]);
        storage.flush().unwrap();
        assert_eq!(locations(&storage), expected);
        storage.record_execution(3, Digest::ZERO, &[], &[txs[3]]).unwrap();
    }
    assert_eq!(raw_index(&temp, &txs), (vec![true, true, true, false], Some(2)));
    let storage = open(&db_dir(&temp));
    let mut all = expected.clone();
    all[3] = Some(TxLocation { height: 3, index: 0 });
    assert_eq!(locations(&storage), all, "from tx_index up to 2, from memory above");
    assert_eq!(storage.executed_among(&txs).unwrap(), vec![true; 4]);
}

/// Executes and records the first fixture block, and with `replay` the same block again at
/// height 2 (rejected for its nonces); returns the first transaction's hash and receipt.
fn record_first_block(temp: &TempDir, replay: bool) -> (Digest, Receipt) {
    let block = verified(&ledger_blocks()[0]);
    let storage = open(&db_dir(temp));
    let mut exec = rocks_chain(&storage);
    let outcome = exec.apply_block(1, &block).unwrap();
    record_outcome(&storage, &outcome).unwrap();
    if replay {
        let again = exec.apply_block(2, &block).unwrap();
        assert!(matches!(again.receipts[0].status, ReceiptStatus::Rejected { .. }));
        record_outcome(&storage, &again).unwrap();
    }
    (block[0].hash(), outcome.receipts[0].clone())
}

#[test]
fn a_rejected_duplicate_keeps_the_first_receipt_across_reopens() {
    let temp = TempDir::new().unwrap();
    let (first_tx, first_receipt) = record_first_block(&temp, true);
    for flush in [false, true] {
        let storage = open(&db_dir(&temp));
        assert_eq!(storage.tx_location(&first_tx).unwrap(), Some(TxLocation { height: 1, index: 0 }));
        assert_eq!(storage.receipt(&first_tx).unwrap(), Some(first_receipt.clone()));
        assert!(storage.recorded(&first_tx, true).unwrap());
        if flush {
            storage.flush().unwrap();
        }
    }
    assert_eq!(raw_index(&temp, &[first_tx]), (vec![true], Some(2)));
}

/// A duplicate recorded after a reopen, while the first entry exists only in the memory
/// rebuilt at open, is told apart from a new transaction all the same.
#[test]
fn a_duplicate_after_a_reopen_is_checked_against_the_rebuilt_entries() {
    let temp = TempDir::new().unwrap();
    let blocks = ledger_blocks();
    let (first_tx, first_receipt) = record_first_block(&temp, false);
    assert_eq!(raw_index(&temp, &[first_tx]), (vec![false], None), "the entry is in memory only");
    let storage = open(&db_dir(&temp));
    let mut exec = Executor::open(Arc::new(storage.state_store()), ExecutorConfig::default()).unwrap();
    let replay = exec.apply_block(2, &verified(&blocks[0])).unwrap();
    assert!(matches!(replay.receipts[0].status, ReceiptStatus::Rejected { .. }));
    record_outcome(&storage, &replay).unwrap();
    assert_eq!(storage.receipt(&first_tx).unwrap(), Some(first_receipt), "the first receipt stays");
    assert_eq!(storage.tx_location(&first_tx).unwrap(), Some(TxLocation { height: 1, index: 0 }));
    assert!(!storage.recorded(&first_tx, false).unwrap(), "an executed transaction is no rejection");
}

/// An idle chain records empty blocks: after `INDEX_FLUSH_HEIGHTS` of them the marker moves
/// however few entries there are, so an open never rereads more heights than that.
#[test]
fn the_index_marker_follows_an_idle_chain() {
    let temp = TempDir::new().unwrap();
    let executed = INDEX_FLUSH_HEIGHTS + 5;
    {
        let storage = open(&db_dir(&temp));
        storage.record_execution(0, Digest::ZERO, &[], &[sha256(b"early")]).unwrap();
    }
    {
        // Thousands of empty heights, written directly: one synced record each would be slow.
        let db =
            rocksdb::DB::open_cf(&rocksdb::Options::default(), db_dir(&temp), all_column_families(&temp))
                .unwrap();
        let heights = db.cf_handle("heights").unwrap();
        let no_receipts = bastion_ledger::receipts_root(&[]).unwrap();
        let mut batch = rocksdb::WriteBatch::default();
        for height in 1..=executed {
            let record = ExecutionRecord {
                height,
                state_root: Digest::ZERO,
                receipts_root: no_receipts,
                tx_hashes: vec![],
            };
            batch.put_cf(heights, height.to_be_bytes(), bastion_ledger::codec::encode(&record).unwrap());
        }
        batch.put_cf(db.cf_handle("meta").unwrap(), b"executed_height", executed.to_be_bytes());
        db.write(batch).unwrap();
    }
    assert_eq!(raw_index(&temp, &[sha256(b"early")]), (vec![false], None));
    {
        let storage = open(&db_dir(&temp));
        assert_eq!(storage.tx_height(&sha256(b"early")).unwrap(), Some(0));
    }
    assert_eq!(raw_index(&temp, &[sha256(b"early")]), (vec![true], Some(executed)), "written at open");
}

/// Once the entries in memory reach `INDEX_FLUSH_ENTRIES`, recording a height writes them
/// all to `tx_index` with the marker, without waiting for a flush or a close.
#[test]
fn a_full_set_of_index_entries_is_written_in_bulk() {
    let temp = TempDir::new().unwrap();
    let txs: Vec<Digest> = (0..INDEX_FLUSH_ENTRIES as u32 + 10).map(|i| sha256(&i.to_le_bytes())).collect();
    let half = txs.len() / 2;
    {
        let storage = open(&db_dir(&temp));
        storage.record_execution(1, Digest::ZERO, &[], &txs[..half]).unwrap();
        storage.record_execution(2, Digest::ZERO, &[], &txs[half..]).unwrap();
        storage.record_execution(3, Digest::ZERO, &[], &[sha256(b"after")]).unwrap();
    }
    let probes = [txs[0], txs[half - 1], txs[half], txs[txs.len() - 1], sha256(b"after")];
    assert_eq!(raw_index(&temp, &probes), (vec![true, true, true, true, false], Some(2)));
    let storage = open(&db_dir(&temp));
    assert_eq!(storage.tx_location(&sha256(b"after")).unwrap(), Some(TxLocation { height: 3, index: 0 }));
    assert_eq!(storage.tx_location(&txs[half + 1]).unwrap(), Some(TxLocation { height: 2, index: 1 }));
}

/// Version 3 indexed every transaction when it recorded its height: it opens, and is
/// marked as indexed up to its executed height.
#[test]
fn a_version_3_database_is_upgraded_in_place() {
    let temp = TempDir::new().unwrap();
    let txs: Vec<Digest> = (0u8..3).map(|i| sha256(&[i])).collect();
    {
        let storage = open(&db_dir(&temp));
        storage.record_execution(1, Digest::ZERO, &[], &txs).unwrap();
        storage.flush().unwrap();
    }
    {
        let db =
            rocksdb::DB::open_cf(&rocksdb::Options::default(), db_dir(&temp), all_column_families(&temp))
                .unwrap();
        let meta = db.cf_handle("meta").unwrap();
        db.put_cf(meta, b"schema_version", 3u32.to_be_bytes()).unwrap();
        db.delete_cf(meta, b"indexed_height").unwrap();
    }
    let storage = open(&db_dir(&temp));
    assert_eq!(storage.tx_location(&txs[2]).unwrap(), Some(TxLocation { height: 1, index: 2 }));
    storage.record_execution(2, Digest::ZERO, &[], &[sha256(b"next")]).unwrap();
    drop(storage);
    let db = rocksdb::DB::open_cf_for_read_only(
        &rocksdb::Options::default(),
        db_dir(&temp),
        all_column_families(&temp),
        false,
    )
    .unwrap();
    let meta = db.cf_handle("meta").unwrap();
    assert_eq!(db.get_cf(meta, b"schema_version").unwrap(), Some(SCHEMA_VERSION.to_be_bytes().to_vec()));
    assert_eq!(db.get_cf(meta, b"indexed_height").unwrap(), Some(1u64.to_be_bytes().to_vec()));
}

#[test]
fn a_crash_between_state_and_record_is_repaired_by_executing_again() {
    let temp = TempDir::new().unwrap();
    let blocks = ledger_blocks();
    let lost = {
        let storage = open(&db_dir(&temp));
        let mut exec = rocks_chain(&storage);
        let first = exec.apply_block(1, &verified(&blocks[0])).unwrap();
        record_outcome(&storage, &first).unwrap();
        // The tree of height 2 is written, then the process dies before recording it.
        exec.apply_block(2, &verified(&blocks[1])).unwrap()
    };
    // Opening repairs the tree, which was one version ahead of the executed height.
    let storage = open(&db_dir(&temp));
    assert_eq!(storage.executed_height().unwrap(), Some(1));
    assert_eq!(storage.state_store().latest_version().unwrap(), Some(1));
    let mut exec = Executor::open(Arc::new(storage.state_store()), ExecutorConfig::default()).unwrap();
    assert_eq!(exec.height(), 1);
    let again = exec.apply_block(2, &verified(&blocks[1])).unwrap();
    assert_eq!(again, lost, "the same block rewrites the same state");
    record_outcome(&storage, &again).unwrap();
    drop(exec);
    let storage = {
        drop(storage);
        open(&db_dir(&temp))
    };
    let mut exec = Executor::open(Arc::new(storage.state_store()), ExecutorConfig::default()).unwrap();
    assert_eq!(exec.height(), 2, "nothing to repair once recorded");

    let mut memory =
        Executor::genesis(Arc::new(MemoryStore::new()), &ledger_genesis(), ExecutorConfig::default())
            .unwrap();
    for (i, txs) in blocks.iter().enumerate() {
        let height = i as u64 + 1;
        let theirs = memory.apply_block(height, &verified(txs)).unwrap();
        if height > 2 {
            assert_eq!(exec.apply_block(height, &verified(txs)).unwrap(), theirs);
        }
    }
    for height in 0..=exec.height() {
        assert_same_state(&memory, &exec, height);
    }
}

#[test]
fn storage_handles_are_shared_across_threads() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<Storage>();
    shareable::<RocksStateStore>();
    let temp = TempDir::new().unwrap();
    let storage = open(&db_dir(&temp));
    let ids: Vec<Digest> = (0u8..8).map(|i| sha256(&[i])).collect();
    std::thread::scope(|scope| {
        for id in &ids {
            let storage = storage.clone();
            scope.spawn(move || storage.put_batch(id, id.as_bytes()).unwrap());
        }
    });
    let pending: BTreeSet<Digest> = storage.pending_batches().unwrap().into_iter().collect();
    assert_eq!(pending, ids.into_iter().collect());
}
