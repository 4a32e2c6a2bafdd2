//! Storage faults seen from outside a real `bastion-node`: a damaged data directory or a
//! data directory of another genesis makes it exit at start with a message naming the
//! problem (it never runs on bad state), and a disk that fills up while it runs makes it
//! halt (stop voting, say why on `/health`) rather than vote without persisting.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bastion_ledger::{Address, TransactionBuilder};
use bastion_testnet::config::GenesisFile;
use bastion_tests::localnet::{dev_key, node_binary, LocalNet};

const LIMIT: Duration = Duration::from_secs(60);

/// One test at a time: they start validators and would otherwise compete for two cores.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn data_dir(net: &LocalNet, i: usize) -> PathBuf {
    net.dir.join(format!("validator-{i}/data"))
}

/// Commits `count` transfers from dev account `from` (nonces `first..`) through validator 0.
fn commit_transfers(net: &LocalNet, from: u8, first: u64, count: u64) {
    let hashes: Vec<String> = (first..first + count)
        .map(|nonce| {
            let tx = TransactionBuilder::new(net.chain_id.clone(), dev_key(from))
                .nonce(nonce)
                .expiry_height(1_000_000)
                .fuel_limit(10_000)
                .transfer(Address([0x51; 32]), 1)
                .expect("builds");
            net.submit(0, &tx)
        })
        .collect();
    for hash in &hashes {
        assert_eq!(net.wait_final(0, hash)["status"], "committed_ok");
    }
}

/// A one-validator chain with some history, stopped with SIGKILL, whose database holds
/// table files (the restart in between replays the write-ahead log into them) and a
/// write-ahead log with records.
fn stopped_validator_with_history() -> LocalNet {
    let mut net = LocalNet::start(1, false);
    commit_transfers(&net, 0, 0, 20);
    net.restart(0);
    commit_transfers(&net, 0, 20, 20);
    net.kill(0);
    net
}

/// Files of the data directory whose names end with `suffix`, largest last.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("data dir")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(suffix)))
        .collect();
    files.sort_by_key(|path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0));
    files
}

/// Starts validator `i`'s binary by hand and requires it to exit non-zero within 30 s;
/// returns what it printed on stderr.
fn refused_start(net: &LocalNet, i: usize) -> String {
    let vdir = net.dir.join(format!("validator-{i}"));
    let stderr = vdir.join("refused.log");
    let mut child = Command::new(node_binary())
        .arg("--config")
        .arg(&vdir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("bastion-node starts");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "bastion-node kept running on a bad data directory; stderr:\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let printed = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(!status.success(), "bastion-node exited 0 on a bad data directory:\n{printed}");
    printed
}

/// The last line: `bastion-node: <reason>`, the one a person reads first.
fn last_line(printed: &str) -> &str {
    let line = printed.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("");
    eprintln!("refused: {line}");
    line
}

#[test]
fn a_truncated_table_file_is_refused_at_start() {
    let _serial = serial();
    let net = stopped_validator_with_history();
    let data = data_dir(&net, 0);
    let tables = files_ending(&data, ".sst");
    let largest = tables.last().expect("the restart wrote table files");
    let len = std::fs::metadata(largest).expect("table size").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(largest)
        .expect("open table")
        .set_len(len / 2)
        .expect("truncate");
    let printed = refused_start(&net, 0);
    let reason = last_line(&printed);
    assert!(reason.starts_with("bastion-node:"), "{printed}");
    assert!(reason.contains("corrupted") && reason.contains(&data.display().to_string()), "{reason}");
}

#[test]
fn a_write_ahead_log_damaged_before_its_tail_is_refused_at_start() {
    let _serial = serial();
    let net = stopped_validator_with_history();
    let data = data_dir(&net, 0);
    let logs = files_ending(&data, ".log");
    let wal = logs.last().expect("a write-ahead log");
    let mut bytes = std::fs::read(wal).expect("read WAL");
    assert!(bytes.len() > 4_096, "the WAL holds records ({} bytes)", bytes.len());
    // Garble a stretch in the middle: records after it were synced, so this is damage, not
    // a torn last write.
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 64] {
        *byte ^= 0x5A;
    }
    std::fs::write(wal, &bytes).expect("write WAL");
    let printed = refused_start(&net, 0);
    let reason = last_line(&printed);
    assert!(reason.starts_with("bastion-node:"), "{printed}");
    assert!(reason.contains("corrupt") && reason.contains(&data.display().to_string()), "{reason}");
}

