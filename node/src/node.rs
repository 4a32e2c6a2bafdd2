//! Starting a validator: check the files, open storage, recover, wire the tasks together.
//!
//! Start-up fails fast, with the reason, on: an unreadable or invalid config or genesis, a
//! key that is not the committee's key for this index, a data directory written for another
//! genesis or corrupted, and a port that is taken. Nothing is sent before all of that
//! passed. Then committed-but-unexecuted blocks are executed (catch-up after a crash) while
//! consensus resumes from its persisted safety data and blocks.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bastion_consensus::{Committee, Config as ConsensusConfig, Core};
use bastion_crypto::KeyPair;
use bastion_ledger::{Executor, ExecutorConfig};
use bastion_testnet::config::{GenesisFile, NodeConfig};
use tokio::sync::{mpsc, Notify};

use crate::api;
use crate::batcher::Batcher;
use crate::byzantine::{Byzantine, ByzantineMode};
use crate::certifier::Certifier;
use crate::driver::Driver;
use crate::execution::Execution;
use crate::fetcher::BatchFetcher;
use crate::inbound::{store_batches, Inbound};
use crate::state::NodeState;
use crate::storage::Storage;
use crate::transport::{Transport, TransportConfig};
use crate::verifier::verify_batches;
use crate::wire::NetMessage;

/// Runs a validator until `shutdown` completes (or it fails to start).
pub async fn run(
    config: NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with(config, None, shutdown).await
}

