//! Real validators on 127.0.0.1: generate a testnet directory, start `bastion-node`
//! processes, kill and restart them, and talk to their HTTP APIs.
//!
//! Everything a test starts is killed when the [`LocalNet`] is dropped (by PID: only the
//! processes it spawned). Ports come from `bastion_testnet::ports` (below the ephemeral
//! range, each bound once to check it is free), so several nets (and several test binaries)
//! can run at once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bastion_crypto::KeyPair;
use bastion_ledger::{Address, SignedTransaction, TransactionBuilder};
use bastion_testnet::config::{
    ConsensusSettings, GenesisAccount, GenesisFile, GenesisValidator, MempoolSettings, NodeConfig,
    StorageSettings,
};
use bastion_testnet::faults::NetworkRules;
use bastion_testnet::relay::{Relay, RelayLink};

/// Funded dev account `i` (0..10): the same published key as the CLI's `dev<i>`.
pub fn dev_key(i: u8) -> KeyPair {
    bastion_testnet::dev_keys::dev_key(i).expect("dev accounts are numbered 0..10")
}

pub const DEV_BALANCE: u64 = 1_000_000_000_000;

pub struct LocalNet {
    pub dir: PathBuf,
    pub chain_id: String,
    pub api: Vec<SocketAddr>,
    children: Vec<Option<Child>>,
    /// Set by [`LocalNet::start_with_faults`]: every validator-to-validator datagram
    /// passes through it. Dropped after the validators are killed.
    relay: Option<Relay>,
    /// Extra `bastion-node` arguments per validator (e.g. `--byzantine silent`).
    node_args: Vec<Vec<String>>,
    _temp: Option<tempfile::TempDir>,
}

/// The `bastion-node` binary built alongside the tests.
pub fn node_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BASTION_NODE_BIN") {
        return PathBuf::from(path);
    }
    // target/<profile>/deps/<test binary> → target/<profile>/bastion-node
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    dir.join("bastion-node")
}

/// A free TCP port below the ephemeral range, so no outgoing connection takes it before
/// the validator binds it (and again after a restart).
fn free_tcp() -> SocketAddr {
    bastion_testnet::ports::allocate_tcp().expect("free TCP port")
}

fn free_udp() -> SocketAddr {
    bastion_testnet::ports::allocate_udp().expect("free UDP port")
}

impl LocalNet {
    /// Writes a testnet of `n` validators (dev accounts 0..10 funded) and starts it.
    pub fn start(n: usize, consensus_only: bool) -> Self {
        Self::start_with(n, consensus_only, false, &[], &MempoolSettings::default())
    }

    /// [`LocalNet::start`] with the given mempool settings on every validator.
    pub fn start_with_mempool(n: usize, consensus_only: bool, mempool: MempoolSettings) -> Self {
        Self::start_with(n, consensus_only, false, &[], &mempool)
    }

    /// [`LocalNet::start`] with validator `i` running `bastion-node --byzantine <mode>` for
    /// each `(i, mode)` in `byzantine` (restarts keep the mode).
    pub fn start_byzantine(n: usize, consensus_only: bool, byzantine: &[(usize, &str)]) -> Self {
        Self::start_with(n, consensus_only, false, byzantine, &MempoolSettings::default())
    }

    /// [`LocalNet::start`] with the validators talking through an in-process relay
    /// ([`bastion_testnet::relay`]), so the test can partition, delay and drop their
    /// traffic ([`LocalNet::set_faults`]).
    pub fn start_with_faults(n: usize, consensus_only: bool) -> Self {
        Self::start_with(n, consensus_only, true, &[], &MempoolSettings::default())
    }

