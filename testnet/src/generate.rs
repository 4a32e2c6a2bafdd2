//! Making (or reusing) a testnet directory: keys, genesis, configs, manifest.
//!
//! [`setup`] is what `bastion testnet up` does before starting anything:
//! * no testnet in the directory (or `reset`): fresh validator keys, a chain id
//!   `bastion-local-<random>`, a genesis funding `dev0` … `dev9`, free ports, one
//!   `validator-<i>/` per validator, and `testnet.json`;
//! * an existing testnet: the same keys, genesis and data. API ports that are now taken are
//!   replaced (clients find them through `testnet.json`); QUIC addresses are in the genesis,
//!   so a taken one is an error rather than a silent change of the chain's configuration.
//!
//! A reset removes only what the tooling wrote (`testnet.json`, `genesis.json`,
//! `docker-compose.yml`, `validator-*`), never other files in the directory, and refuses
//! while validators of that testnet are running.

use std::path::Path;

use bastion_crypto::KeyPair;
use bastion_ledger::Address;
use rand::rngs::OsRng;
use rand::RngCore;

use crate::config::{GenesisAccount, GenesisFile, GenesisValidator, NodeConfig};
use crate::dev_keys::{funded_addresses, DEV_BALANCE};
use crate::error::TestnetError;
use crate::layout::{TestnetDir, DATA_DIR, GENESIS_FILE, KEY_FILE};
use crate::manifest::{api_url, Manifest, ValidatorEntry};
use crate::ports::{self, ValidatorPorts};
use crate::process;

/// The most validators a local testnet may have.
pub const MAX_VALIDATORS: usize = 64;
/// Validators when neither the command line nor an existing testnet says.
pub const DEFAULT_VALIDATORS: usize = 4;

#[derive(Clone, Debug, Default)]
pub struct SetupOptions {
    /// `None`: keep an existing testnet's count, or [`DEFAULT_VALIDATORS`].
    pub validators: Option<usize>,
    pub consensus_only: bool,
    /// Wipe an existing testnet and make a new one.
    pub reset: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupOutcome {
    Created,
    Reused,
}

/// A testnet directory, loaded.
#[derive(Clone, Debug)]
pub struct Testnet {
    pub dir: TestnetDir,
    pub manifest: Manifest,
    pub genesis: GenesisFile,
    /// Each validator's `config.toml`, as written (paths relative to its directory).
    pub configs: Vec<NodeConfig>,
}

impl Testnet {
    /// Loads an existing testnet directory.
    pub fn open(dir: &Path) -> Result<Self, TestnetError> {
        let dir = TestnetDir::new(dir).map_err(TestnetError::io("cannot resolve", dir))?;
        if !dir.manifest().exists() {
            return Err(TestnetError::NoTestnet { dir: dir.root().to_path_buf() });
        }
        let manifest = Manifest::load_dir(&dir)?;
        let genesis = GenesisFile::load(&dir.genesis())?;
        let configs = manifest
            .validators
            .iter()
            .map(|v| read_config(&dir.validator(v.index)))
            .collect::<Result<Vec<_>, _>>()?;
        // Validator i is at position i everywhere, so indices can index.
        let consistent = manifest
            .validators
            .iter()
            .zip(&configs)
            .enumerate()
            .all(|(i, (v, c))| usize::from(v.index) == i && usize::from(c.index) == i);
        if !consistent || genesis.validators.len() != configs.len() {
            return Err(crate::config::ConfigError::Invalid {
                path: dir.manifest(),
                message:
                    "validators must be listed as 0, 1, 2, ... and match genesis.json and each config.toml"
                        .into(),
            }
            .into());
        }
        Ok(Testnet { dir, manifest, genesis, configs })
    }

    pub fn count(&self) -> usize {
        self.manifest.validators.len()
    }

    pub fn check_index(&self, index: u16) -> Result<(), TestnetError> {
        if usize::from(index) < self.count() {
            Ok(())
        } else {
            Err(TestnetError::UnknownValidator { index, count: self.count() })
        }
    }

