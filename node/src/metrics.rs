//! Prometheus metrics of one validator (`GET /metrics`).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub struct Metrics {
    registry: Registry,
    pub round: Gauge,
    pub committed_height: Gauge,
    pub executed_height: Gauge,
    pub certified_height: Gauge,
    pub mempool_size: Gauge,
    pub committed_txs: Counter,
    pub round_timeouts: Counter,
    pub batches_sealed: Counter,
    pub batches_received: Counter,
    pub batches_rejected: Counter,
    pub batch_txs_invalid: Counter,
    pub batches_verifying: Gauge,
    pub batches_verify_deferred: Counter,
    pub batch_fetches_abandoned: Counter,
    pub batches_ordered_again: Counter,
    pub batches_verified_again: Counter,
    pub txs_admitted: Counter,
    pub txs_refused: Counter,
    pub nonce_gap_releases: Counter,
    pub peers_connected: Gauge,
    pub transport_dropped: Gauge,
    pub verify_batch_size: Histogram,
    pub commit_latency_seconds: Histogram,
    pub execute_block_seconds: Histogram,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("bastion");
        let m = Metrics {
            round: Gauge::default(),
            committed_height: Gauge::default(),
            executed_height: Gauge::default(),
            certified_height: Gauge::default(),
            mempool_size: Gauge::default(),
            committed_txs: Counter::default(),
            round_timeouts: Counter::default(),
            batches_sealed: Counter::default(),
            batches_received: Counter::default(),
            batches_rejected: Counter::default(),
            batch_txs_invalid: Counter::default(),
            batches_verifying: Gauge::default(),
            batches_verify_deferred: Counter::default(),
            batch_fetches_abandoned: Counter::default(),
            batches_ordered_again: Counter::default(),
            batches_verified_again: Counter::default(),
            txs_admitted: Counter::default(),
            txs_refused: Counter::default(),
            nonce_gap_releases: Counter::default(),
            peers_connected: Gauge::default(),
            transport_dropped: Gauge::default(),
            verify_batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            commit_latency_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            execute_block_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            registry: Registry::default(),
        };
        registry.register("consensus_round", "Current consensus round", m.round.clone());
        registry.register(
            "committed_height",
            "Height of the last committed block",
            m.committed_height.clone(),
        );
        registry.register("executed_height", "Height of the last executed block", m.executed_height.clone());
        registry.register(
            "certified_height",
            "Height of the last certified state root",
            m.certified_height.clone(),
        );
        registry.register("mempool_size", "Transactions waiting to be batched", m.mempool_size.clone());
        registry.register("committed_txs", "Transactions committed and executed", m.committed_txs.clone());
        registry.register("round_timeouts", "Rounds this validator timed out in", m.round_timeouts.clone());
        registry.register("batches_sealed", "Batches sealed by this validator", m.batches_sealed.clone());
        registry.register(
            "batches_received",
            "Batches received from peers and stored",
            m.batches_received.clone(),
        );
        registry.register(
            "batches_rejected",
            "Batches from peers refused (oversized)",
            m.batches_rejected.clone(),
        );
        registry.register(
            "batch_txs_invalid",
            "Transactions in peers' batches that fail admission (a faulty author's); never executed",
            m.batch_txs_invalid.clone(),
        );
        registry.register(
            "batches_verifying",
            "Peers' batches stored and waiting for signature verification (the verification backlog)",
            m.batches_verifying.clone(),
        );
        registry.register(
            "batches_verify_deferred",
            "Peers' batches the verifier had no room for, left for execution to verify",
            m.batches_verify_deferred.clone(),
        );
        registry.register(
            "batch_fetches_abandoned",
            "Missing batches no peer supplied after every peer was asked several times",
            m.batch_fetches_abandoned.clone(),
        );
        registry.register(
            "batches_ordered_again",
            "Batches a committed block named after an earlier one ordered them (skipped by execution)",
            m.batches_ordered_again.clone(),
        );
        registry.register(
            "batches_verified_again",
            "Batches execution loaded from disk and verified again (not in the cache of verified batches)",
            m.batches_verified_again.clone(),
        );
        registry.register("txs_admitted", "Transactions admitted through the API", m.txs_admitted.clone());
        registry.register("txs_refused", "Transactions refused at admission", m.txs_refused.clone());
        registry.register(
            "nonce_gap_releases",
            "Transactions batched after waiting the gap wait for a lower nonce that never arrived",
            m.nonce_gap_releases.clone(),
        );
        registry.register("peers_connected", "Validators connected over QUIC", m.peers_connected.clone());
        registry.register(
            "transport_dropped",
            "Messages dropped on full peer queues",
            m.transport_dropped.clone(),
        );
        registry.register(
            "verify_batch_size",
            "Signatures per batch verification",
            m.verify_batch_size.clone(),
        );
        registry.register(
            "commit_latency_seconds",
            "Admission to execution of transactions admitted here",
            m.commit_latency_seconds.clone(),
        );
        registry.register(
            "execute_block_seconds",
            "Time to execute and record one block",
            m.execute_block_seconds.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