    fn start_with(
        n: usize,
        consensus_only: bool,
        faults: bool,
        byzantine: &[(usize, &str)],
        mempool: &MempoolSettings,
    ) -> Self {
        let temp = tempfile::Builder::new().prefix("bastion-e2e-").tempdir().expect("temp dir");
        let dir = temp.path().to_path_buf();
        let chain_id = format!("bastion-e2e-{}", std::process::id());
        let keys: Vec<KeyPair> = (0..n).map(|_| KeyPair::generate(&mut rand::thread_rng())).collect();
        let api: Vec<SocketAddr> = (0..n).map(|_| free_tcp()).collect();
        let quic: Vec<SocketAddr> = (0..n).map(|_| free_udp()).collect();
        let links: Vec<RelayLink> = quic
            .iter()
            .map(|node| RelayLink { public: if faults { free_udp() } else { *node }, node: *node })
            .collect();
        let relay = faults.then(|| Relay::start(&links).expect("start the relay"));
        let genesis = GenesisFile {
            chain_id: chain_id.clone(),
            validators: (0..n)
                .map(|i| GenesisValidator {
                    public_key: keys[i].public(),
                    quic_addr: links[i].public,
                    api_url: Some(format!("http://{}", api[i])),
                })
                .collect(),
            accounts: (0..10)
                .map(|i| GenesisAccount {
                    address: Address::from_public_key(&dev_key(i).public()),
                    balance: DEV_BALANCE,
                })
                .collect(),
        };
        genesis.save(&dir.join("genesis.json")).expect("write genesis");
        for (i, key) in keys.iter().enumerate() {
            let vdir = dir.join(format!("validator-{i}"));
            std::fs::create_dir_all(&vdir).expect("validator dir");
            std::fs::write(vdir.join("key.json"), serde_json::to_string(key).expect("key json"))
                .expect("write key");
            let config = NodeConfig {
                index: i as u16,
                key_file: "key.json".into(),
                genesis_file: "../genesis.json".into(),
                data_dir: "data".into(),
                quic_listen: quic[i],
                api_listen: api[i],
                consensus_only,
                worker_threads: None,
                consensus: ConsensusSettings { base_timeout_ms: 1_000, ..ConsensusSettings::default() },
                mempool: mempool.clone(),
                storage: StorageSettings::default(),
            };
            config.save(&vdir).expect("write config");
        }
        let mut net = LocalNet {
            dir,
            chain_id,
            api,
            children: (0..n).map(|_| None).collect(),
            relay,
            node_args: vec![Vec::new(); n],
            _temp: Some(temp),
        };
        for (i, mode) in byzantine {
            net.node_args[*i] = vec!["--byzantine".to_string(), mode.to_string()];
        }
        for i in 0..n {
            net.spawn(i);
        }
        for i in 0..n {
            net.wait_ready(i, Duration::from_secs(60));
        }
        net
    }

    fn spawn(&mut self, i: usize) {
        let vdir = self.dir.join(format!("validator-{i}"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(vdir.join("node.log"))
            .expect("log file");
        let child = Command::new(node_binary())
            .arg("--config")
            .arg(&vdir)
            .args(&self.node_args[i])
            .env("BASTION_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", node_binary().display()));
        self.children[i] = Some(child);
    }

    /// SIGKILLs validator `i` (no clean shutdown).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_ready(i, Duration::from_secs(60));
    }

    /// SIGKILLs every validator, then starts them all again and waits until each is ready.
    pub fn restart_all(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
        for i in 0..self.children.len() {
            self.spawn(i);
        }
        for i in 0..self.children.len() {
            self.wait_ready(i, Duration::from_secs(60));
        }
    }