    /// Pids in `testnet.json` (as it is on disk now: other commands update it) that are
    /// alive and are this testnet's validators.
    pub fn running_pids(&self) -> Vec<u32> {
        let current = Manifest::load_dir(&self.dir).ok();
        current
            .as_ref()
            .unwrap_or(&self.manifest)
            .validators
            .iter()
            .filter_map(|v| {
                v.pid.filter(|pid| process::is_validator_process(*pid, &self.dir.validator(v.index)))
            })
            .collect()
    }

    /// Rewrites `testnet.json`.
    pub fn save_manifest(&self) -> Result<(), TestnetError> {
        Ok(self.manifest.save_dir(&self.dir)?)
    }

    fn save_config(&self, index: u16) -> Result<(), TestnetError> {
        Ok(self.configs[usize::from(index)].save(&self.dir.validator(index))?)
    }
}

/// Reads `config.toml` without resolving its relative paths.
fn read_config(dir: &Path) -> Result<NodeConfig, TestnetError> {
    let path = dir.join(crate::layout::CONFIG_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|source| crate::config::ConfigError::Read { path: path.clone(), source })?;
    toml::from_str(&text)
        .map_err(|e| crate::config::ConfigError::Invalid { path, message: e.to_string() }.into())
}

fn mode_name(consensus_only: bool) -> &'static str {
    if consensus_only {
        "in consensus-only mode"
    } else {
        "with execution"
    }
}

/// Creates, reuses or resets the testnet in `dir` (see the module docs).
pub fn setup(dir: &Path, options: &SetupOptions) -> Result<(Testnet, SetupOutcome), TestnetError> {
    if let Some(n) = options.validators {
        if n == 0 || n > MAX_VALIDATORS {
            return Err(TestnetError::BadValidatorCount { got: n, max: MAX_VALIDATORS });
        }
    }
    let layout = TestnetDir::new(dir).map_err(TestnetError::io("cannot resolve", dir))?;
    if layout.manifest().exists() {
        let existing = Testnet::open(layout.root())?;
        let pids = existing.running_pids();
        if !pids.is_empty() {
            return Err(TestnetError::AlreadyRunning { dir: layout.root().to_path_buf(), pids });
        }
        if !options.reset {
            return reuse(existing, options).map(|t| (t, SetupOutcome::Reused));
        }
    }
    if options.reset {
        wipe(&layout)?;
    }
    create(layout, options).map(|t| (t, SetupOutcome::Created))
}

fn reuse(mut testnet: Testnet, options: &SetupOptions) -> Result<Testnet, TestnetError> {
    let root = testnet.dir.root().to_path_buf();
    if let Some(requested) = options.validators {
        if requested != testnet.count() {
            return Err(TestnetError::CountMismatch { dir: root, existing: testnet.count(), requested });
        }
    }
    if testnet.manifest.consensus_only != options.consensus_only {
        return Err(TestnetError::ModeMismatch {
            dir: root,
            existing_mode: mode_name(testnet.manifest.consensus_only),
            requested_mode: mode_name(options.consensus_only),
        });
    }
    for index in 0..testnet.count() as u16 {
        let config = &testnet.configs[usize::from(index)];
        if !ports::udp_free(config.quic_listen) {
            return Err(TestnetError::PortTaken {
                index,
                proto: "QUIC (UDP)",
                addr: config.quic_listen,
                hint: "; it is part of the genesis, so free it or add --reset to make a new testnet",
            });
        }
        if !ports::tcp_free(config.api_listen) {
            let api = ports::allocate_tcp()?;
            testnet.configs[usize::from(index)].api_listen = api;
            testnet.save_config(index)?;
            if let Some(entry) = testnet.manifest.validator_mut(index) {
                entry.api_url = api_url(api);
            }
        }
        if let Some(entry) = testnet.manifest.validator_mut(index) {
            entry.pid = None;
        }
    }
    testnet.save_manifest()?;
    Ok(testnet)
}

