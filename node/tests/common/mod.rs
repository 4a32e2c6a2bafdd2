//! Validator 0 of a small committee, in process, for tests that drive node components
//! directly: real storage in a temp dir and a real transport on 127.0.0.1, the peers' UDP
//! ports bound (so nothing else takes them) but never read.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use bastion_crypto::KeyPair;
use bastion_ledger::{Executor, ExecutorConfig};
use bastion_node::state::NodeState;
use bastion_node::storage::Storage;
use bastion_node::transport::{Transport, TransportConfig};
use bastion_node::wire::NetMessage;
use bastion_testnet::config::{
    ConsensusSettings, GenesisAccount, GenesisFile, GenesisValidator, MempoolSettings, NodeConfig,
    StorageSettings,
};
use tempfile::TempDir;

/// The key of validator (or test account) `i`.
pub fn key(i: u8) -> KeyPair {
    KeyPair::from_seed([i; 32])
}

pub struct TestValidator {
    pub state: Arc<NodeState>,
    _temp: TempDir,
    _sockets: Vec<UdpSocket>,
}

/// Validator 0 of `n` on `chain` with `accounts` funded, ready. With `execute_genesis`, the
/// genesis state is written and recorded as executed, so state queries answer; without it
/// the node has no ledger state (enough for consensus-side components).
///
/// Must be called inside a Tokio runtime (the transport spawns its tasks).
pub fn validator_zero(
    chain: &str,
    n: u8,
    accounts: Vec<GenesisAccount>,
    execute_genesis: bool,
) -> TestValidator {
    validator_zero_with(chain, n, accounts, execute_genesis, MempoolSettings::default())
}

/// [`validator_zero`] with these mempool settings (capacity, per-sender share, size limit).
#[allow(dead_code)] // not every test target that includes this module uses it
pub fn validator_zero_with(
    chain: &str,
    n: u8,
    accounts: Vec<GenesisAccount>,
    execute_genesis: bool,
    mempool: MempoolSettings,
) -> TestValidator {
    let temp = TempDir::new().expect("temp dir");
    let sockets: Vec<UdpSocket> =
        (0..n).map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")).collect();
    let addrs: Vec<SocketAddr> = sockets.iter().map(|s| s.local_addr().expect("local addr")).collect();
    let genesis = GenesisFile {
        chain_id: chain.into(),
        validators: (0..n)
            .zip(&addrs)
            .map(|(i, addr)| GenesisValidator {
                public_key: key(i).public(),
                quic_addr: *addr,
                api_url: None,
            })
            .collect(),
        accounts,
    };
    let config = NodeConfig {
        index: 0,
        key_file: temp.path().join("key.json"),
        genesis_file: temp.path().join("genesis.json"),
        data_dir: temp.path().join("db"),
        quic_listen: addrs[0],
        api_listen: "127.0.0.1:0".parse().expect("address"),
        consensus_only: false,
        worker_threads: None,
        consensus: ConsensusSettings::default(),
        mempool,
        storage: StorageSettings::default(),
    };
    let ledger_genesis = genesis.ledger_genesis();
    let storage =
        Storage::open(&config.data_dir, ledger_genesis.hash().expect("genesis hashes"), &config.storage)
            .expect("storage opens");
    let (query, state_root) = if execute_genesis {
        let executor =
            Executor::genesis(Arc::new(storage.state_store()), &ledger_genesis, ExecutorConfig::default())
                .expect("genesis state");
        storage.record_execution(0, executor.state_root(), &[], &[]).expect("record genesis");
        (Some(executor.query()), Some(executor.state_root()))
    } else {
        (None, None)
    };
    let committee = genesis.validators.iter().map(|v| (v.public_key, v.quic_addr)).collect();
    let own = sockets[0].try_clone().expect("socket");
    let (transport, _inbound) =
        Transport::<NetMessage>::start_on(TransportConfig::new(0, key(0), committee, addrs[0]), own)
            .expect("transport starts");
    let state = Arc::new(NodeState::new(config, genesis, key(0), storage, transport, query, 0, state_root));
    state.set_ready();
    TestValidator { state, _temp: temp, _sockets: sockets }
}