    /// Process id of validator `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.children[i].as_ref().map(Child::id)
    }

    /// Resident memory of validator `i` in KiB (`VmRSS` of `/proc/<pid>/status`), while it runs.
    pub fn rss_kib(&self, i: usize) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid(i)?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// The Prometheus text of validator `i`'s `/metrics`, if it answers.
    pub fn metrics(&self, i: usize) -> Option<String> {
        match http(self.api[i], "GET", "/metrics", None) {
            Ok((200, text)) => Some(text),
            _ => None,
        }
    }

    /// Counter `bastion_<name>_total` of validator `i` (`None` if it serves no metrics;
    /// 0 if it has not counted anything yet).
    pub fn counter(&self, i: usize, name: &str) -> Option<u64> {
        let text = self.metrics(i)?;
        let prefix = format!("bastion_{name}_total ");
        Some(
            text.lines()
                .find_map(|line| line.strip_prefix(prefix.as_str()))
                .and_then(|value| value.trim().parse::<f64>().ok())
                .map_or(0, |v| v as u64),
        )
    }

    /// The committed block at `height` as validator `i` serves it (`GET /v1/blocks/{h}`).
    pub fn block(&self, i: usize, height: u64) -> Option<serde_json::Value> {
        match self.get(i, &format!("/v1/blocks/{height}")) {
            Ok((200, block)) => Some(block),
            _ => None,
        }
    }

    pub fn is_running(&mut self, i: usize) -> bool {
        self.children[i].as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("validator-{i}/node.log"))).unwrap_or_default()
    }

    fn wait_ready(&mut self, i: usize, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if !self.is_running(i) {
                panic!("validator {i} exited during start-up; log:\n{}", self.log(i));
            }
            if let Ok((200, _)) = http(self.api[i], "GET", "/health", None) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("validator {i} not ready after {limit:?}; log:\n{}", self.log(i));
    }

    pub fn get(&self, i: usize, path: &str) -> Result<(u16, serde_json::Value), String> {
        let (status, body) = http(self.api[i], "GET", path, None)?;
        Ok((status, serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body))))
    }

    pub fn post(
        &self,
        i: usize,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(u16, serde_json::Value), String> {
        let (status, body) = http(self.api[i], "POST", path, Some(&body.to_string()))?;
        Ok((status, serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body))))
    }

    /// Executed height reported by validator `i`, if it answers.
    pub fn height(&self, i: usize) -> Option<u64> {
        self.get(i, "/status").ok().and_then(|(_, v)| v["executed_height"].as_u64())
    }

    /// Waits until every listed validator has executed `height`.
    pub fn wait_height(&self, validators: &[usize], height: u64, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if validators.iter().all(|&i| self.height(i).is_some_and(|h| h >= height)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// A transaction builder for dev account `dev` at `nonce` on this net's chain (far expiry).
    pub fn builder(&self, dev: u8, nonce: u64) -> TransactionBuilder {
        TransactionBuilder::new(self.chain_id.clone(), dev_key(dev)).nonce(nonce).expiry_height(1_000_000)
    }

    /// Submits a transfer of `amount` from dev account `from` (with `nonce`) via validator
    /// `via`; returns its hash.
    pub fn transfer(&self, via: usize, from: u8, nonce: u64, to: Address, amount: u64) -> String {
        let tx = self.builder(from, nonce).fuel_limit(10_000).transfer(to, amount).expect("builds");
        self.submit(via, &tx)
    }

    /// Submits a signed transaction through validator `via`; returns its hash.
    pub fn submit(&self, via: usize, tx: &SignedTransaction) -> String {
        let body = serde_json::json!({ "tx": hex::encode(tx.to_bytes().expect("transaction encodes")) });
        let (status, response) = self.post(via, "/v1/transactions", &body).expect("API answers");
        assert!(status == 200 || status == 202, "submit refused: {status} {response}");
        response["hash"].as_str().expect("hash in the answer").to_string()
    }

    /// Waits (at most a minute) until the transaction is no longer pending; returns its status.
    pub fn wait_final(&self, via: usize, hash: &str) -> serde_json::Value {
        let limit = Duration::from_secs(60);
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok((200, tx)) = self.get(via, &format!("/v1/transactions/{hash}")) {
                if tx["status"] != "pending" {
                    return tx;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("transaction {hash} not final within {limit:?}");
    }

    /// Puts network faults in force between the validators (partition, delay, loss; see
    /// [`NetworkRules`]). Panics unless the net was started with
    /// [`LocalNet::start_with_faults`].
    pub fn set_faults(&self, rules: NetworkRules) {
        let relay = self.relay.as_ref().expect("start the net with LocalNet::start_with_faults");
        rules.validate(self.api.len()).expect("valid network rules");
        relay.set_rules(rules);
    }

    /// The relay's counters (forwarded and dropped datagrams), if the net has one.
    pub fn relay_stats(&self) -> Option<String> {
        self.relay.as_ref().map(|r| r.stats().describe())
    }

    pub fn block_hash(&self, i: usize, height: u64) -> Option<String> {
        match self.get(i, &format!("/v1/blocks/{height}")) {
            Ok((200, v)) => v["hash"].as_str().map(str::to_string),
            _ => None,
        }
    }
}

impl Drop for LocalNet {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
        if std::thread::panicking() {
            // Keep the logs of a failed test where a person can read them.
            if let Some(temp) = self._temp.take() {
                let kept = temp.keep();
                eprintln!("testnet kept for inspection at {}", kept.display());
            }
        }
    }
}

/// A minimal blocking HTTP/1.1 client (one request per connection), enough for tests.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").ok_or("malformed response")?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("no status")?;
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Ok((status, if chunked { dechunk(rest) } else { rest.to_string() }))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