#[test]
fn a_data_directory_of_another_genesis_is_refused_at_start() {
    let _serial = serial();
    let net = stopped_validator_with_history();
    let path = net.dir.join("genesis.json");
    let mut genesis = GenesisFile::load(&path).expect("genesis");
    genesis.accounts[0].balance += 1;
    genesis.save(&path).expect("write genesis");
    let printed = refused_start(&net, 0);
    let reason = last_line(&printed);
    assert!(reason.contains("created for genesis") && reason.contains("runs genesis"), "{printed}");
}

/// A tmpfs of `size` mounted on `dir` for the test's lifetime (lazily unmounted on drop).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(Tmpfs(dir.to_path_buf()))
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Copies the files of `from` (a flat RocksDB directory) into `to`.
fn copy_flat(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
    }
}

/// Fills the file system holding `dir` until a write fails with "no space".
fn fill(dir: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(dir.join("filler")).expect("filler");
    let chunk = vec![0xEEu8; 64 * 1024];
    loop {
        if let Err(e) = file.write_all(&chunk) {
            assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC, got {e}");
            break;
        }
    }
    // Partial blocks too: leave nothing.
    while file.write_all(&[0xEE]).is_ok() {}
}

#[test]
fn a_full_disk_halts_the_validator_instead_of_voting() {
    let _serial = serial();
    let mut net = LocalNet::start(4, false);
    commit_transfers(&net, 1, 0, 5);
    // Move validator 3's data onto a small tmpfs.
    net.kill(3);
    let data = data_dir(&net, 3);
    let saved = net.dir.join("validator-3/data.saved");
    std::fs::rename(&data, &saved).expect("move data aside");
    let tmpfs = match Tmpfs::mount(&data, "32m") {
        Ok(tmpfs) => tmpfs,
        Err(e) => {
            // Needs root (CAP_SYS_ADMIN); the storage layer's own test covers a failed
            // write under a file-size limit.
            eprintln!("SKIPPED: cannot mount a tmpfs here: {e}");
            return;
        }
    };
    copy_flat(&saved, &data);
    net.restart(3);
    let height = net.height(0).expect("status");
    assert!(net.wait_height(&[3], height, LIMIT), "validator 3 did not catch up on the tmpfs");

    fill(&data);
    let filled = Instant::now();
    let mut nonce = 0;
    let halted = loop {
        let log = net.log(3);
        if let Some(line) = log.lines().find(|line| line.contains("validator halted")) {
            break line.to_string();
        }
        assert!(filled.elapsed() < LIMIT, "validator 3 kept running on a full disk; log:\n{log}");
        // Keep the chain busy, so validator 3 has votes and blocks to persist.
        commit_transfers(&net, 2, nonce, 1);
        nonce += 1;
    };
    eprintln!("full disk: validator 3 halted after {} ms: {halted}", filled.elapsed().as_millis());
    assert!(halted.contains("cannot persist") || halted.contains("cannot execute"), "{halted}");
    assert!(halted.contains("No space left on device"), "{halted}");
    let (status, health) = net.get(3, "/health").expect("a halted validator still answers");
    assert_eq!((status, &health["ready"]), (503, &serde_json::json!(false)), "{health}");
    let reason = health["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("halted: ") && reason.contains("No space left on device"), "{health}");

    // It no longer takes part: its chain stops while the other three go on.
    let stopped = net.get(3, "/status").expect("status").1["committed_height"].as_u64().expect("height");
    let others = net.height(0).expect("status");
    assert!(net.wait_height(&[0, 1, 2], others + 5, LIMIT), "the other three stopped");
    let later = net.get(3, "/status").expect("status").1["committed_height"].as_u64().expect("height");
    assert_eq!(later, stopped, "a halted validator kept committing");
    net.kill(3);
    drop(tmpfs);
}