/// [`run`], misbehaving in `byzantine` mode if one is given (fault testing only: see
/// [`crate::byzantine`]).
pub async fn run_with(
    config: NodeConfig,
    byzantine: Option<ByzantineMode>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let genesis = GenesisFile::load(&config.genesis_file)?;
    let ledger_genesis = genesis.ledger_genesis();
    ledger_genesis.validate().context("genesis is invalid")?;
    let key_text = std::fs::read_to_string(&config.key_file)
        .with_context(|| format!("cannot read the validator key {}", config.key_file.display()))?;
    let key: KeyPair = serde_json::from_str(&key_text)
        .with_context(|| format!("{} is not a validator key file", config.key_file.display()))?;
    let Some(entry) = genesis.validators.get(usize::from(config.index)) else {
        bail!(
            "validator index {} is not in the genesis committee of {}",
            config.index,
            genesis.validators.len()
        );
    };
    if entry.public_key != key.public() {
        bail!(
            "{} holds key {}, but genesis lists {} for validator {}",
            config.key_file.display(),
            key.public(),
            entry.public_key,
            config.index
        );
    }
    let genesis_hash = ledger_genesis.hash().context("cannot hash genesis")?;
    let storage = Storage::open(&config.data_dir, genesis_hash, &config.storage)
        .with_context(|| format!("cannot open the data directory {}", config.data_dir.display()))?;

    let (executor, query, executed, state_root) = if config.consensus_only {
        (None, None, storage.executed_height()?.unwrap_or(0), None)
    } else {
        let store = Arc::new(storage.state_store());
        let executor_config = ExecutorConfig {
            retain_versions: (config.storage.retain_state_versions > 0)
                .then_some(config.storage.retain_state_versions),
            ..ExecutorConfig::default()
        };
        let executor = match storage.executed_height()? {
            None => {
                let executor = Executor::genesis(store, &ledger_genesis, executor_config)
                    .context("cannot write genesis state")?;
                storage.record_execution(0, executor.state_root(), &[], &[])?;
                executor
            }
            Some(_) => Executor::open(store, executor_config).context("cannot open the ledger state")?,
        };
        let query = executor.query();
        let (height, root) = (executor.height(), executor.state_root());
        (Some(executor), Some(query), height, Some(root))
    };

    let committee_addrs: Vec<_> = genesis.validators.iter().map(|v| (v.public_key, v.quic_addr)).collect();
    let transport_config =
        TransportConfig::new(config.index, key.clone(), committee_addrs, config.quic_listen);
    let (transport, inbound) = Transport::<NetMessage>::start(transport_config)
        .map_err(|e| anyhow::anyhow!("cannot start the QUIC transport on {}: {e}", config.quic_listen))?;
    let api_listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("cannot listen for the HTTP API on {} (port taken?)", config.api_listen))?;

    let recovery = storage.recovery()?;
    let committed_tip = recovery.committed.map_or(0, |b| b.height);
    let pending_batches = storage.pending_batches()?;
    let state = Arc::new(NodeState::new(
        config.clone(),
        genesis.clone(),
        key.clone(),
        storage,
        transport,
        query,
        executed,
        state_root,
    ));
    state.committed_height.store(committed_tip, std::sync::atomic::Ordering::SeqCst);

    let committee =
        Committee::new(genesis.chain_id.clone(), &state.committee).context("invalid committee keys")?;
    let consensus_config = ConsensusConfig {
        base_timeout_ms: config.consensus.base_timeout_ms,
        max_timeout_ms: config.consensus.max_timeout_ms,
        max_block_payload: config.consensus.max_block_batches,
        empty_block_delay_ms: config.consensus.empty_block_delay_ms,
        ..ConsensusConfig::default()
    };
    let byzantine_mode = byzantine;
    let byzantine = byzantine.map(|mode| Byzantine::new(mode, config.index, key.clone(), committee.clone()));
    let core = Core::recover(committee, config.index, key, consensus_config, recovery);

    let fetcher = Arc::new(BatchFetcher::new(state.clone()));
    let certifier = Arc::new(Certifier::new(state.clone()));
    let (driver_tx, driver_rx) = mpsc::channel(10_000);
    let (exec_tx, exec_rx) = mpsc::channel(1_024);
    let (batch_tx, batch_rx) = mpsc::channel(256);
    let (verify_tx, verify_rx) = mpsc::channel(1_024);

    // Catch up execution on blocks committed before a crash, before consensus adds more.
    for height in executed + 1..=committed_tip {
        match state.storage.committed_block(height)? {
            Some(block) => exec_tx.send(vec![block]).await.context("execution stopped during catch-up")?,
            None => bail!("committed block {height} is missing from storage"),
        }
    }
    let execution =
        Execution { state: state.clone(), executor, fetcher: fetcher.clone(), certifier: certifier.clone() };
    // Detached: the thread ends when the driver drops the commit channel.
    std::thread::Builder::new()
        .name("execution".into())
        .spawn(move || execution.run(exec_rx))
        .context("cannot start the execution thread")?;

    let mut driver = Driver::new(core, state.clone(), fetcher.clone(), driver_rx, exec_tx);
    if let Some(byzantine) = byzantine {
        tracing::warn!(
            validator = config.index,
            mode = %byzantine.mode(),
            "BYZANTINE MODE {}: this validator {}, on purpose, for fault testing. Never run it in a real network",
            byzantine.mode(),
            byzantine.mode().describe()
        );
        driver = driver.with_byzantine(byzantine);
    }
    tokio::spawn(driver.run(pending_batches));
    let inbound_task = Inbound {
        state: state.clone(),
        driver: driver_tx.clone(),
        batches: batch_tx,
        certifier: certifier.clone(),
    };
    tokio::spawn(inbound_task.run(inbound));
    tokio::spawn(store_batches(state.clone(), fetcher.clone(), driver_tx.clone(), verify_tx, batch_rx));
    tokio::spawn(verify_batches(state.clone(), verify_rx));
    let full = Arc::new(Notify::new());
    // Forged transactions only mean something where signatures are checked.
    let forge = byzantine_mode == Some(ByzantineMode::BadBatches) && !config.consensus_only;
    tokio::spawn(Batcher { state: state.clone(), driver: driver_tx, full, forge }.run());
    tokio::spawn(housekeeping(state.clone(), fetcher));

    // Ready once the blocks committed before start are executed.
    let ready_state = state.clone();
    tokio::spawn(async move {
        let mut executed = ready_state.executed_height.subscribe();
        while *executed.borrow() < committed_tip {
            if executed.changed().await.is_err() {
                return;
            }
        }
        ready_state.set_ready();
        tracing::info!(validator = ready_state.me, "ready");
    });

    tracing::info!(
        validator = config.index,
        chain_id = %genesis.chain_id,
        quic = %config.quic_listen,
        api = %config.api_listen,
        committed = committed_tip,
        executed,
        "validator started"
    );
    api::serve(state.clone(), api_listener, shutdown).await.context("HTTP API failed")?;
    tracing::info!("shutting down");
    state.transport.shutdown().await;
    Ok(())
}

/// Periodic chores: re-asking for overdue batches, pruning old blocks.
async fn housekeeping(state: Arc<NodeState>, fetcher: Arc<BatchFetcher>) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        ticks += 1;
        let retain = state.config.storage.retain_blocks;
        if retain > 0 && ticks.is_multiple_of(300) {
            let storage = state.storage.clone();
            match tokio::task::spawn_blocking(move || storage.prune_blocks(retain)).await {
                Ok(Ok(pruned)) if pruned > 0 => tracing::info!(pruned, "pruned old consensus blocks"),
                Ok(Err(e)) => tracing::warn!(error = %e, "pruning blocks failed"),
                _ => {}
            }
        }
        fetcher.retry_overdue();
    }
}
