//! The files a validator reads at start: `config.toml` (its own settings) and the shared
//! `genesis.json` (chain id, committee, initial balances).
//!
//! `bastion-node --config DIR` reads `DIR/config.toml`; relative paths inside it are
//! relative to `DIR`. Every field but the identity and addresses has a default, so a
//! minimal config is five lines. Unknown fields are refused, so a typo fails loudly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bastion_crypto::PublicKey;
use bastion_ledger::{Address, Genesis};
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// One validator's `config.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This validator's index in the genesis committee.
    pub index: u16,
    /// The validator's ed25519 key (JSON `{"public", "seed"}`).
    pub key_file: PathBuf,
    pub genesis_file: PathBuf,
    pub data_dir: PathBuf,
    /// UDP address for validator-to-validator QUIC.
    pub quic_listen: SocketAddr,
    /// TCP address of the HTTP API (127.0.0.1 by default in generated configs).
    pub api_listen: SocketAddr,
    /// Order opaque transactions without signature checks or execution (benchmarking).
    #[serde(default)]
    pub consensus_only: bool,
    /// Threads of the async runtime (network, API, consensus); absent: one per CPU core.
    /// A local testnet sets it to its share of the cores, since all its validators run on
    /// one host and more threads than cores only add switching between them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_threads: Option<usize>,
    #[serde(default)]
    pub consensus: ConsensusSettings,
    #[serde(default)]
    pub mempool: MempoolSettings,
    #[serde(default)]
    pub storage: StorageSettings,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusSettings {
    pub base_timeout_ms: u64,
    pub max_timeout_ms: u64,
    /// Most batch digests per block.
    pub max_block_batches: usize,
    /// A leader with nothing to order waits this long before proposing an empty block.
    pub empty_block_delay_ms: u64,
}

impl Default for ConsensusSettings {
    fn default() -> Self {
        // A round on one host or a LAN takes milliseconds; a short cap keeps a validator that
        // comes back (or a recovered leader) from waiting out a long backed-off round.
        ConsensusSettings {
            base_timeout_ms: 1_000,
            max_timeout_ms: 6_000,
            max_block_batches: 256,
            empty_block_delay_ms: 200,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolSettings {
    /// Most transactions waiting to be batched.
    pub capacity: usize,
    /// Most pending transactions per sender.
    pub per_sender: usize,
    /// A batch is sealed at this many transactions...
    pub batch_max_txs: usize,
    /// ... or this many bytes ...
    pub batch_max_bytes: usize,
    /// ... or when its oldest transaction has waited this long.
    pub batch_delay_ms: u64,
    /// Largest accepted transaction.
    pub max_tx_bytes: usize,
    /// How long a sender's transactions wait for a missing lower nonce before they are
    /// batched anyway (execution then rejects them with "bad nonce").
    pub gap_wait_ms: u64,
}

impl Default for MempoolSettings {
    fn default() -> Self {
        MempoolSettings {
            capacity: 50_000,
            per_sender: 1_000,
            batch_max_txs: 1_000,
            batch_max_bytes: 512 * 1024,
            batch_delay_ms: 20,
            max_tx_bytes: 256 * 1024,
            gap_wait_ms: 30_000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// Committed consensus blocks older than this many heights may be pruned (0: keep all).
    pub retain_blocks: u64,
    /// State versions older than this many heights are pruned (0: keep all).
    pub retain_state_versions: u64,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings { retain_blocks: 0, retain_state_versions: 10_000 }
    }
}

impl NodeConfig {
    /// Reads `dir/config.toml` and resolves its relative paths against `dir`.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let path = dir.join("config.toml");
        let text = std::fs::read_to_string(&path)
            .map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        let mut config: NodeConfig = toml::from_str(&text)
            .map_err(|e| ConfigError::Invalid { path: path.clone(), message: e.to_string() })?;
        if config.worker_threads == Some(0) {
            return Err(ConfigError::Invalid { path, message: "worker_threads must be at least 1".into() });
        }
        for p in [&mut config.key_file, &mut config.genesis_file, &mut config.data_dir] {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        Ok(config)
    }

    pub fn save(&self, dir: &Path) -> Result<(), ConfigError> {
        let path = dir.join("config.toml");
        let text = toml::to_string_pretty(self)
            .map_err(|e| ConfigError::Invalid { path: path.clone(), message: e.to_string() })?;
        std::fs::write(&path, text).map_err(|source| ConfigError::Write { path, source })
    }
}

/// One committee member in `genesis.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    pub public_key: PublicKey,
    pub quic_addr: SocketAddr,
    /// Where its HTTP API listens (informational; clients may use it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    pub address: Address,
    pub balance: u64,
}

/// `genesis.json`: identical on every validator (its hash is checked at start).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFile {
    pub chain_id: String,
    pub validators: Vec<GenesisValidator>,
    pub accounts: Vec<GenesisAccount>,
}

impl GenesisFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?;
        serde_json::from_str(&text)
            .map_err(|e| ConfigError::Invalid { path: path.into(), message: e.to_string() })
    }

    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| ConfigError::Invalid { path: path.into(), message: e.to_string() })?;
        std::fs::write(path, text).map_err(|source| ConfigError::Write { path: path.into(), source })
    }

    /// The ledger's view of genesis (balances and validator keys).
    pub fn ledger_genesis(&self) -> Genesis {
        Genesis {
            chain_id: self.chain_id.clone(),
            accounts: self.accounts.iter().map(|a| (a.address, a.balance)).collect(),
            validators: self.validators.iter().map(|v| v.public_key).collect(),
        }
    }
}