fn create(dir: TestnetDir, options: &SetupOptions) -> Result<Testnet, TestnetError> {
    let count = options.validators.unwrap_or(DEFAULT_VALIDATORS);
    let ports = ports::allocate(count)?;
    let chain_id = format!("bastion-local-{:08x}", OsRng.next_u32());
    let keys: Vec<KeyPair> = (0..count).map(|_| KeyPair::generate(&mut OsRng)).collect();

    let genesis = GenesisFile {
        chain_id: chain_id.clone(),
        validators: keys
            .iter()
            .zip(&ports)
            .map(|(key, p)| GenesisValidator { public_key: key.public(), quic_addr: p.quic, api_url: None })
            .collect(),
        accounts: funded_addresses()
            .into_iter()
            .map(|address: Address| GenesisAccount { address, balance: DEV_BALANCE })
            .collect(),
    };
    genesis
        .ledger_genesis()
        .validate()
        .map_err(|e| crate::config::ConfigError::Invalid { path: dir.genesis(), message: e.to_string() })?;
    std::fs::create_dir_all(dir.root()).map_err(TestnetError::io("cannot create", dir.root()))?;
    genesis.save(&dir.genesis())?;

    let mut configs = Vec::with_capacity(count);
    let mut entries = Vec::with_capacity(count);
    for (i, (key, p)) in keys.iter().zip(&ports).enumerate() {
        let index = i as u16;
        let mut config = validator_config(index, *p, options.consensus_only);
        config.worker_threads = Some(shared_host_threads(count));
        write_validator_dir(&dir, index, key, &config)?;
        entries.push(ValidatorEntry {
            index,
            api_url: api_url(p.api),
            quic_addr: p.quic,
            pid: None,
            data_dir: dir.data(index),
            byzantine: None,
        });
        configs.push(config);
    }
    let manifest = Manifest { chain_id, consensus_only: options.consensus_only, validators: entries };
    manifest.save_dir(&dir)?;
    Ok(Testnet { dir, manifest, genesis, configs })
}

/// Async worker threads for each of `validators` validators sharing this host's cores: its
/// share, at least one.
pub fn shared_host_threads(validators: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / validators.max(1)).max(1)
}

/// The `config.toml` of validator `index` of a local testnet.
pub fn validator_config(index: u16, ports: ValidatorPorts, consensus_only: bool) -> NodeConfig {
    NodeConfig {
        index,
        key_file: KEY_FILE.into(),
        genesis_file: Path::new("..").join(GENESIS_FILE),
        data_dir: DATA_DIR.into(),
        quic_listen: ports.quic,
        api_listen: ports.api,
        consensus_only,
        worker_threads: None,
        consensus: Default::default(),
        mempool: Default::default(),
        storage: Default::default(),
    }
}

fn write_validator_dir(
    dir: &TestnetDir,
    index: u16,
    key: &KeyPair,
    config: &NodeConfig,
) -> Result<(), TestnetError> {
    let vdir = dir.validator(index);
    std::fs::create_dir_all(dir.data(index)).map_err(TestnetError::io("cannot create", dir.data(index)))?;
    let key_json = serde_json::to_string_pretty(key)
        .map_err(|e| crate::config::ConfigError::Invalid { path: dir.key(index), message: e.to_string() })?;
    write_private(&dir.key(index), key_json.as_bytes())?;
    config.save(&vdir)?;
    Ok(())
}

/// Writes a secret file readable by its owner only.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), TestnetError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(TestnetError::io("cannot write", path))?;
    file.write_all(contents).map_err(TestnetError::io("cannot write", path))
}

/// Removes what the tooling wrote in `dir`, nothing else.
fn wipe(dir: &TestnetDir) -> Result<(), TestnetError> {
    let entries = match std::fs::read_dir(dir.root()) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(TestnetError::io("cannot read", dir.root())(e)),
    };
    for entry in entries {
        let entry = entry.map_err(TestnetError::io("cannot read", dir.root()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let ours_dir = name.strip_prefix("validator-").is_some_and(|i| i.parse::<u16>().is_ok());
        if ours_dir && path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(TestnetError::io("cannot remove", &path))?;
        } else if [crate::layout::MANIFEST_FILE, GENESIS_FILE, crate::layout::COMPOSE_FILE]
            .contains(&name.as_str())
        {
            std::fs::remove_file(&path).map_err(TestnetError::io("cannot remove", &path))?;
        }
    }
    Ok(())
}
